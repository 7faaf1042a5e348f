"""``nnparity bench --sweep``: how one SGD step's time grows with batch size and layer width.

Two sweeps, float32, softmax cross-entropy ``mean``, plain SGD, the same batches for every row:

- batch: the ThreeNet net ``[784-200-80-10]`` (relu) at batch 1 .. 1024;
- width: ``[784-W-10]`` (relu) at batch 64 for W = 30 .. 4096.

Rows are the floor (:mod:`nnparity.bench.floor`), the reference trainer and plain PyTorch when
installed.
Each point times ``SWEEP_STEPS`` steps after a warm-up, best of ``repeats`` with the rows taking
turns, and reports microseconds per step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from nnparity.allocator import pin_allocator
from nnparity.bench.speed import (
    FLOOR,
    WARMUP_STEPS,
    MLPBenchmark,
    best_interleaved,
    mlp_batches,
    mlp_epoch,
)

SWEEP_BATCHES = (1, 4, 16, 64, 256, 1024)
SWEEP_WIDTHS = (30, 128, 512, 1024, 2048, 4096)
WIDTH_BATCH = 64
SWEEP_STEPS = 20
SWEEP_ROWS = (FLOOR, "numpy", "torch plain")


@dataclass(frozen=True)
class Point:
    """One sweep point: its axis (``batch`` or ``width``), the value, microseconds per step per
    row (what :func:`nnparity.training.plots.plot_sweep` draws)."""

    axis: str
    value: int
    micros: dict[str, float]


def sweep_benchmarks() -> list[tuple[str, int, MLPBenchmark]]:
    """``(axis, value, benchmark)`` for every point of both sweeps."""
    relu2 = ("relu", "relu", "identity")
    points = [("batch", b, MLPBenchmark(f"batch {b}", (200, 80, 10), relu2, b))
              for b in SWEEP_BATCHES]
    points += [("width", w, MLPBenchmark(f"width {w}", (w, 10), ("relu", "identity"),
                                         WIDTH_BATCH)) for w in SWEEP_WIDTHS]
    return points


def run_sweep(rows: list[str], repeats: int, report: Callable[[Point], None] | None = None,
              steps: int = SWEEP_STEPS, clock: str = "wall") -> list[Point]:
    """Every point of both sweeps for ``rows`` (names as in ``nnparity bench``), glibc's
    allocator pinned first as for the benchmark table."""
    pin_allocator()
    points = []
    for axis, value, bench in sweep_benchmarks():
        batches = mlp_batches(steps * bench.batch, bench.batch)
        epochs = {name: mlp_epoch(bench, name, batches) for name in rows}
        for epoch in epochs.values():
            epoch(WARMUP_STEPS)
        best = best_interleaved({k: partial(e, None) for k, e in epochs.items()}, repeats, clock)
        point = Point(axis, value, {k: 1e6 * v / steps for k, v in best.items()})
        points.append(point)
        if report:
            report(point)
    return points


def sweep_markdown(points: list[Point], rows: list[str]) -> str:
    """One table: point, microseconds per step per row, the reference's ratios to the others."""
    others = [r for r in rows if r != "numpy"]
    head = ["point", *(f"{r} (us/step)" for r in rows),
            *(f"reference / {r}" for r in others)]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for p in points:
        label = (f"batch {p.value}, [784-200-80-10]" if p.axis == "batch"
                 else f"width {p.value}, [784-{p.value}-10], batch {WIDTH_BATCH}")
        cells = [label, *(f"{p.micros[r]:.0f}" for r in rows),
                 *(f"{p.micros['numpy'] / p.micros[r]:.2f}" for r in others)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
