"""``nnparity verify``: check a learner's own backpropagation against the reference.

``nnparity verify my_net.py`` runs the file (in a subprocess, with a timeout) as its ``NNPARITY``
declaration says, on the same weights, batch and labels as the reference and the installed
framework backends; ``nnparity verify --results FILE --vectors DIR`` checks a results file
written by a program in any language against golden vectors. Exit 0 when everything matches,
1 when something differs (or the learner's code fails), 2 for bad usage or a bad declaration.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nnparity import report
from nnparity.backends.registry import NAMES
from nnparity.commands._args import seed
from nnparity.errors import InputError
from nnparity.verify import output
from nnparity.verify.adapters import build_adapter, make_spec, parse_json_option, read_declaration
from nnparity.verify.layout import to_canonical, user_inputs
from nnparity.verify.problem import DEFAULT_BATCH, make_problem
from nnparity.verify.runner import run_user_file
from nnparity.verify.session import Verdict, failed_run, judge
from nnparity.verify.vectors import load_vector, read_results, user_tensors

HELP = "check your own backpropagation (a Python file, or a results file against golden vectors)"
FRAMEWORKS = tuple(n for n in NAMES if n != "numpy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", type=Path,
                        help="your Python file with an NNPARITY declaration")
    parser.add_argument("--spec", metavar="JSON|FILE",
                        help="the network (MLPSpec fields); default: the declaration's 'spec'")
    parser.add_argument("--adapter", metavar="JSON|FILE",
                        help="declaration keys, added to (and overriding) the file's NNPARITY")
    parser.add_argument("--seed", type=seed, default=0, help="seed of weights and batch (0)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                        help=f"rows in the batch ({DEFAULT_BATCH})")
    parser.add_argument("--backends", default="all", metavar="LIST",
                        help="frameworks shown alongside: all (default), none, or a comma list "
                        f"of {', '.join(FRAMEWORKS)}")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds your code may run (60)")
    parser.add_argument("--results", type=Path, metavar="FILE",
                        help="a results file (.json or .npz) to check against --vectors")
    parser.add_argument("--vectors", type=Path, metavar="DIR",
                        help="golden vectors written by `nnparity vectors export`")
    parser.add_argument("--json", metavar="FILE", help="write a JSON report")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--verbose", action="store_true", help="every backend tensor in the table")
    parser.epilog = ("The NNPARITY declaration, the diagnoses and the results-file format are "
                     "described in examples/verify/README.md.")


def _backends(text: str) -> list[str]:
    if text == "all":
        return list(FRAMEWORKS)
    if text == "none":
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FRAMEWORKS]
    if unknown:
        raise InputError(f"unknown backend(s) {', '.join(unknown)}; known: "
                         f"{', '.join(FRAMEWORKS)}, all, none")
    return names


def _verify_file(args: argparse.Namespace) -> list[Verdict]:
    path: Path = args.file
    if not args.timeout > 0:
        raise InputError(f"--timeout must be positive, got {args.timeout}")
    if not path.is_file() or path.suffix != ".py":
        raise InputError(f"{path}: not a Python file")
    declaration = read_declaration(path)
    if args.adapter:
        declaration = {**declaration, **parse_json_option(args.adapter, "--adapter")}
    if not declaration:
        raise InputError(f"{path}: no NNPARITY declaration (and no --adapter): see "
                         "examples/verify/README.md for its keys")
    spec = make_spec(parse_json_option(args.spec, "--spec"), "--spec") if args.spec else None
    adapter = build_adapter(declaration, spec, str(path))
    backends = _backends(args.backends)
    if backends:
        from nnparity.backends.determinism import apply_determinism

        apply_determinism(seed=args.seed)
    problem = make_problem(adapter.spec, args.seed, args.batch)
    inputs = user_inputs(adapter, problem.params, problem.x, problem.y)
    outcome = run_user_file(path, adapter, inputs, problem.n, args.timeout)
    if outcome.error is not None:
        return [failed_run(path.name, problem, outcome.error, outcome.seconds)]
    problem.lr = float(outcome.lr or problem.lr)
    user = to_canonical(adapter, outcome.raw, problem.n)
    return [judge(path.name, problem, user, seconds=outcome.seconds, warnings=outcome.warnings,
                  backends=backends)]


def _verify_results(args: argparse.Namespace) -> list[Verdict]:
    if not args.vectors:
        raise InputError("--results needs --vectors DIR (the folder the vectors came from)")
    if args.file:
        raise InputError("give either a Python file or --results, not both")
    if not args.vectors.is_dir():
        raise InputError(f"{args.vectors}: no such vector folder")
    results, layout = read_results(args.results)
    verdicts = []
    for name, tensors in results.items():
        vector = load_vector(args.vectors, name)
        user = user_tensors(args.results, vector, tensors, layout)
        verdicts.append(judge(name, vector.problem, user, reference=vector.expected))
    if not verdicts:
        raise InputError(f"{args.results}: no vectors in the results file")
    return verdicts


def run(args: argparse.Namespace) -> int:
    for target in (args.json, args.junit):
        if target:
            report.check_writable(target)
    start = time.perf_counter()
    if args.results:
        verdicts = _verify_results(args)
    elif args.file:
        verdicts = _verify_file(args)
    else:
        raise InputError("give your Python file, or --results FILE --vectors DIR")
    for verdict in verdicts:
        print(output.render(verdict, verbose=args.verbose))
        print()
    if len(verdicts) > 1:
        print("\n".join(output.failures(verdicts)))
    print(output.summary(verdicts, time.perf_counter() - start))
    command = {"name": "verify", "file": str(args.file) if args.file else None,
               "results": str(args.results) if args.results else None, "seed": args.seed,
               "batch": args.batch}
    output.write_reports(verdicts, args.json, args.junit, command)
    return 0 if all(v.passed for v in verdicts) else 1
