"""``nnparity check``: run the parity matrix on every installed backend (the main job), or
check users' own models (``--model-file PATH.py:NAME``, repeatable, each on its own; ``--port
FIRST SECOND``, a port against its original, each with its own weights; :mod:`nnparity.models`).

Exit 0 when every case passes on every backend, 1 when any fails, 2 on bad usage (unknown or
explicitly requested but missing backend, bad regex, unwritable report file, empty selection, a
model file that cannot be loaded or has a layer without an exact counterpart, a model file whose
code raises or exits, or that runs past ``--timeout``: :mod:`nnparity.models.guard`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

from nnparity.backends import registry
from nnparity.backends.compare import first_divergence
from nnparity.backends.determinism import apply_determinism, describe
from nnparity.backends.precision import (
    DEVICES,
    pin_torch_precision,
    precision_flags,
    tf32_note,
)
from nnparity.commands._args import DEFAULT_TIMEOUT, SEED_RANGE, seconds, seed
from nnparity.errors import InputError
from nnparity.files.escape import terminal_line, terminal_text
from nnparity.files.json_input import spec_file
from nnparity.files.outputs import check_distinct, check_not_inputs
from nnparity.memory import check_memory, model_input_bytes
from nnparity.models.source import LOSS_NAMES
from nnparity.parallel import JOBS_MAX, check_jobs, worker_count
from nnparity.parity import cases, report
from nnparity.parity import runner as parity
from nnparity.parity.check_timing import CheckTiming
from nnparity.parity.workers import run_backends
from nnparity.progress import Progress

DIMENSION_MAX = 2**31 - 1
"""The largest input dimension: frameworks index a dimension with a 32-bit integer."""

HELP = "check every backend against the NumPy reference on the parity case matrix"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nnparity check``."""
    parser.add_argument("--backends", metavar="NAMES",
                        help="comma-separated backends (default: every installed one; "
                        f"known: {', '.join(registry.NAMES)})")
    parser.add_argument("--dtype", choices=cases.DTYPES,
                        help="only cases of this dtype (with --model-file: convert a torch "
                        "model to it first, e.g. float64 for the exact check)")
    parser.add_argument("--model", choices=cases.MODELS, default="all",
                        help="model family: all (default), mlp or cnn")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small pairwise-covering subset")
    size.add_argument("--full", action="store_true",
                      help="every combination of the math-changing dimensions (slow)")
    parser.add_argument("-k", metavar="REGEX", dest="pattern",
                        help="only cases whose name matches REGEX (re.search)")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="backends checked at once, each in a worker process of its own "
                        "(default: one per core; 1: all in this process; CPU only, the matrix "
                        "only, not --model-file or --port)")
    parser.add_argument("--json", metavar="FILE", help="write a JSON report (schema version "
                        f"{report.SCHEMA_VERSION}, documented in nnparity/parity/report.py)")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show every compared tensor, not just the worst per case")
    parser.add_argument("--seed", type=seed, default=0,
                        help=f"seed of the case data and initial weights ({SEED_RANGE}; "
                        "default 0; model files: the batches, and Python, NumPy, torch and "
                        "Keras seeded before each builder runs)")
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="where torch, JAX and TensorFlow compute (built-in backends and "
                        "model files; TensorFlow only where it lists a GPU); the reference stays "
                        "on the CPU; default cpu; float32 is pinned to full precision on GPU")
    parser.add_argument("--allow-tf32", action="store_true",
                        help="keep PyTorch's TF32 defaults on GPU and explain failures of TF32 "
                        "size instead of pinning full float32")
    models = parser.add_argument_group("your own models")
    which = models.add_mutually_exclusive_group()
    which.add_argument("--model-file", action="append", metavar="PATH.py:NAME",
                       help="check the torch.nn.Module / keras.Model that NAME in PATH.py "
                       "returns (or a dict with model, optimizer, loss) against the reference; "
                       "repeatable: each model is checked on its own (a port: --port)")
    which.add_argument("--spec", metavar="FILE.json",
                       help="check the network of a spec file (an MLP, a CNN or a 'net' list "
                       "of layers) on every backend with SGD, momentum and Adam (--dtype: "
                       "in that dtype instead of the file's)")
    which.add_argument("--port", nargs=2, metavar=("FIRST.py:NAME", "SECOND.py:NAME"),
                       help="check both models, then SECOND (a port of FIRST) against FIRST "
                       "layer by layer, each with the weights its own file gives (or "
                       "--weights): a difference fails at the first diverging layer, with the "
                       "weight-conversion mistake that explains it, confirmed by a re-run")
    models.add_argument("--transfer-weights", action="store_true",
                        help="with --port: compare the architectures instead: FIRST's weights "
                        "transferred into SECOND through the canonical layout (SECOND's own "
                        "weights are then only reported on)")
    models.add_argument("--write-weights", metavar="FILE",
                        help="with --port: write SECOND's weights converted from FIRST's, in "
                        "SECOND's framework's format (torch: a state_dict as .safetensors or "
                        ".npz; Keras: .weights.h5)")
    models.add_argument("--loss", choices=LOSS_NAMES,
                        help="the loss (mean reduction) of models whose file gives none: "
                        "needed where the builder returns no loss and the model is not a "
                        "compiled Keras model")
    models.add_argument("--input-shape", metavar="H,W,C",
                        help="input shape, canonical NHWC whatever the framework, where it "
                        "cannot be inferred (CNNs)")
    models.add_argument("--force", action="store_true",
                        help="run even when the memory estimate says --input-shape does not fit")
    models.add_argument("--weights", metavar="FILE", action="append",
                        help="load a state_dict / Keras weights (.npz, .safetensors, Keras "
                        ".weights.h5) first; repeatable: one per model, in the order the models "
                        "are given ('-': that model's builder's own weights)")
    models.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="seconds the model files' own code may run in all (loading, "
                        "building, forward, loss, backward, steps; ports included; nnparity's "
                        f"own work is not counted; default {DEFAULT_TIMEOUT:g}, as verify's; "
                        "inf: no limit); past it, exit 2 naming the file")


def _backends(requested: str | None,
              timing: CheckTiming | None = None) -> tuple[list[str], dict[str, str]]:
    """(backends to run, implicitly skipped backend -> reason); explicit problems exit 2. Each
    backend's import is timed into ``timing`` (when given)."""
    timing = timing or CheckTiming()
    status = {}
    for name in _requested(requested):
        with timing.importing(name):
            status[name] = registry.reason(name)
        if requested is not None and status[name] is not None:
            raise InputError(f"backend {name!r} is unavailable: {status[name]}")
    return ([n for n, why in status.items() if why is None],
            {n: why for n, why in status.items() if why is not None})


def _shape(text: str | None, force: bool) -> tuple[int, ...]:
    """``--input-shape`` as integers, refused up front when its batches alone do not fit."""
    if text is None:
        return ()
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) not in (1, 3) or min(shape) <= 0 or max(shape) > DIMENSION_MAX:
        raise InputError(f"--input-shape {text!r}: expected H,W,C (or D) positive integers "
                         f"(at most {DIMENSION_MAX})")
    check_memory(model_input_bytes(shape), f"--input-shape {text}", "lower --input-shape", force)
    return shape


def _targets(args: argparse.Namespace) -> list[str]:
    """The model files, in order: ``--port``'s two or the ``--model-file`` ones."""
    return list(args.port or args.model_file or [])


def _weights(args: argparse.Namespace, count: int) -> list[str | None]:
    """``--weights`` per model (None: the builder's own); exit 2 unless one per model."""
    given = args.weights or []
    if not given:
        return [None] * count
    if len(given) != count:
        raise InputError(f"--weights given {len(given)} time{'s' * (len(given) != 1)} for "
                         f"{count} models: give one per model, in their order ('-' for a "
                         "model's own weights)")
    return [None if path == "-" else path for path in given]


def selected_cases(args: argparse.Namespace) -> list[cases.Case]:
    """The cases the options select: ``--spec``'s or the matrix's (``--quick``, ``--full``,
    ``--model``, ``--dtype``, ``-k``); ``re.error`` for a bad ``-k`` propagates. Workers call it
    again with the same options (:mod:`nnparity.parity.workers`)."""
    if args.spec:
        return _spec_cases(args)
    return cases.select(_selection(args), pattern=args.pattern, dtype=args.dtype,
                        model=args.model)


def _selection(args: argparse.Namespace) -> str:
    return "quick" if args.quick else "full" if args.full else "default"


def _spec_cases(args: argparse.Namespace) -> list[cases.Case]:
    """The cases of ``--spec FILE`` (in ``--dtype`` when given), filtered by ``-k``."""
    spec = spec_file(args.spec)
    if args.dtype:
        spec = replace(spec, dtype=args.dtype)
    label = Path(args.spec).stem or "spec"
    regex = re.compile(args.pattern) if args.pattern else None
    return [case for case in cases.spec_cases(spec, label)
            if regex is None or regex.search(case.name)]


def _run_models(args: argparse.Namespace) -> tuple[list[report.CaseResult], float]:
    from nnparity.models import check as model_check
    from nnparity.models import native_weights
    from nnparity.models.guard import time_limit
    from nnparity.models.port import port
    from nnparity.models.source import load

    targets, shape = _targets(args), _shape(args.input_shape, args.force)
    started = time.perf_counter()
    results, models, loaded = [], [], []
    with time_limit(args.timeout, targets):
        for target, weights in zip(targets, _weights(args, len(targets)), strict=True):
            source = load(target, shape, args.loss, args.seed)
            models.append(model_check.adapt(source, args.dtype, weights and
                                            native_weights.read(weights), args.device))
            loaded.append(models[-1].params())  # before the check trains it
        if args.write_weights:
            native_weights.check_output(args.write_weights, models[1].source.framework)
        for model in models:
            pin_torch_precision(args.allow_tf32)
            results.append(model_check.check(model, model.source.label, seed=args.seed))
        if args.port:
            results.append(port(models[0], models[1], (targets[0], targets[1]), seed=args.seed,
                                own=(loaded[0], loaded[1]), transfer=args.transfer_weights))
            if args.write_weights:
                models[1].load_params(loaded[0])
                native_weights.write(models[1], args.write_weights)
    return results, time.perf_counter() - started


def run(args: argparse.Namespace) -> int:
    for path in (args.json, args.junit):
        if path:
            try:
                report.check_writable(path)
            except OSError as exc:
                raise InputError(str(exc)) from None
    reports = {"--json": args.json, "--junit": args.junit}
    outputs = {**reports, "--write-weights": args.write_weights}
    check_distinct(outputs)
    check_not_inputs(outputs, {"--weights": [w for w in args.weights or () if w != "-"],
                               "--model-file": [target.rpartition(":")[0] or target
                                                for target in _targets(args)]})
    for flag in ("transfer_weights", "write_weights"):
        if getattr(args, flag) and not args.port:
            raise InputError(f"--{flag.replace('_', '-')} applies to a port: --port FIRST SECOND")
    if _targets(args):  # each model's framework checks --device when it is loaded
        apply_determinism(seed=args.seed)
        results, seconds = _run_models(args)
        command = {"model_files": _targets(args), "port": bool(args.port),
                   "transfer_weights": args.transfer_weights, "input_shape": args.input_shape,
                   "weights": args.weights, "loss": args.loss, "dtype": args.dtype,
                   "seed": args.seed, "argv": sys.argv[1:]}
        if args.model_file and len(args.model_file) > 1:
            print("each model was checked on its own; to compare a port with its original: "
                  "--port FIRST.py:NAME SECOND.py:NAME (--transfer-weights to compare the "
                  "architectures only)\n")
        return _report(args, results, {}, seconds, command)
    selection = _selection(args)
    if args.jobs is not None:
        check_jobs(args.jobs)
    try:
        selected = selected_cases(args)
    except re.error as exc:
        raise InputError(f"bad -k regex {args.pattern!r}: {exc}") from None
    if not selected:
        raise InputError(f"no {selection} case matches -k {args.pattern!r}"
                         + (f" and --dtype {args.dtype}" if args.dtype else ""))
    if args.list:
        print("\n".join(terminal_line(case.name) for case in selected))
        return 0
    apply_determinism(seed=args.seed)  # before any framework import (TF's oneDNN switch)
    timing = CheckTiming()
    started = time.perf_counter()
    workers = _workers(args)
    if workers > 1:
        names, skipped = _requested(args.backends), {}
        results = _run_in_workers(names, skipped, args, timing, workers, len(selected))
    else:
        names, skipped = _backends(args.backends, timing)
        results = _run_here(names, skipped, args, timing, selected)
    seconds = time.perf_counter() - started
    order = {case.name: i for i, case in enumerate(selected)}
    results.sort(key=lambda r: (order[r.case], names.index(r.backend)))
    command = {"selection": "spec" if args.spec else selection, "spec": args.spec,
               "model": args.model, "backends": names,
               "dtype": args.dtype, "pattern": args.pattern, "seed": args.seed,
               "argv": sys.argv[1:]}
    if args.verbose:
        print(timing.line())
    return _report(args, results, skipped, seconds, command)


def _workers(args: argparse.Namespace) -> int:
    """Worker processes for the matrix: ``--jobs`` (default one per core), at most one per
    backend to run; 1 (this process) on a GPU device or for one backend."""
    if args.device != "cpu":
        return 1
    names = _requested(args.backends)
    jobs = args.jobs if args.jobs is not None else min(os.cpu_count() or 1, JOBS_MAX)
    return worker_count(jobs, len(names))


def _requested(requested: str | None) -> list[str]:
    """``--backends`` as known names (unknown or empty: exit 2), or every registered one."""
    if requested is None:
        return list(registry.NAMES)
    names = list(dict.fromkeys(n.strip() for n in requested.split(",") if n.strip()))
    if not names:
        raise InputError("--backends is empty; known: " + ", ".join(registry.NAMES))
    for name in names:
        if name not in registry.NAMES:
            raise InputError(f"unknown backend {name!r}; known: {', '.join(registry.NAMES)}")
    return names


def _run_in_workers(names: list[str], skipped: dict[str, str], args: argparse.Namespace,
                    timing: CheckTiming, workers: int, count: int) -> list[report.CaseResult]:
    """The matrix with each backend in a worker (:mod:`nnparity.parity.workers`): an
    unavailable backend is skipped with its reason, or exit 2 when ``--backends`` named it.
    ``names`` loses the skipped ones; ``timing`` gets each worker's import and compile time."""
    with Progress(count * len(names), "check") as progress:
        runs = run_backends(names, args, selected_cases, workers, progress)
    results = []
    for run in runs:
        timing.imports[run.name] = run.timing.imports[run.name]
        timing.compile += run.timing.compile
        if run.unavailable is None:
            results += run.results
        elif args.backends:
            raise InputError(f"backend {run.name!r} is unavailable: {run.unavailable}")
        else:
            names.remove(run.name)
            skipped[run.name] = run.unavailable
    timing.cases, timing.workers = max(run.timing.cases for run in runs), workers
    return results


def _run_here(names: list[str], skipped: dict[str, str], args: argparse.Namespace,
              timing: CheckTiming, selected: list[cases.Case]) -> list[report.CaseResult]:
    """The matrix in this process, backend after backend (``--jobs 1``, a GPU, one backend)."""
    results: list[report.CaseResult] = []
    backends = {}
    for name in list(names):
        try:
            backends[name] = registry.get(name)
            if name != "numpy":  # the reference stays on the CPU
                backends[name] = backends[name].on(args.device)
        except ValueError as exc:
            names.remove(name)
            skipped[name] = str(exc)
    if args.device != "cpu" and names in ([], ["numpy"]):
        raise InputError(f"no backend runs on {args.device}: "
                         + "; ".join(f"{n}: {why}" for n, why in skipped.items()))
    pin_torch_precision(args.allow_tf32)
    with Progress(len(selected) * len(names), "check") as progress, timing.running():
        for name in names:
            backend = backends[name]
            for case in selected:
                results.append(parity.run_case(case, backend, seed=args.seed, name=name))
                progress.update(postfix=f"{name} {case.name}")
    return results


def _report(args: argparse.Namespace, results: list[report.CaseResult], skipped: dict[str, str],
            seconds: float, command: dict) -> int:
    """Print the table, divergences, notes and summary; write --json/--junit; the exit code."""
    for r in results:
        first = first_divergence(r.comparisons)
        note = first and tf32_note((r.spec or {}).get("dtype", ""), first.max_rel,
                                   args.allow_tf32)
        if note and not r.diagnoses:
            r.diagnoses.append(report.Diagnosis("tf32", note, f"first divergence max rel "
                                                f"{first.max_rel:.1e} within TF32 rounding"))
    print(terminal_text(report.render_text(results, skipped, seconds, verbose=args.verbose)))
    failures = report.divergences(results)
    meta = {"skipped_backends": skipped}
    if args.json:
        environment = {**describe(), "precision": precision_flags(args.device)}
        report.write_json(args.json, results, environment=environment, command=command, **meta)
    if args.junit:
        report.write_junit(args.junit, results, **meta)
    return 1 if failures else 0

