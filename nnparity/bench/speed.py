"""Speed comparisons between backends, in one run (``nnparity bench``); not tests.

Each benchmark times the same work on every installed backend and reports the ratio to the
NumPy reference (MLP) or to PyTorch (CNN). The MLP benchmarks train one epoch on synthetic data of
MNIST's size (float32, seeded), the same batches for every backend, plain SGD; the CNN one times an
Adam step of the three-framework notes' net. Each row of those tables runs in a process of its
own, as users train (:mod:`nnparity.bench.rows`); the sweep (:mod:`nnparity.bench.sweep`) takes
turns in one process between the floor, the reference and plain torch. Warm-up steps are excluded
from the timings and the first of them is reported on its own (``first_step``): that is where
TensorFlow traces its ``tf.function`` and XLA compiles the JAX backend's program, once per spec.
Times are seconds on the chosen clock, the best of ``repeats`` rounds.
"""

from __future__ import annotations

import itertools
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnparity.backends import registry
from nnparity.bench.cnn_floor import floor_step
from nnparity.bench.loops import LOOPS, Batches, Epoch
from nnparity.bench.peakmem import nnparity_argv, run_measured
from nnparity.bench.rows import Row, rows_of, time_rows
from nnparity.memory import estimate_bytes
from nnparity.reference import CNNSpec, MLPSpec, Optimizer, init_params
from nnparity.reference.conv import output_size
from nnparity.reference.params import trainable

MNIST_ROWS, MNIST_WIDTH = 60000, 784
MLP_LR = 0.01
WARMUP_STEPS = 5
FLOOR = "numpy floor"


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
    """Seconds per unit of work for one benchmark and backend, and of the first training step
    (tracing and compilation included; not part of ``seconds``)."""

    benchmark: str
    backend: str
    seconds: float
    first_step: float = float("nan")
    ratio: float = float("nan")
    floor_ratio: float = float("nan")


# wall: elapsed time; cpu: the process's CPU time, which a loaded machine does not inflate (a
# fair measure when every row runs one thread, as `bench` sets them up).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
# Pause before each timed run of a round in one process (the sweep): XLA's threads keep
# spinning for a few ms after a jax step, and the process CPU clock charged that to the next row
# (measured: the numpy CNN step read 0.0493 s after jax's rows, 0.0410 s after tensorflow's,
# 0.0432 s on the wall).
SETTLE_SECONDS = 0.05


def _best_of(repeats: int, run: Callable[[], None], clock: str = "wall") -> float:
    now = CLOCKS[clock]
    best = float("inf")
    for _ in range(repeats):
        started = now()
        run()
        best = min(best, now() - started)
    return best


def best_interleaved(
    runs: dict[str, Callable[[], None]], repeats: int, clock: str = "wall"
) -> dict[str, float]:
    """Best seconds of ``repeats`` runs of each entry, the entries taking turns in every round
    (so a slow moment of a loaded machine hits every row alike), on ``clock``."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            time.sleep(SETTLE_SECONDS)  # the previous row's helper threads go idle, untimed
            best[name] = min(best[name], _best_of(1, run, clock))
    return best


def mlp_batches(rows: int, batch: int) -> Batches:
    """The epoch's batches, the same for every row: MNIST-shaped float32 rows (seeded)."""
    rng = np.random.default_rng(0)
    x = rng.random((rows, MNIST_WIDTH), dtype=np.float32)
    y = rng.integers(0, 10, size=rows)
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, rows - batch + 1, batch)]


def mlp_bench_bytes(rows: int) -> int:
    """Estimated peak bytes of the MLP benchmarks on ``rows`` synthetic rows: the float32 inputs
    and int64 labels, one ``(x, y)`` view pair per batch, and the largest benchmark's run."""
    data = rows * (4 * MNIST_WIDTH + 8)
    return max(estimate_bytes(_mlp_spec(bench), bench.batch,
                              data_bytes=data + 200 * (rows // bench.batch))
               for bench in MLP_BENCHMARKS)


def _mlp_spec(bench: MLPBenchmark) -> MLPSpec:
    return MLPSpec(MNIST_WIDTH, bench.layers, bench.activations, loss="ce", reduction="mean",
                   dtype="float32")


def mlp_epoch(bench: MLPBenchmark, name: str, batches: Batches) -> Epoch:
    """``epoch(limit)`` of row ``name`` (a backend's trainer, or one of :data:`LOOPS`) for
    ``bench``, from the same initial parameters (xavier, seed 0) and SGD at ``MLP_LR``."""
    spec = _mlp_spec(bench)
    params = {k: v.astype(np.float32) for k, v in init_params(spec, "xavier", 0).items()}
    if name in LOOPS:
        depth = range(1, len(bench.layers) + 1)
        return LOOPS[name][1]([params[f"W{i}"] for i in depth], [params[f"b{i}"] for i in depth],
                              bench.activations[0], batches, MLP_LR)
    backend = registry.get(name)
    trainer = backend.trainer(spec, params,
                              Optimizer("sgd", lr=MLP_LR, variant=backend.optimizer_variant))

    def epoch(limit: int | None = None) -> None:
        for xb, yb in batches[:limit]:
            trainer.step(xb, yb)

    return epoch


def run_mlp_benchmarks(
    names: list[str], rows: int = MNIST_ROWS, repeats: int = 1,
    report: Callable[[Timing], None] | None = None, clock: str = "wall",
) -> list[Timing]:
    """Every MLP benchmark for every row in ``names`` (backends and :data:`LOOPS`), each row in
    a process of its own (:mod:`nnparity.bench.rows`: glibc's allocator pinned as ``train``
    pins it, a warm-up of ``WARMUP_STEPS`` steps), best of ``repeats`` rounds, with ratios to the
    reference (``numpy``) and to the floor (``numpy floor``) when they run."""
    timings = []
    for index, bench in enumerate(MLP_BENCHMARKS):
        measured = time_rows(rows_of(names, ("epoch", str(index), str(rows)), clock), repeats)
        for name in names:
            t = Timing(bench.name, name, measured[name].best, measured[name].first_step)
            t.ratio = t.seconds / measured["numpy"].best if "numpy" in measured else float("nan")
            t.floor_ratio = t.seconds / measured[FLOOR].best if FLOOR in measured \
                else float("nan")
            timings.append(t)
            if report:
                report(t)
    return timings


CNN_BATCH = 50


def cnn_step_flops(spec: CNNSpec) -> float:
    """Floating-point operations of one training step: forward ``2 * MACs`` of every conv and
    dense layer, backward twice that (input and weight gradients) less the first layer's
    input gradient, which nobody needs."""
    forward = []
    shapes = spec.feature_shapes()
    for block, (h, w, cin) in zip(spec.conv, shapes, strict=False):
        ho = output_size(h, block.kernel, block.stride, block.padding)
        wo = output_size(w, block.kernel, block.stride, block.padding)
        forward.append(2.0 * ho * wo * block.kernel**2 * cin * block.filters)
    widths = spec.dense_widths
    forward += [2.0 * a * b for a, b in itertools.pairwise(widths)]
    return CNN_BATCH * (3 * sum(forward) - forward[0])


MATMUL_SIZE = 2048
"""The peak's unit: one ``MATMUL_SIZE``-square float32 NumPy matmul."""


def square_matmul(size: int = MATMUL_SIZE) -> Callable[[], object]:
    """One ``size x size`` float32 matmul of seeded operands, ready to time."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    return lambda: a @ b


CNN_FLOOR = "numpy GEMMs + Adam"
"""The CNN table's floor row: the step's matrix products and Adam update alone
(:mod:`nnparity.bench.cnn_floor`)."""


def cnn_step(backend_name: str) -> Callable[[], None]:
    """One Adam step of the three-framework notes' CNN at batch 50, float32, on ``backend_name``
    (a fresh trainer; the dropout mask drawn by the trainer), on the same seeded batch each call;
    for :data:`CNN_FLOOR`, the step's products and the reference's Adam update only."""
    spec = CNNSpec.seed002(dtype="float32")
    if backend_name == CNN_FLOOR:
        variant = registry.get("numpy").optimizer_variant
        trained = trainable(spec, {k: np.asarray(v, dtype=spec.dtype)
                                   for k, v in init_params(spec, seed=0).items()})
        return floor_step(spec, CNN_BATCH, Optimizer("adam", lr=1e-4, variant=variant), trained)
    rng = np.random.default_rng(0)
    x = rng.random((CNN_BATCH, *spec.input_shape), dtype=np.float32)
    y = rng.integers(0, spec.classes, size=CNN_BATCH)
    backend = registry.get(backend_name)
    trainer = backend.trainer(spec, init_params(spec, seed=0),
                              Optimizer("adam", lr=1e-4, variant=backend.optimizer_variant))
    return lambda: trainer.step(x, y)


PEAK_ROW = "numpy matmul"
"""The row that times :func:`square_matmul` beside the CNN's rows, for the peak."""


def run_cnn_benchmarks(
    backends: list[str], repeats: int = 3, report: Callable[[Timing], None] | None = None,
    clock: str = "wall",
) -> tuple[list[Timing], float, float]:
    """One CNN step per backend, each in a process of its own (:mod:`nnparity.bench.rows`),
    best of ``repeats`` rounds, with ratios to torch (to numpy without torch), then the
    :data:`CNN_FLOOR` row; also the float32 matmul peak (FLOP/s, same ``clock``, a row of its own
    in the same rounds) and the step's FLOP count."""
    name = f"notes' CNN, one Adam step, batch {CNN_BATCH}"
    stepped = [*backends, CNN_FLOOR]
    rows = [*rows_of(stepped, ("step",), clock), Row(PEAK_ROW, ("matmul",), clock)]
    measured = time_rows(rows, repeats)
    base = measured["torch" if "torch" in backends else "numpy"].best
    timings = [Timing(name, b, measured[b].best, measured[b].first_step,
                      ratio=measured[b].best / base) for b in stepped]
    if report:
        for timing in timings:
            report(timing)
    peak = 2.0 * MATMUL_SIZE**3 / measured[PEAK_ROW].best
    return timings, peak, cnn_step_flops(CNNSpec.seed002())


def peak_rss_of_training(argv: list[str]) -> float:
    """Peak resident memory (MiB) of ``nnparity train ARGV`` run in a child process: the child's
    own peak (:mod:`nnparity.bench.peakmem`), not this process's. ``CalledProcessError`` when the
    run
    fails."""
    measured = run_measured(nnparity_argv("train", *argv))
    if measured.returncode:
        raise subprocess.CalledProcessError(measured.returncode, argv, measured.stdout,
                                            measured.stderr)
    return measured.peak_mib


def machine_line() -> str:
    """CPU, core count and the BLAS-related environment, for the record."""
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"numpy {np.__version__}, BLAS env {blas or 'unset'}")


def cnn_markdown(timings: list[Timing], peak: float, flops: float) -> str:
    """Markdown: backend, seconds per step, ratio, share of the float32 matmul peak."""
    base = "torch" if any(t.backend == "torch" for t in timings) else "numpy"
    lines = [f"| notes' CNN, one Adam step, batch {CNN_BATCH}, float32 | seconds / step | "
             f"x {base} | GFLOP/s | share of NumPy matmul peak | first step (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {t.backend} | {t.seconds:.4f} | {t.ratio:.2f} | {flops / t.seconds / 1e9:.1f} | "
              f"{100 * flops / t.seconds / peak:.0f} % | {t.first_step:.3f} |" for t in timings]
    lines.append(f"\nStep: {flops / 1e9:.2f} GFLOP; float32 matmul peak (2048^2 NumPy matmul, "
                 f"same run): {peak / 1e9:.1f} GFLOP/s.")
    return "\n".join(lines)


def markdown_table(timings: list[Timing], rows: int) -> str:
    """Markdown: benchmark, backend or loop, seconds per epoch, ratios to the floor and to the
    reference, the first step (tracing and compilation included)."""
    lines = [f"| benchmark ({rows} rows, float32) | backend | seconds / epoch | x floor | "
             "x reference | first step (s) |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {t.benchmark} | {t.backend} | {t.seconds:.3f} | {t.floor_ratio:.2f} | "
              f"{t.ratio:.2f} | {t.first_step:.3f} |" for t in timings]
    return "\n".join(lines)
