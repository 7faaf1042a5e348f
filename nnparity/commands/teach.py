"""``nnparity teach``: the static teaching page (every block's math and code, four ways, with
parity measured while it is built)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nnparity.errors import InputError
from nnparity.files.outputs import check_distinct, check_not_inputs, output_folder

HELP = ("write the teaching page (each layer's math, NumPy, PyTorch, Keras and JAX, measured) "
        "and its exercises for nnparity verify")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", help="folder for index.html")
    parser.add_argument("--exercises", metavar="DIR",
                        help="folder for the exercises: one .py stub per exercise, for "
                             "nnparity verify")
    parser.add_argument("--metrics", nargs="*", default=[], metavar="FILE.csv",
                        help="training metrics (nnparity train --metrics) to plot as well")


def _write_exercises(folder: str) -> int:
    from nnparity.teach.exercises import write_stubs

    written = write_stubs(Path(folder))
    print(f"wrote {len(written)} exercises into {folder} (check one: nnparity verify "
          f"{written[0]})")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.out is None and args.exercises is None:
        raise InputError("give --out DIR (the page), --exercises DIR (the stubs) or both")
    if args.out is None:
        return _write_exercises(args.exercises)
    try:
        from nnparity.teach.figures import read_metrics
        from nnparity.teach.site import build, files_written
    except ImportError as exc:
        raise InputError(f"the teaching page needs {exc.name}: pip install nnparity[teach]") \
            from None
    out = output_folder(args.out)  # its parent must exist: checked before any work
    metrics = {}
    for path in map(Path, args.metrics):  # read before any work
        if not path.is_file():
            raise InputError(f"{path}: no such metrics file")
        metrics[path] = read_metrics(path)
    outputs = {"--out": files_written(out, list(metrics))}
    if args.exercises is not None:
        from nnparity.teach.exercises import files

        outputs["--exercises"] = files(output_folder(args.exercises))
    check_distinct(outputs)
    check_not_inputs(outputs, {"--metrics": list(metrics)})
    start = time.perf_counter()
    index = build(out, metrics)
    print(f"wrote {index} in {time.perf_counter() - start:.1f} s")
    return 0 if args.exercises is None else _write_exercises(args.exercises)
