"""Argument types shared by the commands (argparse turns their errors into a usage line, exit 2)."""

from __future__ import annotations

import argparse
import os


def seed(text: str) -> int:
    """A random seed: a non-negative integer (NumPy refuses negative ones)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {text!r}") \
            from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {value}")
    return value


def folder(text: str) -> str:
    """An existing folder to read from (``--from``, ``--data-dir``)."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    return text


def probability(text: str) -> float:
    """A keep probability in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value
