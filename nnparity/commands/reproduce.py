"""``nnparity reproduce``: the source documents' reported figures beside ours, on real data."""

from __future__ import annotations

import argparse
import re

from nnparity.backends import registry
from nnparity.backends.determinism import THREADS_MAX, thread_count
from nnparity.commands._args import folder
from nnparity.errors import InputError
from nnparity.files.atomic import atomic_path
from nnparity.files.outputs import check_not_inputs, files_in, output_file
from nnparity.parallel import JOBS_MAX, check_jobs
from nnparity.training.reproduce import ROWS, Outcome, markdown_table, reproduce

HELP = ("train the source documents' configurations on real data and compare with their "
        "reported figures")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="shortened runs, one seed (checks the pipeline, not the figures)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds per row on the NumPy reference (default 3)")
    parser.add_argument("--framework-seeds", type=int, default=1,
                        help="seeds per row on each framework (default 1)")
    parser.add_argument("--backend", default="numpy",
                        help=f"one of {', '.join(registry.NAMES)}, a comma-separated list, or "
                        "all (a column each; default numpy)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="seeds trained at once, in worker processes (default 1; at most "
                        f"{JOBS_MAX}, and never more workers than seeds to train)")
    parser.add_argument("--threads", type=int,
                        help="framework threads per run (default $NNPARITY_THREADS or 1: "
                        f"reproducible; at most {THREADS_MAX})")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="a Dask scheduler (tcp://HOST:PORT): every seed's run is a task on "
                        "that cluster (workers need the data; default: run here, --jobs "
                        "processes; needs nnparity[distributed])")
    parser.add_argument("-k", dest="pattern", help="only rows whose preset matches this regex")
    parser.add_argument("--data-dir", metavar="DIR", type=folder,
                        help="folder holding the IDX files")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")


def run(args: argparse.Namespace) -> int:
    if min(args.seeds, args.framework_seeds) <= 0:
        raise InputError("--seeds and --framework-seeds must be positive")
    check_jobs(args.jobs)
    if args.scheduler and args.jobs != 1:
        raise InputError("--jobs starts local worker processes and --scheduler sends the runs to "
                         "a cluster's workers: give one of them")
    thread_count(args.threads)  # checked here, applied in each run
    plan = [(name, args.seeds if name == "numpy" else args.framework_seeds)
            for name in backend_names(args.backend)]
    if args.markdown:
        output_file(args.markdown)
        check_not_inputs({"--markdown": args.markdown}, {"--data-dir": files_in(args.data_dir)})
    try:
        pattern = re.compile(args.pattern or "")
    except re.error as exc:
        raise InputError(f"-k {args.pattern!r} is not a valid regex: {exc}") from None
    rows = [r for r in ROWS if pattern.search(r.preset)]
    if not rows:
        raise InputError(f"no configuration matches -k {args.pattern!r}")

    def done(o: Outcome) -> None:
        print(f"{o.row.preset:<26} reported {o.row.reported:<16} ours {o.summary} "
              f"[{o.backend}]", flush=True)

    outcomes = reproduce(rows, plan=plan, quick=args.quick, data_dir=args.data_dir,
                         on_done=done, jobs=args.jobs, threads=args.threads,
                         scheduler=args.scheduler)
    table = markdown_table(outcomes, args.quick)
    print()
    print(table)
    if args.markdown:
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(table + "\n")
    return 0


def backend_names(text: str) -> list[str]:
    """``all`` or a comma-separated list of backend names, each installed; ``InputError``
    naming the unknown or missing one otherwise."""
    names = list(registry.NAMES) if text == "all" else [n.strip() for n in text.split(",")]
    for name in names:
        why = registry.reason(name)
        if why is not None:
            raise InputError(f"--backend {name}: {why}")
    return list(dict.fromkeys(names))
