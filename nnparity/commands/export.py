"""``nnparity export``: a spec as a standalone model file for one framework."""

from __future__ import annotations

import argparse
import sys

from nnparity.export import source
from nnparity.export.graph import network
from nnparity.export.writers import OPTIMIZERS, VARIANTS, WRITERS
from nnparity.files.atomic import write_text
from nnparity.files.outputs import check_not_inputs, output_file

HELP = "print a standalone PyTorch, Keras, JAX or NumPy model file for a spec or a preset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC.json|PRESET",
                        help="a spec as to_dict() writes it, or a preset name (seed000-iris, ...)")
    parser.add_argument("--framework", choices=sorted(WRITERS), required=True)
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="default: the preset's, or sgd")
    parser.add_argument("--lr", type=float, help="default: the preset's, or 0.01")
    parser.add_argument("--momentum", type=float, help="default: the preset's, or 0.9")
    parser.add_argument("--dtype", choices=["float64", "float32"], help="default: the spec's")


def run(args: argparse.Namespace) -> int:
    if args.output:
        output_file(args.output)  # its folder must exist: checked before any work
        check_not_inputs({"-o": args.output}, {"SPEC": args.spec})
    spec, optimizer, title = source.load(args.spec, {
        "optimizer": args.optimizer, "lr": args.lr, "momentum": args.momentum,
        "dtype": args.dtype, "variant": VARIANTS[args.framework]})
    text = WRITERS[args.framework](network(spec, optimizer, title))
    if args.output:
        write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
