"""``nnparity teach``: the static teaching page (every block's math and code, four ways, with
parity measured while it is built)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nnparity.errors import InputError
from nnparity.outputs import check_not_inputs, output_folder

HELP = "write the teaching page: each layer's math, NumPy, PyTorch, Keras and JAX, measured"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for index.html")
    parser.add_argument("--metrics", nargs="*", default=[], metavar="FILE.csv",
                        help="training metrics (nnparity train --metrics) to plot as well")


def run(args: argparse.Namespace) -> int:
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
    check_not_inputs({"--out": files_written(out, list(metrics))}, {"--metrics": list(metrics)})
    start = time.perf_counter()
    index = build(out, metrics)
    print(f"wrote {index} in {time.perf_counter() - start:.1f} s")
    return 0
