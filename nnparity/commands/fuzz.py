"""``nnparity fuzz``: random ``net`` specs on every backend against the reference, each
disagreement minimised into a spec file that ``nnparity check --spec`` replays.

Exit 0 when every spec agrees on every backend, 1 when any disagrees, 2 on bad usage (a bad
count, an unknown or missing backend, an unreachable scheduler, an unwritable output).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nnparity.commands._args import seed
from nnparity.errors import InputError
from nnparity.files.atomic import write_text
from nnparity.files.outputs import make_output_folder, output_file
from nnparity.progress import Progress

HELP = ("draw random net specs, run each on every backend against the reference and minimise "
        "each disagreement into a spec file")
MAX_SPECS = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--specs", type=int, default=100, help="specs to draw (default 100)")
    parser.add_argument("--seed", type=seed, default=0,
                        help="the run's seed: the same seed draws the same specs (default 0)")
    parser.add_argument("--backends", metavar="NAMES",
                        help="comma-separated backends (default: every installed one)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="a Dask scheduler (tcp://HOST:PORT) to send each spec to as a task "
                        "(default: run here; needs nnparity[distributed])")
    parser.add_argument("--shrink-budget", type=int, default=None, metavar="RUNS",
                        help="candidate runs spent minimising each finding (default 60)")
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="folder for the minimised spec files, fuzz-<seed>-<index>-<backend>"
                        ".json (created if its parent exists; default: the current folder)")
    parser.add_argument("--json", metavar="FILE",
                        help="write the findings and the run's setup as JSON")


def run(args: argparse.Namespace) -> int:
    from nnparity.cluster import connect
    from nnparity.commands.check import _backends
    from nnparity.fuzz.findings import Setup, document, write_spec
    from nnparity.fuzz.run import SpecTask, run_task
    from nnparity.fuzz.shrink import SHRINK_BUDGET

    if not 1 <= args.specs <= MAX_SPECS:
        raise InputError(f"--specs must be from 1 to {MAX_SPECS}, got {args.specs}")
    budget = SHRINK_BUDGET if args.shrink_budget is None else args.shrink_budget
    if budget < 0:
        raise InputError(f"--shrink-budget must be >= 0, got {budget}")
    backends, _ = _backends(args.backends)
    if args.json:
        output_file(args.json)
    with connect(args.scheduler) as cluster:
        folder = make_output_folder(args.out)
        setup = Setup(args.seed, args.specs, backends, budget, args.scheduler)
        tasks = [SpecTask(args.seed, i, tuple(backends), budget) for i in range(args.specs)]
        where = f"on {args.scheduler}" if args.scheduler else "here"
        print(f"fuzz: {args.specs} specs, seed {args.seed}, on {', '.join(backends)}, run "
              f"{where}", flush=True)
        outcomes = []
        started = time.perf_counter()
        with Progress(len(tasks), "fuzz", interval=5.0) as bar:
            for done in cluster.run(run_task, tasks):
                setup.workers.add(done.worker)
                outcomes.append(done.value)
                for finding in done.value.findings:
                    path = write_spec(finding, folder)
                    print(f"spec {finding.index} [{finding.backend}]: {finding.divergence}; "
                          f"minimised to {len(finding.spec['net'])} layer(s): {path}",
                          flush=True)
                bar.update(postfix=f"spec {done.index}")
    seconds = time.perf_counter() - started
    doc = document(setup, outcomes, Path(args.out), seconds)
    summary = doc["summary"]
    print(f"fuzz: {summary['agreed']} of {summary['specs']} specs agree on every backend, "
          f"{summary['findings']} finding(s); {seconds:.1f} s "
          f"({summary['specs'] / seconds:.2f} specs/s); workers: "
          f"{', '.join(sorted(setup.workers))}")
    if args.json:
        write_text(args.json, json.dumps(doc, indent=1) + "\n")
    return 1 if summary["findings"] else 0
