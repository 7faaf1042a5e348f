"""Argument types shared by the commands (argparse turns their errors into a usage line, exit 2)."""

from __future__ import annotations

import argparse
import math
import os

# The one rule for every command's --seed: what every framework's seeding accepts (NumPy's
# global seed and JAX's 32-bit keys stop at 2**32 - 1; NumPy refuses negative seeds).
MAX_SEED = 2**32 - 1
SEED_RANGE = "an integer from 0 to 2**32-1"
# Seconds a user's code may run (verify's file, check's model files) unless --timeout says.
DEFAULT_TIMEOUT = 60.0


def seed(text: str) -> int:
    """A random seed: an integer in ``[0, MAX_SEED]``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is {SEED_RANGE}, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is {SEED_RANGE}, got {value}")
    return value


def seconds(text: str) -> float:
    """A time limit: a positive number of seconds, or ``inf`` for none."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds or inf, "
                                         f"got {text!r}")
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
