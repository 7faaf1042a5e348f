"""Verify one learner's file, or grade many: expand folders, run files in parallel, one verdict
per file (a bad declaration in one submission fails that submission, not the run)."""

from __future__ import annotations

import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from nnparity.errors import InputError
from nnparity.parallel import worker_count
from nnparity.parity.report import CaseResult
from nnparity.reference.family import Spec

from .adapters import Adapter, build_adapter, read_declaration
from .dropout_masks import masks_of
from .edges import DEFAULT_MODE, combine, not_judged
from .interpreter import Interpreter
from .layercheck import is_layer_check, verify_layer
from .layout import canonical_of, learner_index, learner_shapes, to_canonical, user_inputs
from .problem import check_batch, make_problem, reference_tensors
from .runner import run_user_file
from .sandbox import Sandbox, cancel
from .scratch import SharedCopies, special_kind
from .session import YOURS, Verdict, failed_run, judge

SUFFIXES = (".py", ".ipynb")  # what a submission is


@dataclass(frozen=True)
class Options:
    """What every file is verified with (the command line's options)."""

    sandbox: Sandbox
    timeout: float
    seed: int
    batch: int
    adapter: dict[str, Any] = field(default_factory=dict)  # --adapter, over each declaration
    spec: Spec | None = None  # --spec
    backends: tuple[str, ...] = ()
    force: bool = False  # --force: no memory check
    edge_cases: str = DEFAULT_MODE  # --edge-cases: off, warn, fail
    root: Path | None = None  # --root: the submission's tree, copied whole
    python: Interpreter | None = None  # --python: the interpreter running the learner's file
    copies: SharedCopies | None = None  # a grading run's shared copies of the folders


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given, folders as the ``*.py`` and ``*.ipynb`` entries directly inside them
    that are no folders (sorted: a broken link or a FIFO so named is a submission that gets an
    error verdict, not one left out of the count); exit 2 for anything else or for nothing."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and not p.is_dir())
            if not found:
                raise InputError(f"{path}: no .py or .ipynb files in this folder")
            files += found
        elif path.is_file() and path.suffix in SUFFIXES:
            files.append(path)
        else:
            raise InputError(f"{path}: not a Python file, a notebook or a folder of them")
    return files


def case_names(files: Sequence[Path]) -> list[str]:
    """File names, or their paths where two files share a name."""
    names = [f.name for f in files]
    return [str(f) if names.count(f.name) > 1 else f.name for f in files]


def _not_a_file(path: Path) -> str | None:
    """What ``path`` is when it is no regular file (a FIFO would block the read that follows),
    else ``None``."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if path.is_symlink():
            return "a broken or looping symbolic link"
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    return f"a {special_kind(mode) or 'folder'}"  # stat() follows links: no link is left


def verify_file(path: Path, case: str, options: Options) -> Verdict:
    """One file against the reference (see :mod:`nnparity.verify`): the math on the generic
    batch, then, when it passes, the edge cases on the edge batch (:mod:`.edges`)."""
    why = _not_a_file(path)
    if why is not None:
        raise InputError(f"{path}: {why}, not a file to verify")
    declaration = {**read_declaration(path), **options.adapter}
    if not declaration:
        raise InputError(f"{path}: no NNPARITY declaration (and no --adapter): see "
                         "docs/guide/verify.md for its keys")
    if is_layer_check(declaration):  # a normalisation's forward/backward pair on its own
        return verify_layer(path, case, declaration, options)
    adapter = build_adapter(declaration, options.spec, str(path))
    memory = check_batch(adapter.spec, options.batch,
                         (adapter.optimizer or {}).get("name", "sgd"), options.force)
    math = _run(path, case, adapter, options, memory, edges=False)
    if options.edge_cases == "off":
        math.edges = not_judged("off", "--edge-cases off")
        return math
    if not math.passed:
        math.edges = not_judged(options.edge_cases, "the math did not pass: fix it first")
        return math
    edge = _run(path, case, adapter, replace(options, backends=()), memory, edges=True)
    return combine(math, edge, options.edge_cases, adapter.relu_at_zero)


def _run(path: Path, case: str, adapter: Adapter, options: Options, memory: int,
         edges: bool) -> Verdict:
    """The learner's file on one batch (generic, or the edge cases'), judged."""
    problem = make_problem(adapter.spec, options.seed, options.batch, edges=edges)
    inputs = user_inputs(adapter, problem.params, problem.x, problem.y,
                         masks_of(problem.spec))
    outcome = run_user_file(path, adapter, inputs, problem.n, timeout=options.timeout,
                            sandbox=options.sandbox, memory=memory, root=options.root,
                            python=options.python, copies=options.copies)
    if outcome.error is not None and not outcome.raw and not outcome.missing:
        return failed_run(case, problem, outcome.error, outcome.seconds)
    problem.lr = float(outcome.lr or problem.lr)
    problem.optimizer = adapter.make_optimizer(problem.lr) if adapter.optimizer else None
    problem.steps = adapter.steps
    user = to_canonical(adapter, outcome.raw, problem.n)
    reference = reference_tensors(problem)
    unread = {key: why for raw, why in outcome.missing.items()
              if (key := _canonical(adapter, raw, outcome.raw)) is not None}
    return judge(case, problem, user, seconds=outcome.seconds, warnings=outcome.warnings,
                 backends=options.backends if outcome.error is None else (),
                 reference=reference, crash=outcome.error, layout=adapter.layout,
                 unread=unread, shapes=learner_shapes(adapter, outcome.raw, reference),
                 index_of=partial(learner_index, adapter))


def _canonical(adapter: Adapter, raw_key: str, raw: dict[str, Any]) -> tuple[str, str] | None:
    """The canonical key of a key the child reported missing (``None`` for one it should not
    have reported)."""
    try:
        return canonical_of(adapter, raw_key, raw)
    except (KeyError, ValueError):
        return None


def grade(files: Sequence[Path], options: Options, jobs: int,
          progress: Callable[[Verdict], None]) -> list[Verdict]:
    """Every file, ``jobs`` at a time, in the given order; ``progress`` sees each verdict as it
    is ready (from the calling thread). A file whose declaration or sizes are wrong gets an
    error verdict; Ctrl-C stops every running learner before it propagates. Each folder is
    copied once for all its runs (:class:`SharedCopies`), removed at the end."""
    names = case_names(files)
    cancel.clear()
    with SharedCopies() as copies:
        return _grade(files, names, replace(options, copies=copies), jobs, progress)


def _grade(files: Sequence[Path], names: list[str], options: Options, jobs: int,
           progress: Callable[[Verdict], None]) -> list[Verdict]:
    """:func:`grade`'s pool, ``options`` carrying the run's shared copies."""

    def one(index: int) -> Verdict:
        try:
            return verify_file(files[index], names[index], options)
        except InputError as exc:
            return Verdict(names[index], [CaseResult(names[index], YOURS, error=str(exc))])

    verdicts: list[Verdict] = []
    with ThreadPoolExecutor(max_workers=worker_count(jobs, len(files))) as pool:
        futures = [pool.submit(one, i) for i in range(len(files))]
        try:
            for future in futures:
                verdict = future.result()
                verdicts.append(verdict)
                progress(verdict)
        except BaseException:
            cancel.set()
            for future in futures:
                future.cancel()
            raise
    return verdicts
