"""The process that runs a learner's file: ``python -I child.py`` (run as a script, by path).

Reads the job from stdin: a frame (:func:`encode`) whose metadata is the user's file, the
adapter and the folders to add to the import path (verify's own: packages installed where verify
runs are importable, nnparity never) as JSON and whose arrays are ``x``, ``y``, ``W1, b1, ...``
in the user's layout. Imports
the user's file under a name other than ``__main__`` (so ``if __name__ == "__main__":`` blocks
do not run), evaluates the adapter's expressions ``steps`` times (forward, backward, update on
the same batch) and reads the declared tensors after their stage. Sends one frame on the results
pipe (whose descriptor number ``NNPARITY_VERIFY_CHANNEL`` gives; moved to a close-on-exec
descriptor before the user's code runs): arrays
``output``, ``loss``, ``<role>/<layer>``, ``W_new/<layer>@<step>`` and a norm layer's
``<role>/<layer>[@<step>]`` (:mod:`nnparity.verify.norms`); metadata ``lr``,
``warnings``, ``left_behind`` (processes the user's code left running), ``missing`` (declared
tensors the learner's result does not hold: key -> why) and ``error`` (``null``,
or ``kind`` ``adapter`` for a missing name or unusable value, ``exception`` for an error raised
by the user's code, with a ``message`` pointing at the file and line; the tensors read before
the error are sent too).

Run with ``--fill-from DIR`` (a class graded under bubblewrap), it first copies ``DIR``, the
grading run's read-only pristine copy of the learner's folder, into its working folder (a tmpfs
of the sandbox's own).

Imports NumPy and the standard library only (nnparity itself is not importable here); nothing
is pickled.
"""

from __future__ import annotations

import ast
import fcntl
import importlib.abc
import importlib.util
import inspect
import io
import json
import os
import shutil
import struct
import sys
import traceback
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

MODULE_NAME = "nnparity_user_code"
MAX_WARNINGS = 5
MAGIC = b"NNPVERIFY1"
CHANNEL_VARIABLE = "NNPARITY_VERIFY_CHANNEL"  # the results pipe's descriptor number
BLOCKED = "nnparity"
NORM_PLACES = ("gamma", "beta", "running_mean", "running_var")  # nnparity.verify.norms.PLACES


class Failure(Exception):
    """Stops the run; ``kind`` is ``adapter`` or ``exception``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(" ".join(message.split("\n")))  # one line on the terminal
        self.kind = kind


class Runner:
    """Evaluates adapter expressions in the user's module, with the run's values in scope."""

    def __init__(self, module: ModuleType, path: Path, scope: dict[str, Any],
                 missing: dict[str, str]) -> None:
        self.module, self.path, self.scope, self.missing = module, path, scope, missing

    def _namespace(self) -> dict[str, Any]:
        return {**self.module.__dict__, **self.scope}

    def evaluate(self, expression: str, label: str, after: str) -> Any:
        """The value of ``expression``; errors become a :class:`Failure` naming the culprit."""
        try:
            return eval(compile(expression, f"<{label}>", "eval"), self._namespace())
        except SystemExit as exc:
            raise Failure("exception", f"your code called exit({exc.code}) while evaluating "
                          f"{label} = {expression!r}") from None
        except Exception as exc:
            raise self._failure(exc, expression, label, after) from None

    def assign(self, expression: str, value: np.ndarray, label: str) -> None:
        """Store ``value`` where ``expression`` points (a global, an attribute or an item).

        An array of the same shape already there is overwritten in place, so that every object
        sharing it (a layer built from ``model.params['W1']``) sees the new weights; anything
        else is rebound.
        """
        node = ast.parse(expression, mode="eval").body
        try:
            current = self.evaluate(expression, label, "the model was built")
        except Failure:
            current = None
        if isinstance(current, np.ndarray) and current.shape == value.shape \
                and current.flags.writeable and current.dtype == value.dtype:
            np.copyto(current, value)
            return
        try:
            if isinstance(node, ast.Name):
                self.module.__dict__[node.id] = value
            elif isinstance(node, ast.Attribute):
                setattr(self._sub(node.value, label), node.attr, value)
            elif isinstance(node, ast.Subscript):
                self._sub(node.value, label)[self._sub(node.slice, label)] = value
            else:
                raise Failure("adapter", f"{label} = {expression!r} is not a place a weight can "
                              "be stored (a name, an attribute or an item)")
        except Failure:
            raise
        except Exception as exc:
            raise self._failure(exc, expression, label, "the model was built") from None

    def _sub(self, node: ast.expr, label: str) -> Any:
        return self.evaluate(ast.unparse(node), label, "the model was built")

    def _failure(self, exc: BaseException, expression: str, label: str, after: str) -> Failure:
        where = self.user_frame(exc)
        error = f"{type(exc).__name__}: {exc}"
        if where:
            return Failure("exception", f"{where}: {error} (while running {label} = "
                           f"{expression!r})")
        return Failure("adapter", f"{label} = {expression!r} failed after {after}: {error}")

    def user_frame(self, exc: BaseException) -> str | None:
        """``"my_net.py:42 in backward: <source line>"`` for the innermost frame in the file."""
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if Path(f.filename).resolve() == self.path]
        if not frames:
            return None
        f = frames[-1]
        source = f" `{f.line.strip()}`" if f.line else ""
        return f"{self.path.name}:{f.lineno} in {f.name}{source}"


def load_module(path: Path) -> ModuleType:
    """Import the user's file (its folder first on ``sys.path``) without running its main."""
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise Failure("adapter", f"{path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        raise Failure("exception", f"{path.name} called exit({exc.code}) while being imported: "
                      "put the training script under `if __name__ == \"__main__\":`") from None
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if Path(f.filename).resolve() == path]
        line = f":{frames[-1].lineno}" if frames else ""
        raise Failure("exception", f"{path.name}{line}: importing the file raised "
                      f"{type(exc).__name__}: {exc}") from None
    return module


def as_array(value: Any, label: str, expression: str) -> np.ndarray:
    """A copy of ``value`` as a numeric array, or a :class:`Failure` saying what it is."""
    try:
        array = np.array(value, copy=True)
    except (ValueError, TypeError) as exc:
        raise Failure("adapter", f"{label} = {expression!r} is a {type(value).__name__} that is "
                      f"not an array ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise Failure("adapter", f"{label} = {expression!r} is a {type(value).__name__} "
                      f"(dtype {array.dtype}), not an array of numbers")
    return array


def read_tensor(runner: Runner, key: str, expression: str, label: str, after: str,
                results: dict[str, np.ndarray]) -> np.ndarray | None:
    """Copy one declared tensor into ``results[key]``; a name the learner's result lacks, or a
    value that is not an array, goes to ``runner.missing`` (the submission fails at that
    tensor); an exception raised in the learner's own code stops the run."""
    try:
        value = as_array(runner.evaluate(expression, label, after), label, expression)
    except Failure as failure:
        if failure.kind != "adapter":
            raise
        runner.missing[key] = str(failure)
        return None
    results[key] = value
    return value


def read_roles(runner: Runner, adapter: dict[str, Any], roles: tuple[str, ...], after: str,
               results: dict[str, np.ndarray]) -> None:
    """Copy every declared tensor of ``roles`` into ``results`` (now, before later steps)."""
    for role in roles:
        if role in ("output", "loss"):
            if role in adapter["scalars"]:
                read_tensor(runner, role, adapter["scalars"][role], f"NNPARITY[{role!r}]",
                            after, results)
            continue
        for layer, expr in enumerate(adapter["roles"].get(role, []), 1):
            if expr is not None:
                read_tensor(runner, f"{role}/{layer}", expr,
                            f"NNPARITY[{role!r}] for layer {layer}", after, results)


def learning_rate(runner: Runner, lr: float | str) -> float:
    """The declared learning rate, or the value of the global it names."""
    value = runner.evaluate(lr, "NNPARITY['lr']", "import") if isinstance(lr, str) else lr
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise Failure("adapter", f"NNPARITY['lr'] = {lr!r} is {value!r}, not a positive number")
    return float(value)


def _read_updates(runner: Runner, adapter: dict[str, Any], step: int,
                  results: dict[str, np.ndarray]) -> None:
    """The updated weights after ``step`` (keys ``W_new/<layer>@<step>``), fed back into the
    scope's ``W1, b1, ..., W, b`` for the next step's expressions."""
    scope = runner.scope
    for role, fallback, name in (("W_new", "W", "W"), ("b_new", "b", "b")):
        exprs = adapter["roles"].get(role) or adapter["roles"].get(fallback, [])
        for layer, expr in enumerate(exprs, 1):
            if expr is None:
                continue
            value = read_tensor(runner, f"{role}/{layer}@{step}", expr,
                                f"NNPARITY[{role!r}] for layer {layer}", f"update {step}",
                                results)
            if value is None:
                continue
            scope[f"{name}{layer}"] = value.copy()
            if len(scope[name]) >= layer:
                scope[name][layer - 1] = scope[f"{name}{layer}"]


def _norm_scope(inputs: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """The lists ``gamma``, ``beta``, ``running_mean``, ``running_var`` of the norm layers'
    inputs (``gamma1, gamma2, ...``); none without them (a global of the learner's file with
    one of those names stays visible)."""
    lists: dict[str, list[np.ndarray]] = {}
    for base in NORM_PLACES:
        count = 0
        while f"{base}{count + 1}" in inputs:
            count += 1
        if count:
            lists[base] = [inputs[f"{base}{i}"] for i in range(1, count + 1)]
    return lists


def _read_norms(runner: Runner, adapter: dict[str, Any], when: str, step: int,
                results: dict[str, np.ndarray]) -> None:
    """The norm layers' tensors read ``when`` (``forward``/``backward`` at step 1, ``step``
    after every step, keyed ``<role>/<layer>@<step>`` and fed back into the scope's
    ``<role><layer>`` and list for the next step)."""
    for role, layer, expr, at in adapter.get("norms", {}).get("reads", []):
        if at != when or (at != "step" and step != 1):
            continue
        key = f"{role}/{layer}@{step}" if at == "step" else f"{role}/{layer}"
        value = read_tensor(runner, key, expr, f"NNPARITY[{role!r}] for norm layer {layer}",
                            f"the {when} step" if at != "step" else f"step {step}", results)
        if at == "step" and value is not None:
            runner.scope[f"{role}{layer}"] = value.copy()
            if len(runner.scope.get(role, [])) >= layer:
                runner.scope[role][layer - 1] = runner.scope[f"{role}{layer}"]


def run(path: Path, adapter: dict[str, Any], inputs: dict[str, np.ndarray],
        results: dict[str, np.ndarray], missing: dict[str, str]) -> float:
    """Run the steps, filling ``results`` as tensors are read (and ``missing`` with the ones
    that could not be: key -> why); return the learning rate."""
    module = load_module(path)
    depth = adapter["depth"]
    weights = [inputs[f"W{i}"] for i in range(1, depth + 1)]
    biases = [inputs[f"b{i}"] for i in range(1, depth + 1)] if adapter["bias"] else []
    masks = [inputs[f"mask{i}"] for i in range(1, len(inputs) + 1) if f"mask{i}" in inputs]
    slopes = [inputs[f"a{i}"] for i in range(1, adapter["slopes"] + 1)]
    scope: dict[str, Any] = {**inputs, "W": weights, "b": biases, "a": slopes,
                             "masks": masks, "N": adapter["n"], **_norm_scope(inputs)}
    runner = Runner(module, path, scope, missing)
    scope["lr"] = learning_rate(runner, adapter["lr"])
    calls = adapter["calls"]
    if "model" in calls:
        scope["model"] = runner.evaluate(calls["model"], "NNPARITY['model']", "import")
    for role, values in (("W", weights), ("b", biases), ("a", slopes)):
        for layer, expr in enumerate(adapter["roles"].get(role, []), 1):
            if expr is not None:
                runner.assign(expr, values[layer - 1].copy(),
                              f"NNPARITY[{role!r}] for layer {layer}")
    for role, layer, expr in adapter.get("norms", {}).get("places", []):
        runner.assign(expr, inputs[f"{role}{layer}"].copy(),
                      f"NNPARITY[{role!r}] for norm layer {layer}")
    gradients = ("delta", "dW", "db", "da")
    late = adapter["grads_after"] == "update"
    plan = [("forward", "out", ("output", "z", "h")),
            ("backward", "back", ("loss",) if late else ("loss", *gradients)),
            ("update", "upd", gradients if late else ())]
    updates = "update" in calls or any(r in adapter["roles"] for r in ("W_new", "b_new"))
    for step in range(1, adapter["steps"] + 1):
        pending: tuple[str, ...] = ()
        for stage, name, roles in plan:
            if stage not in calls:
                pending += roles
                continue
            scope[name] = runner.evaluate(calls[stage], f"NNPARITY[{stage!r}]",
                                          "the earlier steps")
            if step == 1:
                read_roles(runner, adapter, pending + roles, f"the {stage} step", results)
            _read_norms(runner, adapter, stage, step, results)
            pending = ()
        if updates:
            _read_updates(runner, adapter, step, results)
        _read_norms(runner, adapter, "step", step, results)
    return float(scope["lr"])


def encode(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """One frame: magic, JSON metadata and an ``.npz`` archive, each length-prefixed."""
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    head = json.dumps(meta).encode()
    body = buffer.getvalue()
    return MAGIC + struct.pack(">QQ", len(head), len(body)) + head + body


def split_frame(data: bytes) -> tuple[bytes, bytes]:
    """The JSON metadata and the ``.npz`` body of exactly one frame; ``ValueError`` otherwise."""
    fixed = len(MAGIC) + 16
    if len(data) < fixed or not data.startswith(MAGIC):
        raise ValueError("no results frame")
    head_len, body_len = struct.unpack(">QQ", data[len(MAGIC):fixed])
    if len(data) != fixed + head_len + body_len:
        raise ValueError(f"{len(data)} bytes where one frame of "
                         f"{fixed + head_len + body_len} was expected")
    return data[fixed:fixed + head_len], data[fixed + head_len:]


def decode(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of the job frame verify sends (trusted: verify wrote it; the
    learner's results are read by the runner, through nnparity's checked readers)."""
    head, body = split_frame(data)
    meta = json.loads(head)
    with np.load(io.BytesIO(body), allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    if not isinstance(meta, dict):
        raise ValueError("metadata is not an object")
    return meta, arrays


class _Blocked(importlib.abc.MetaPathFinder):
    """nnparity's reference stays out of the learner's reach (see the module docstring)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == BLOCKED or name.startswith(BLOCKED + "."):
            raise ImportError(f"{name} is not available to the code being verified")


def left_behind() -> list[str]:
    """Processes still running besides this one and its sandbox's init (own PID namespace
    only: outside a sandbox, ``/proc`` shows the whole machine and nothing is listed); a
    zombie, which has ended and waits to be reaped, is not one."""
    if os.getpid() > 2:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in (1, os.getpid()):
            try:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except (OSError, IndexError):
                continue
            found.append(cmd[:80] or f"pid {entry.name}")
    return found


def collect_warnings(caught: list[warnings.WarningMessage], path: Path) -> list[str]:
    """Warnings raised in the user's file, as ``"file:line: Category: message"`` (deduplicated)."""
    seen: list[str] = []
    for w in caught:
        if Path(w.filename).resolve() == path:
            text = f"{path.name}:{w.lineno}: {w.category.__name__}: {w.message}"
            if text not in seen:
                seen.append(text)
    return seen[:MAX_WARNINGS]


SIZES = (4, 5, 3, 6, 7)  # the sizes ``describe`` builds a learner's class with
SIZE_WORDS = ("size", "dim", "input", "hidden", "output", "units", "n_", "num", "width")
X_WORDS, Y_WORDS = ("x", "X", "inputs", "input", "data", "a0"), \
    ("t", "y", "Y", "labels", "label", "target", "targets")
FORWARD = ("forward", "predict", "feedforward", "feed_forward", "forward_pass")
BACKWARD = ("backward", "gradient", "backprop", "backpropagation", "gradients", "grad")


def _params(func: Any) -> list[tuple[str, bool]]:
    """A callable's parameters: (name, required)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    return [(p.name, p.default is inspect.Parameter.empty) for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]


def _arrays(value: Any, expr: str, found: list[dict[str, Any]], depth: int = 2) -> None:
    """Every float array reachable from ``value`` (attributes, dict items, list items) as
    ``{"expr", "shape"}``."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            found.append({"expr": expr, "shape": list(value.shape)})
        return
    if depth == 0 or len(found) > 200:
        return
    if isinstance(value, dict):
        for key, item in list(value.items())[:50]:
            if isinstance(key, str | int):
                _arrays(item, f"{expr}[{key!r}]", found, depth - 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value[:50]):
            _arrays(item, f"{expr}[{i}]", found, depth - 1)
    elif hasattr(value, "__dict__") and type(value).__module__ == MODULE_NAME:
        for key, item in list(vars(value).items())[:50]:
            _arrays(item, f"{expr}.{key}", found, depth - 1)


def _call(method: Any, x: np.ndarray, labels: list[tuple[str, np.ndarray]]
          ) -> tuple[str, Any, str] | None:
    """``method`` called with ``x`` and each kind of labels (``(kind, y)``) until one works:
    its arguments' text, result and the kind of labels it took (``None`` when it took none)."""
    params = [name for name, required in _params(method) if required]
    if any(name not in X_WORDS + Y_WORDS for name in params):
        return None
    text = ", ".join("x" if name in X_WORDS else "y" for name in params)
    takes_y = any(name in Y_WORDS for name in params)
    for kind, y in labels:
        try:
            result = method(*(x if name in X_WORDS else y for name in params))
        except Exception:  # the guess did not fit: try the other labels
            continue
        return text, result, kind if takes_y else None
    return None


def describe(module: ModuleType) -> dict[str, Any]:
    """What ``--init`` drafts a declaration from: the module's arrays, functions and classes;
    each class built (with :data:`SIZES`, or with the module's own arrays when its parameters
    name them, e.g. ``ConvNet(W1, b1, ...)`` beside ``W1 = ...``) and its arrays read; its
    forward and backward methods called on a batch (the module's ``x`` when it has one), and
    the arrays they return."""
    found: list[dict[str, Any]] = []
    functions, classes = [], []
    for name, value in list(vars(module).items()):
        if name.startswith("_"):
            continue
        if inspect.isclass(value) and value.__module__ == MODULE_NAME:
            classes.append(_describe_class(name, value, vars(module)))
        elif inspect.isfunction(value) and value.__module__ == MODULE_NAME:
            functions.append({"name": name, "params": [p for p, _ in _params(value)]})
        else:
            _arrays(value, name, found)
    return {"arrays": found, "functions": functions, "classes": classes}


def _holds_arrays(value: Any) -> bool:
    """An array, or a non-empty list or tuple of arrays."""
    if isinstance(value, list | tuple):
        return bool(value) and all(isinstance(v, np.ndarray) for v in value)
    return isinstance(value, np.ndarray)


def _build(cls: type, required: list[str], names: dict[str, Any]) -> tuple[Any, list] | None:
    """The model and its arguments: built with :data:`SIZES` when its parameters are sizes,
    with the module's arrays of the same names when they are those (copies: the module keeps
    its own)."""
    if all(any(w in p.lower() for w in SIZE_WORDS) for p in required) and \
            len(required) <= len(SIZES):
        args: list = list(SIZES[:len(required)])
    elif required and all(_holds_arrays(names.get(p)) for p in required):
        args = [[np.array(v) for v in names[p]] if isinstance(names[p], list | tuple)
                else np.array(names[p]) for p in required]
    else:
        return None
    try:
        return cls(*args), args
    except Exception:
        return None


def _batch(args: list, names: dict[str, Any]) -> tuple[np.ndarray | None, list[tuple[str, Any]]]:
    """The batch a model built with ``args`` is called on: 5 rows of its first size, or for a
    model built with arrays the module's own ``x`` (none: no batch); labels one-hot, then as
    class indices."""
    if all(isinstance(a, int) for a in args):
        x = np.random.default_rng(0).standard_normal((5, SIZES[0]))
        classes = args[-1] if args else 3
    else:  # the module's x; classes: the columns of the last 2-D array given (row layout)
        x = next((names[w] for w in X_WORDS if isinstance(names.get(w), np.ndarray)
                  and names[w].dtype.kind == "f"), None)
        flat = [a for arg in args for a in (arg if isinstance(arg, list) else [arg])]
        last = next((a for a in reversed(flat) if a.ndim == 2), None)
        classes = last.shape[1] if last is not None else 3
    if x is None:
        return None, []
    n = len(x)
    return x, [("onehot", np.eye(classes)[np.arange(n) % classes]),
               ("index", np.arange(n) % classes)]


def _describe_class(name: str, cls: type, names: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "params": [p for p, _ in _params(cls)],
                             "methods": [m for m in vars(cls) if not m.startswith("_")]}
    required = [p for p, needed in _params(cls) if needed]
    built = _build(cls, required, names)
    if built is None:
        return entry
    model, args = built
    if all(isinstance(a, int) for a in args):
        entry["sizes"] = args
    else:
        entry["built_with"] = required
    entry["arrays"] = []
    _arrays(model, "model", entry["arrays"])
    x, labels = _batch(args, names)
    for role, methods in (("forward", FORWARD), ("backward", BACKWARD)):
        if x is None:
            break
        method = next((m for m in methods if callable(getattr(model, m, None))), None)
        called = _call(getattr(model, method), x, labels) if method else None
        if called is not None:
            arrays: list[dict[str, Any]] = []
            _arrays(called[1], "out" if role == "forward" else "back", arrays)
            after: list[dict[str, Any]] = []
            _arrays(model, "model", after)
            entry[role] = {"call": f"model.{method}({called[0]})", "result": arrays,
                           "model": after, "labels": called[2]}
    return entry


def fill(source: Path, folder: Path) -> None:
    """The working ``folder`` filled from ``source`` before the learner's code runs; a failure is
    verify's, said so."""
    try:
        shutil.copytree(source, folder, symlinks=True, dirs_exist_ok=True)
    except (OSError, shutil.Error) as exc:
        raise Failure("exception", f"verify could not copy your folder into the sandbox ({exc}): "
                      "not your code's fault") from None


def main() -> int:
    """Run one job from stdin (after filling the working folder with ``--fill-from DIR``); send
    one frame on the results pipe; exit 0."""
    given = int(os.environ.pop(CHANNEL_VARIABLE))
    channel = fcntl.fcntl(given, fcntl.F_DUPFD_CLOEXEC, 100)
    os.close(given)
    job, inputs = decode(sys.stdin.buffer.read())
    with open(os.devnull, "rb") as null:
        os.dup2(null.fileno(), 0)
    sys.meta_path.insert(0, _Blocked())
    sys.path += [p for p in job.get("path", []) if p not in sys.path]  # verify's import path
    path = Path.cwd() / Path(job["file"]).name  # the copy in the working folder
    results: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"lr": None, "error": None, "missing": {}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if sys.argv[1:2] == ["--fill-from"]:
                fill(Path(sys.argv[2]), Path.cwd())
            if job.get("describe"):
                meta["describe"] = describe(load_module(path))
            else:
                meta["lr"] = run(path, job["adapter"], inputs, results, meta["missing"])
        except Failure as failure:
            meta["error"] = {"kind": failure.kind, "message": str(failure)}
    meta["warnings"] = collect_warnings(caught, path)
    meta["left_behind"] = left_behind()
    frame = encode(meta, results)
    with os.fdopen(channel, "wb") as out:
        out.write(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
