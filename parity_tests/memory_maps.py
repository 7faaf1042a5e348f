"""Keep a test process under Linux's default ``vm.max_map_count`` (65,530), with no root step.

Each program JAX compiles (XLA on the CPU) maps small areas of its own, code and constants, that
stay mapped while JAX's caches hold the program: about 60 per MLP parity case and 115 to 150 per
CNN case, so the whole suite in one process passed the default limit, and the next compile failed
to map and segfaulted. (TensorFlow's and torch's programs add under 5 per test.)

:class:`MapGuard`, called after every test (it counts at most once every :data:`EVERY` seconds),
clears JAX's caches once the process holds more than :data:`CLEAR_AT` maps, which unmaps them; a
process holding more than :data:`BUDGET` even then stops the run naming the count, instead of
segfaulting later. The budget is under the default limit whatever this machine allows, so a
runner with a raised limit still checks what a newcomer's machine allows.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

DEFAULT_LIMIT = 65_530  # Linux's default vm.max_map_count
# One test may add 30,000 maps (the random CNN specs on JAX: 200 hypothesis examples in CI).
CLEAR_AT = 10_000
BUDGET = 50_000
EVERY = 1.0  # seconds between counts: counting 10,000 maps takes some 10 ms


def count_maps() -> int | None:
    """How many memory maps this process holds (lines of ``/proc/self/maps``); None off Linux."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            return maps.read().count(b"\n")
    except OSError:
        return None


def clear_jax() -> None:
    """Drop every program JAX compiled (if JAX is loaded), and collect what held them."""
    jax = sys.modules.get("jax")
    if jax is not None:
        jax.clear_caches()
    gc.collect()


@dataclass
class MapGuard:
    """The check after each test; ``peak`` is the most maps counted, ``clears`` how often JAX's
    caches were cleared."""

    count: Callable[[], int | None] = count_maps
    clear: Callable[[], None] = clear_jax
    clear_at: int = CLEAR_AT
    budget: int = BUDGET
    every: float = EVERY
    peak: int = 0
    clears: int = 0
    counted_at: float = -math.inf

    def after_test(self, nodeid: str) -> None:
        """Count (at most every ``every`` seconds), clear past ``clear_at``, stop the run past
        ``budget``."""
        if time.monotonic() - self.counted_at < self.every:
            return
        held = self.count()
        if held is None:
            return
        self.peak = max(self.peak, held)
        if held > self.clear_at:
            self.clear()
            self.clears += 1
            held = self.count() or 0
        self.counted_at = time.monotonic()
        if held > self.budget:
            pytest.exit(f"{held:,} memory maps in this process after {nodeid}, JAX's caches "
                        f"cleared: over the suite's budget of {self.budget:,} (past Linux's "
                        f"default vm.max_map_count, {DEFAULT_LIMIT:,}, the next XLA compile "
                        "segfaults)", returncode=1)

    def summary(self) -> str | None:
        """One line for the end of the run, or None where nothing was counted."""
        if not self.peak:
            return None
        return (f"at most {self.peak:,} in this process (counted at most every {self.every:g} s "
                f"after a test); JAX's caches cleared {self.clears} time(s) past "
                f"{self.clear_at:,}; budget {self.budget:,}, Linux's default limit "
                f"{DEFAULT_LIMIT:,}")
