"""``nnparity verify``: check a learner's own backpropagation against the reference.

``nnparity verify my_net.py`` runs the file (confined: see :mod:`nnparity.verify.sandbox`) as
its ``NNPARITY`` declaration says, on the same weights, batch and labels as the reference and the
installed framework backends; ``nnparity verify FOLDER ...`` grades many files, one line each;
``nnparity verify --results FILE --vectors DIR`` checks a results file written by a program in
any language against golden vectors. Exit 0 when everything matches, 1 when something differs
(or the learner's code fails), 2 for bad usage or a bad declaration.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nnparity.backends.registry import NAMES
from nnparity.commands._args import DEFAULT_TIMEOUT, SEED_RANGE, seed
from nnparity.errors import InputError
from nnparity.files.escape import terminal_line, terminal_text
from nnparity.files.outputs import check_distinct, check_not_inputs, files_in
from nnparity.parallel import JOBS_MAX, check_jobs
from nnparity.parity import report
from nnparity.verify import class_summary, draft, gradescope, output
from nnparity.verify.adapters import make_spec, parse_json_option
from nnparity.verify.edges import DEFAULT_MODE
from nnparity.verify.edges import MODES as EDGE_MODES
from nnparity.verify.feedback import LEVELS
from nnparity.verify.grade import Options, expand, grade, verify_file
from nnparity.verify.interpreter import probe
from nnparity.verify.problem import DEFAULT_BATCH
from nnparity.verify.runner import DescribeError, describe_file
from nnparity.verify.sandbox import MODES, Sandbox, resolve
from nnparity.verify.scoring import DEFAULT_POINTS, parse_points
from nnparity.verify.session import Verdict, judge
from nnparity.verify.vectors import load_vector, read_results, user_tensors

HELP = "check your own backpropagation (a Python file, or a results file against golden vectors)"
FRAMEWORKS = tuple(n for n in NAMES if n != "numpy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="*", type=Path,
                        help="your Python file with an NNPARITY declaration; several files or "
                        "folders (their *.py files) to grade many, one line each")
    parser.add_argument("--spec", metavar="JSON|FILE",
                        help="the network (MLPSpec fields, or a layer list under 'net'); "
                        "default: the declaration's 'spec'")
    parser.add_argument("--adapter", metavar="JSON|FILE",
                        help="declaration keys, added to (and overriding) the file's NNPARITY")
    parser.add_argument("--seed", type=seed, default=0,
                        help=f"seed of weights and batch ({SEED_RANGE}; default 0)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                        help=f"rows in the batch ({DEFAULT_BATCH})")
    parser.add_argument("--backends", default=None, metavar="LIST",
                        help="frameworks shown alongside: all (default for one file), none "
                        f"(default when grading many), or a comma list of {', '.join(FRAMEWORKS)}")
    parser.add_argument("--force", action="store_true",
                        help="run even when the memory estimate says --batch does not fit")
    parser.add_argument("--jobs", type=int, default=1,
                        help=f"files verified in parallel when grading many (1; at most "
                        f"{JOBS_MAX}, and never more than the files)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds your code may run ({DEFAULT_TIMEOUT:g}; inf: no limit)")
    parser.add_argument("--sandbox", default="auto", choices=MODES,
                        help="require: bubblewrap or exit 2; auto (default): bubblewrap when it "
                        "works, else the fallback's layers that work here, with a warning "
                        "(grading several files needs one that confines, or off); off: no "
                        "sandbox (docs/sandbox.md)")
    parser.add_argument("--edge-cases", default=DEFAULT_MODE, choices=EDGE_MODES,
                        help="the edge-case batch (exact zeros at relu's kink, a +1000 offset on "
                        "the output biases), judged after the math passes: warn (default: "
                        "findings such as softmax-overflow, relu-at-zero are warnings), fail, or "
                        "off")
    parser.add_argument("--root", type=Path, metavar="DIR",
                        help="the submission's tree, copied whole for your code to run in, the "
                        "file run from its own folder inside it (os.pardir imports); default: "
                        "the file's folder")
    parser.add_argument("--python", metavar="PATH",
                        help="the interpreter (a course's, a virtual environment's bin/python) "
                        "that runs your file; it needs NumPy (default: verify's own, whose "
                        "installed packages your code may import)")
    parser.add_argument("--results", type=Path, metavar="FILE",
                        help="a results file (.json or .npz) to check against --vectors")
    parser.add_argument("--vectors", type=Path, metavar="DIR",
                        help="golden vectors written by `nnparity vectors export`")
    parser.add_argument("--init", action="store_true",
                        help="run FILE once in the sandbox and print a draft NNPARITY "
                        "declaration guessed from its arrays, with a comment per guess")
    parser.add_argument("--feedback", default="full", choices=LEVELS,
                        help="what the student sees: full (default: every number), diagnosis "
                        "(each stage's verdict, the first divergence and the diagnosis, no number "
                        "of the reference), pass-fail (each stage's verdict only); for the "
                        "terminal and every report")
    parser.add_argument("--points", metavar="STAGE=N,...",
                        help="partial credit by stage, e.g. forward=1,loss=1,delta=2,grad=2,"
                        "update=1 (a stage earns its points when every tensor of it matches); "
                        "default for --gradescope: 1 per stage")
    parser.add_argument("--gradescope", metavar="FILE|DIR",
                        help="write Gradescope's results.json (one submission), or for several "
                        "one <submission>.json per submission into the folder DIR")
    parser.add_argument("--summary", metavar="FILE.md|FILE.html",
                        help="the class at a glance: pass rate per stage, diagnoses with their "
                        "files, the slowest submissions")
    parser.add_argument("--json", metavar="FILE", help="write a JSON report")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--verbose", action="store_true", help="every backend tensor in the table")
    parser.epilog = ("The NNPARITY declaration, the diagnoses and the results-file format are "
                     "described in docs/guide/verify.md.")


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


def _options(args: argparse.Namespace, files: list[Path], many: bool) -> Options:
    if not args.timeout > 0:
        raise InputError(f"--timeout must be positive (or inf), got {args.timeout}")
    check_jobs(args.jobs)
    adapter = parse_json_option(args.adapter, "--adapter") if args.adapter else {}
    spec = make_spec(parse_json_option(args.spec, "--spec"), "--spec") if args.spec else None
    backends = _backends(args.backends or ("none" if many else "all"))
    if backends:
        from nnparity.backends.determinism import apply_determinism

        apply_determinism(seed=args.seed)
    sandbox = resolve(args.sandbox)
    if many and not sandbox.confined and args.sandbox != "off":
        raise InputError(f"grading several files needs a sandbox, and none works here "
                         f"({sandbox.why}): give --sandbox off to grade them unconfined "
                         "(docs/sandbox.md)")
    warning = sandbox.warning()
    if warning:
        print(warning, file=sys.stderr)  # once per run, whatever the number of files
    python = probe(args.python) if args.python else None
    return Options(sandbox, args.timeout, args.seed, args.batch, adapter, spec, tuple(backends),
                   args.force, args.edge_cases, _root(args.root, files), python)


def _root(root: Path | None, files: list[Path]) -> Path | None:
    """``--root DIR``, checked: a folder holding every file to verify."""
    if root is None:
        return None
    if not root.is_dir():
        raise InputError(f"--root {root}: not a folder")
    top = root.resolve()
    outside = [f for f in files if top not in f.resolve().parents]
    if outside:
        raise InputError(f"--root {root}: {outside[0]} is not inside it")
    return top


def _verify_files(args: argparse.Namespace, files: list[Path], many: bool
                  ) -> tuple[list[Verdict], Sandbox]:
    """The verdicts and the sandbox they ran in."""
    options = _options(args, files, many)
    if not many:
        verdict = verify_file(files[0], files[0].name, options)
        print(terminal_text(output.render(verdict, verbose=args.verbose, level=args.feedback)))
        print()
        return [verdict], options.sandbox
    verdicts = grade(files, options, args.jobs,
                     lambda v: print(terminal_line(output.student_line(v, args.feedback)),
                                             flush=True))
    return verdicts, options.sandbox


def _verify_results(args: argparse.Namespace) -> list[Verdict]:
    if not args.vectors:
        raise InputError("--results needs --vectors DIR (the folder the vectors came from)")
    if args.file:
        raise InputError("give either Python files or --results, not both")
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


def _init(args: argparse.Namespace) -> int:
    """``--init FILE``: the draft declaration on stdout (exit 1 when the file cannot be run)."""
    files = expand(args.file)
    if len(files) != 1 or args.file[0].is_dir():
        raise InputError("--init takes one Python file or notebook")
    if not args.timeout > 0:
        raise InputError(f"--timeout must be positive (or inf), got {args.timeout}")
    sandbox = resolve(args.sandbox)
    if sandbox.warning():
        print(sandbox.warning(), file=sys.stderr)
    try:
        described = describe_file(files[0], timeout=args.timeout, sandbox=sandbox,
                                  root=_root(args.root, files),
                                  python=probe(args.python) if args.python else None)
    except DescribeError as exc:
        print(f"error: {terminal_line(exc)}", file=sys.stderr)
        return 1
    print(draft.build(described, files[0]), end="")
    return 0


def run(args: argparse.Namespace) -> int:
    """SIGINT and SIGTERM unwind through the runner, which kills the learner's processes
    (:mod:`nnparity.stopping`)."""
    if args.init:
        return _init(args)
    files = expand(args.file) if args.file and not args.results else []
    many = len(files) > 1 or any(p.is_dir() for p in args.file)
    points = parse_points(args.points) if args.points else DEFAULT_POINTS
    for target in (args.json, args.junit):
        if target:
            report.check_writable(target)
    if args.gradescope:
        if args.results:
            raise InputError("--gradescope grades Python files or notebooks, not --results")
        gradescope.check_target(args.gradescope, many)
    if args.summary:
        class_summary.check_target(args.summary)
    reports = {"--json": args.json, "--junit": args.junit, "--gradescope": args.gradescope,
               "--summary": args.summary}
    check_distinct(reports)
    check_not_inputs(reports, {
        "FILE": files or None, "--spec": args.spec, "--adapter": args.adapter,
        "--results": args.results, "--vectors": files_in(args.vectors)})
    start = time.perf_counter()
    sandbox = None
    if args.results:
        verdicts = _verify_results(args)
        for verdict in verdicts:
            print(terminal_text(output.render(verdict, verbose=args.verbose,
                                              level=args.feedback)))
            print()
        if len(verdicts) > 1 and args.feedback == "full":
            print("\n".join(map(terminal_line, output.failures(verdicts))))
    elif args.file:
        verdicts, sandbox = _verify_files(args, files, many)
    else:
        raise InputError("give your Python file(s) or folder(s), or --results FILE --vectors DIR")
    summary = output.grade_summary if many else output.summary
    print(terminal_line(summary(verdicts, time.perf_counter() - start)))  # one per run
    command = {"name": "verify", "files": [str(f) for f in args.file],
               "results": str(args.results) if args.results else None, "seed": args.seed,
               "batch": args.batch, "sandbox": sandbox.to_json() if sandbox else None,
               "feedback": args.feedback, "edge_cases": args.edge_cases}
    output.write_reports(verdicts, args.json, args.junit, command, args.feedback,
                         points if args.points else None)
    if args.gradescope:
        gradescope.write(verdicts, args.gradescope, many, points, args.feedback)
    if args.summary:
        class_summary.write(verdicts, args.summary)
    return 0 if all(v.passed for v in verdicts) else 1
