"""Argument types shared by the commands (argparse turns their errors into a usage line, exit 2)."""

from __future__ import annotations

import argparse


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
