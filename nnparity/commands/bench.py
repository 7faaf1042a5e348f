"""``nnparity bench``: time the same training work on every installed backend, in one run."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nnparity.backends import registry
from nnparity.backends.determinism import THREADS_MAX, apply_determinism
from nnparity.bench.loops import LOOPS, available_loops
from nnparity.bench.speed import (
    CLOCKS,
    FLOOR,
    MLP_BENCHMARKS,
    MNIST_ROWS,
    Timing,
    cnn_markdown,
    machine_line,
    markdown_table,
    mlp_bench_bytes,
    peak_rss_of_training,
    run_cnn_benchmarks,
    run_mlp_benchmarks,
)
from nnparity.bench.sweep import SWEEP_ROWS, Point, run_sweep, sweep_markdown
from nnparity.datasets.sources import DatasetMissing
from nnparity.errors import InputError
from nnparity.files.atomic import atomic_path
from nnparity.files.outputs import check_distinct, output_file
from nnparity.memory import check_memory

HELP = "benchmark backends against the NumPy reference (ratios, one run)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backends",
                        help="comma-separated backends and, for mlp, loops (numpy floor, torch "
                        "plain, keras tape, jax jit); default: every installed one")
    parser.add_argument("--rows", type=int, default=MNIST_ROWS,
                        help=f"synthetic training rows per epoch (default {MNIST_ROWS})")
    parser.add_argument("--repeats", type=int, default=1, help="best of N runs (default 1)")
    parser.add_argument("--model", choices=list(BENCHMARKS), default=next(iter(BENCHMARKS)),
                        help="mlp: one epoch per backend, ratio to numpy (default); "
                        "cnn: one seed-002 step per backend, ratio to torch")
    parser.add_argument("--threads", type=int,
                        help="framework threads (default $NNPARITY_THREADS or 1; at most "
                        f"{THREADS_MAX}); NumPy's BLAS threads follow OPENBLAS_NUM_THREADS")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall (default) or cpu: the process's CPU time, robust on a loaded "
                        "machine (every row runs one thread)")
    parser.add_argument("--sweep", action="store_true",
                        help="step time against batch size (1-1024) and width (30-4096) for the "
                        "floor, the reference and plain torch, instead of the epoch table")
    parser.add_argument("--plot", metavar="FILE", help="--sweep: also draw it (PNG)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    parser.add_argument("--force", action="store_true",
                        help="run even when the memory estimate exceeds what is available")


MEMORY_RUN = ["--preset", "seed000-mnist-sigmoid", "--epochs", "1"]
CNN_MEMORY_RUN = ["--preset", "seed002-cnn", "--epochs", "1", "--steps", "300"]
"""300 steps (the step's buffers reach their plateau in the first) and the epoch's evaluation of
every training and test row, the CNN's peak."""


def memory_line(run: list[str] = MEMORY_RUN) -> str:
    """Peak RSS of ``nnparity train RUN`` on real MNIST (images kept uint8), when MNIST is here."""
    try:
        mib = peak_rss_of_training(run)
    except subprocess.CalledProcessError as exc:
        if DatasetMissing.__name__ in exc.stderr.decode() or "not fetched" in exc.stderr.decode():
            return "\n\nPeak RSS of a reference MNIST epoch: MNIST not fetched."
        raise
    return (f"\n\nPeak RSS of `nnparity train {' '.join(run)}` (real MNIST, "
            f"uint8 images converted per batch): {mib:.0f} MiB.")


def sweep_table(args: argparse.Namespace) -> str:
    """Both sweeps, as a table (and a plot with ``--plot``)."""
    rows = [r for r in SWEEP_ROWS if r in [FLOOR, *registry.available(), *available_loops()]]

    def show(p: Point) -> None:
        cells = "  ".join(f"{r} {p.micros[r]:9.0f}" for r in rows)
        print(f"{p.axis} {p.value:<5} {cells} us/step", flush=True)

    points = run_sweep(rows, args.repeats, report=show, clock=args.clock)
    if args.plot:
        from nnparity.training.plots import plot_sweep

        print(f"wrote {plot_sweep(points, rows, Path(args.plot))}")
    return sweep_markdown(points, rows)


def mlp_table(names: list[str], args: argparse.Namespace, show: Callable[[Timing], None]) -> str:
    """One MNIST-sized epoch per backend, ratios to numpy, and the reference's peak RSS."""
    largest = max(bench.batch for bench in MLP_BENCHMARKS)
    if args.rows < largest:
        raise InputError(f"--rows {args.rows}: the MLP benchmarks need at least one batch of "
                         f"{largest} rows")
    check_memory(len(names) * mlp_bench_bytes(args.rows), f"bench --rows {args.rows}",
                 f"lower --rows: {len(names)} rows run at once, each in a process of its own",
                 args.force)
    timings = run_mlp_benchmarks(names, rows=args.rows, repeats=args.repeats, report=show,
                                 clock=args.clock)
    return markdown_table(timings, args.rows) + memory_line()


def cnn_table(names: list[str], args: argparse.Namespace, show: Callable[[Timing], None]) -> str:
    """One CNN step per backend, ratios to torch, share of the float32 matmul peak, and the
    reference's peak RSS on an MNIST epoch's evaluation."""
    timings, peak, flops = run_cnn_benchmarks(names, repeats=args.repeats, report=show,
                                              clock=args.clock)
    return cnn_markdown(timings, peak, flops) + memory_line(CNN_MEMORY_RUN)


@dataclass(frozen=True)
class Benchmark:
    """A workload of ``bench --model``: its table, and whether the bare NumPy floor and the
    plain framework loops run beside the backends (they exist for the MLP epoch)."""

    table: Callable[[list[str], argparse.Namespace, Callable[[Timing], None]], str]
    loops: bool


# Named after the source documents' two networks (workloads, not model families: the table
# times a preset network, whatever spec classes the registry holds).
BENCHMARKS = {"mlp": Benchmark(mlp_table, loops=True), "cnn": Benchmark(cnn_table, loops=False)}


def run(args: argparse.Namespace) -> int:
    if args.rows <= 0 or args.repeats <= 0:
        raise InputError("--rows and --repeats must be positive")
    apply_determinism(threads=args.threads)  # checks --threads, before any framework import
    benchmark = BENCHMARKS[args.model]
    loops = available_loops() if benchmark.loops else []
    names = args.backends.split(",") if args.backends else [*loops[:1], *registry.available(),
                                                            *loops[1:]]
    known = [*registry.NAMES, *(LOOPS if benchmark.loops else [])]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown backend{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    if "numpy" not in names:
        raise InputError("--backends must include numpy: ratios are to the reference")
    for name in names:
        if name not in LOOPS:
            registry.get(name)
        elif name not in loops:
            raise InputError(f"{name!r} needs {LOOPS[name][0]}, which is not installed")
    for path in (args.markdown, args.plot):
        if path:
            output_file(path)
    check_distinct({"--markdown": args.markdown, "--plot": args.plot})

    def show(t: Timing) -> None:
        print(f"{t.benchmark:<42} {t.backend:<11} {t.seconds:8.3f} s  (first step "
              f"{t.first_step:.3f} s)", flush=True)

    print(machine_line())
    table = sweep_table(args) if args.sweep else benchmark.table(names, args, show)
    print()
    print(table)
    if args.markdown:
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(f"Machine: {machine_line()}\n\n{table}\n")
    return 0
