"""Speed comparisons between backends, in one run (``nnparity bench``); not tests.

Each benchmark times the same work on every installed backend and reports the ratio to the
NumPy reference. Training benchmarks use synthetic data of MNIST's size (float32, seeded), the
same batches for every backend, plain SGD, and exclude a short warm-up (TensorFlow traces its
``tf.function`` there). Times are wall-clock seconds, the best of ``repeats`` runs.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnparity.backends import registry
from nnparity.reference import MLPSpec, Optimizer, init_params

MNIST_ROWS, MNIST_WIDTH = 60000, 784


@dataclass(frozen=True)
class MLPBenchmark:
    """One epoch of minibatch SGD on a net of ``layers`` at ``batch`` rows per step."""

    name: str
    layers: tuple[int, ...]
    activations: tuple[str, ...]
    batch: int


MLP_BENCHMARKS = (
    MLPBenchmark("seed000 MNIST [784-30-20-10], batch 20", (30, 20, 10),
                 ("sigmoid", "sigmoid", "identity"), 20),
    MLPBenchmark("ThreeNet [784-200-80-10], batch 256", (200, 80, 10),
                 ("relu", "relu", "identity"), 256),
)


@dataclass
class Timing:
    """Seconds per unit of work for one benchmark and backend."""

    benchmark: str
    backend: str
    seconds: float
    ratio: float = float("nan")


def _best_of(repeats: int, run: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def time_mlp_epoch(bench: MLPBenchmark, backend_name: str, rows: int, repeats: int) -> float:
    """Seconds for ``rows // batch`` SGD steps of ``bench`` on ``backend_name`` (float32)."""
    spec = MLPSpec(MNIST_WIDTH, bench.layers, bench.activations, loss="ce", reduction="mean",
                   dtype="float32")
    rng = np.random.default_rng(0)
    x = rng.random((rows, MNIST_WIDTH), dtype=np.float32)
    y = rng.integers(0, 10, size=rows)
    steps = rows // bench.batch
    batches = [(x[i * bench.batch:(i + 1) * bench.batch], y[i * bench.batch:(i + 1) * bench.batch])
               for i in range(steps)]
    backend = registry.get(backend_name)
    variant = getattr(backend, "optimizer_variant", "torch")
    trainer = backend.trainer(spec, init_params(spec, "xavier", 0),
                              Optimizer("sgd", lr=0.01, variant=variant))
    for xb, yb in batches[:5]:
        trainer.step(xb, yb)

    def epoch() -> None:
        for xb, yb in batches:
            trainer.step(xb, yb)

    return _best_of(repeats, epoch)


def run_mlp_benchmarks(
    backends: list[str], rows: int = MNIST_ROWS, repeats: int = 1,
    report: Callable[[Timing], None] | None = None,
) -> list[Timing]:
    """Every MLP benchmark on every backend in ``backends``, with ratios to ``numpy``."""
    timings = []
    for bench in MLP_BENCHMARKS:
        row = []
        for name in backends:
            timing = Timing(bench.name, name, time_mlp_epoch(bench, name, rows, repeats))
            row.append(timing)
            if report:
                report(timing)
        base = next((t.seconds for t in row if t.backend == "numpy"), None)
        for t in row:
            t.ratio = t.seconds / base if base else float("nan")
        timings.extend(row)
    return timings


def machine_line() -> str:
    """CPU, core count and the BLAS-related environment, for the record."""
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"numpy {np.__version__}, BLAS env {blas or 'unset'}")


def markdown_table(timings: list[Timing], rows: int) -> str:
    """Markdown: benchmark, backend, seconds per epoch, ratio to the reference."""
    lines = [f"| benchmark ({rows} rows, float32) | backend | seconds / epoch | x reference |",
             "|---|---|---:|---:|"]
    lines += [f"| {t.benchmark} | {t.backend} | {t.seconds:.3f} | {t.ratio:.2f} |"
              for t in timings]
    return "\n".join(lines)
