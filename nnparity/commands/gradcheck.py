"""``nnparity gradcheck``: finite differences against the reference's hand-derived gradients."""

from __future__ import annotations

import argparse

import numpy as np

from nnparity.backends.compare import GRADCHECK_TOLERANCE, gradcheck_comparison
from nnparity.commands._args import SEED_RANGE, seed
from nnparity.commands.train import _ints, _names
from nnparity.memory import check_memory, estimate_bytes
from nnparity.reference import MLPSpec, gradients, init_params, loss
from nnparity.reference.gradcheck import gradcheck
from nnparity.reference.init import SCHEMES

HELP = "check the reference's gradients against central finite differences (float64)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-dim", type=int, default=4, help="input width (default 4)")
    parser.add_argument("--layers", type=_ints, default=(5, 3), help="widths (default 5,3)")
    parser.add_argument("--activations", type=_names, default=("tanh", "identity"),
                        help="one per layer (default tanh,identity)")
    parser.add_argument("--loss", choices=["l2", "ce", "bce", "mse"], default="ce")
    parser.add_argument("--reduction", choices=["sum", "mean"], default="sum")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--no-bias", dest="bias", action="store_false")
    parser.add_argument("--init", choices=sorted(SCHEMES), default="xavier")
    parser.add_argument("--batch", type=int, default=5, help="rows in the random batch")
    parser.add_argument("--seed", type=seed, default=0,
                        help=f"seed of the weights, the batch and the sample ({SEED_RANGE}; "
                        "default 0)")
    parser.add_argument("--max-entries", type=int, default=200,
                        help="entries checked per tensor (a seeded sample beyond this)")
    parser.add_argument("--force", action="store_true",
                        help="run even when the memory estimate exceeds what is available")


def _labels(spec: MLPSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    if spec.loss == "ce":
        return rng.integers(0, spec.output_dim, size=n)
    if spec.loss == "bce":
        return rng.integers(0, 2, size=n).astype(np.float64)
    return rng.standard_normal((n, spec.output_dim))


def run(args: argparse.Namespace) -> int:
    if args.batch <= 0 or args.max_entries <= 0:
        raise ValueError("--batch and --max-entries must be positive")
    spec = MLPSpec(args.input_dim, args.layers, args.activations, loss=args.loss,
                   reduction=args.reduction, weight_decay=args.weight_decay, bias=args.bias)
    check_memory(estimate_bytes(spec, args.batch, data_bytes=8 * args.batch * spec.input_dim),
                 "gradcheck", "lower --layers, --input-dim or --batch", args.force)
    params = init_params(spec, args.init, args.seed)
    rng = np.random.default_rng([args.seed, 1])
    x = rng.standard_normal((args.batch, spec.input_dim))
    y = _labels(spec, rng, args.batch)
    analytic = gradients(spec, params, x, y).grads
    results = gradcheck(lambda p: loss(spec, p, x, y), params, analytic,
                        max_entries=args.max_entries, seed=args.seed)
    print(f"spec {spec.to_json()}")
    print(f"{'tensor':<8}{'checked':>12}{'max abs':>12}{'max rel':>12}{'tol':>10}  result")
    failed = 0
    for r in results:
        judged = gradcheck_comparison(r, params[r.name].shape)
        failed += not judged.passed
        note = f" ({judged.note})" if judged.note else ""
        print(f"{r.name:<8}{f'{r.checked}/{r.total}':>12}{judged.max_abs:>12.2e}"
              f"{judged.max_rel:>12.2e}{GRADCHECK_TOLERANCE:>10.0e}  "
              f"{'PASS' if judged.passed else 'FAIL'}{note}")
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
