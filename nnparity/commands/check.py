"""``nnparity check``: run the parity matrix on every installed backend (the main job).

Exit 0 when every case passes on every backend, 1 when any fails, 2 on bad usage (unknown or
explicitly requested but missing backend, bad regex, unwritable report file, empty selection).
"""

from __future__ import annotations

import argparse
import re
import sys
import time

from nnparity import cases, parity, report
from nnparity.backends import registry
from nnparity.backends.determinism import apply_determinism, describe
from nnparity.commands._args import seed
from nnparity.errors import InputError
from nnparity.progress import Progress

HELP = "check every backend against the NumPy reference on the parity case matrix"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nnparity check``."""
    parser.add_argument("--backends", metavar="NAMES",
                        help="comma-separated backends (default: every installed one; "
                        f"known: {', '.join(registry.NAMES)})")
    parser.add_argument("--dtype", choices=cases.DTYPES, help="only cases of this dtype")
    parser.add_argument("--model", choices=cases.MODELS, default="all",
                        help="model family: all (default), mlp or cnn")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small pairwise-covering subset")
    size.add_argument("--full", action="store_true",
                      help="every combination of the math-changing dimensions (slow)")
    parser.add_argument("-k", metavar="REGEX", dest="pattern",
                        help="only cases whose name matches REGEX (re.search)")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("--json", metavar="FILE", help="write a JSON report (schema version "
                        f"{report.SCHEMA_VERSION}, documented in nnparity/report.py)")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show every compared tensor, not just the worst per case")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of the case data and initial weights (default 0)")


def _backends(requested: str | None) -> tuple[list[str], dict[str, str]]:
    """(backends to run, implicitly skipped backend -> reason); explicit problems exit 2."""
    if requested is None:
        status = registry.status()
        return ([n for n, why in status.items() if why is None],
                {n: why for n, why in status.items() if why is not None})
    names = list(dict.fromkeys(n.strip() for n in requested.split(",") if n.strip()))
    if not names:
        raise InputError("--backends is empty; known: " + ", ".join(registry.NAMES))
    for name in names:
        if name not in registry.NAMES:
            raise InputError(f"unknown backend {name!r}; known: {', '.join(registry.NAMES)}")
        why = registry.reason(name)
        if why is not None:
            raise InputError(f"backend {name!r} is unavailable: {why}")
    return names, {}


def run(args: argparse.Namespace) -> int:
    selection = "quick" if args.quick else "full" if args.full else "default"
    try:
        selected = cases.select(selection, pattern=args.pattern, dtype=args.dtype,
                                model=args.model)
    except re.error as exc:
        raise InputError(f"bad -k regex {args.pattern!r}: {exc}") from None
    if not selected:
        raise InputError(f"no {selection} case matches -k {args.pattern!r}"
                         + (f" and --dtype {args.dtype}" if args.dtype else ""))
    if args.list:
        print("\n".join(case.name for case in selected))
        return 0
    for path in (args.json, args.junit):
        if path:
            try:
                report.check_writable(path)
            except OSError as exc:
                raise InputError(str(exc)) from None
    apply_determinism(seed=args.seed)  # before any framework import (TF's oneDNN switch)
    names, skipped = _backends(args.backends)
    started = time.perf_counter()
    results: list[report.CaseResult] = []
    with Progress(len(selected) * len(names), "check") as progress:
        for name in names:
            backend = registry.get(name)
            for case in selected:
                results.append(parity.run_case(case, backend, seed=args.seed, name=name))
                progress.update(postfix=f"{name} {case.name}")
    seconds = time.perf_counter() - started
    order = {case.name: i for i, case in enumerate(selected)}
    results.sort(key=lambda r: (order[r.case], names.index(r.backend)))

    print(report.render_table(results, verbose=args.verbose))
    failures = report.divergences(results)
    if failures:
        print("\nfirst divergence per failing case:")
        for line in failures:
            print(f"  {line}")
    watch = report.watch_line(results)
    if watch:
        print("\n" + watch)
    print("\n" + report.summary_line(results, skipped, seconds))
    meta = {"skipped_backends": skipped}
    if args.json:
        command = {"selection": selection, "model": args.model, "backends": names,
                   "dtype": args.dtype, "pattern": args.pattern, "seed": args.seed,
                   "argv": sys.argv[1:]}
        report.write_json(args.json, results, environment=describe(), command=command, **meta)
    if args.junit:
        report.write_junit(args.junit, results, **meta)
    return 1 if failures else 0

