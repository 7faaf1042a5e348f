"""``nnparity vectors export DIR``: golden vectors (.npz + JSON + README) for any language."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnparity.commands._args import SEED_RANGE, seed
from nnparity.errors import InputError
from nnparity.files.outputs import check_not_inputs, output_folder
from nnparity.memory import check_memory, estimate_bytes, vector_bytes
from nnparity.verify.adapters import make_spec, parse_json_option
from nnparity.verify.problem import DEFAULT_BATCH, DEFAULT_LR
from nnparity.verify.vectors import DEFAULT_SPECS, export, files_written

HELP = "export golden vectors (inputs, weights, expected results) for programs in any language"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["export"], help="what to do (export)")
    parser.add_argument("folder", type=Path, metavar="DIR", help="where to write the vectors")
    parser.add_argument("--spec", metavar="JSON|FILE",
                        help="instead of the default set (" + ", ".join(DEFAULT_SPECS) + "): one "
                        "network (MLPSpec fields, or a layer list under 'net'; named by --name) "
                        "or an object {name: spec}")
    parser.add_argument("--name", default="custom", help="the vector's name with --spec (custom)")
    parser.add_argument("--seed", type=seed, default=0,
                        help=f"seed of weights and batch ({SEED_RANGE}; default 0)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                        help=f"rows in the batch ({DEFAULT_BATCH})")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR,
                        help=f"learning rate of the SGD step ({DEFAULT_LR})")
    parser.add_argument("--force", action="store_true",
                        help="run even when the memory estimate exceeds what is available")


def run(args: argparse.Namespace) -> int:
    output_folder(args.folder)
    specs = DEFAULT_SPECS
    if args.spec:
        data = parse_json_option(args.spec, "--spec")
        one = any(key in data for key in ("layers", "net", "family"))  # one spec, not a set
        chosen = {args.name: data} if one else data
        specs = {name: make_spec(value, f"--spec {name}") for name, value in chosen.items()}
    bad = [n for n in specs if not n.replace("-", "").replace("_", "").isalnum()]
    if bad or not specs:
        raise InputError(f"vector names {bad or '(none)'}: use letters, digits, '-' and '_'")
    check_not_inputs({"DIR": files_written(args.folder, list(specs))}, {"--spec": args.spec})
    if not args.lr > 0:
        raise InputError(f"--lr must be positive, got {args.lr}")
    if args.batch > 0:
        needed = max(estimate_bytes(spec, args.batch, data_bytes=vector_bytes(spec, args.batch))
                     for spec in specs.values())
        check_memory(needed, "vectors export", "lower --batch or the --spec sizes", args.force)
    names = export(args.folder, specs, args.seed, args.batch, args.lr)
    print(f"wrote {len(names)} vector(s) to {args.folder}: {', '.join(names)}")
    print(f"see {args.folder / 'README.md'}; check a results file with "
          f"`nnparity verify --results FILE --vectors {args.folder}`")
    return 0
