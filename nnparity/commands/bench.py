"""``nnparity bench``: time the same training work on every installed backend, in one run."""

from __future__ import annotations

import argparse

from nnparity.backends import registry
from nnparity.bench import MNIST_ROWS, Timing, machine_line, markdown_table, run_mlp_benchmarks
from nnparity.errors import InputError
from nnparity.reference.weights import atomic_path

HELP = "benchmark backends against the NumPy reference (ratios, one run)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backends", help="comma-separated (default: every installed backend)")
    parser.add_argument("--rows", type=int, default=MNIST_ROWS,
                        help=f"synthetic training rows per epoch (default {MNIST_ROWS})")
    parser.add_argument("--repeats", type=int, default=1, help="best of N runs (default 1)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")


def run(args: argparse.Namespace) -> int:
    names = args.backends.split(",") if args.backends else registry.available()
    for name in names:
        registry.get(name)
    if "numpy" not in names:
        raise InputError("--backends must include numpy: ratios are to the reference")
    if args.rows <= 0 or args.repeats <= 0:
        raise InputError("--rows and --repeats must be positive")

    def show(t: Timing) -> None:
        print(f"{t.benchmark:<42} {t.backend:<11} {t.seconds:8.3f} s", flush=True)

    print(machine_line())
    timings = run_mlp_benchmarks(names, rows=args.rows, repeats=args.repeats, report=show)
    table = markdown_table(timings, args.rows)
    print()
    print(table)
    if args.markdown:
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(f"Machine: {machine_line()}\n\n{table}\n")
    return 0
