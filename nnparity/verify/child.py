"""The subprocess that runs a learner's file: ``python -m nnparity.verify.child JOB_DIR``.

Reads ``job.json`` (the user's file and the adapter as JSON) and ``inputs.npz`` (``x``, ``y``,
``W1, b1, ...`` in the user's layout), imports the user's file under a name other than
``__main__`` (so ``if __name__ == "__main__":`` blocks do not run), evaluates the adapter's steps
and reads the declared tensors after each step, and writes ``results.npz`` (keys ``output``,
``loss``, ``<role>/<layer>``) plus ``meta.json`` (the learning rate used, warnings raised in the
user's file) or ``error.json`` (``kind``: ``adapter`` for a missing name or unusable value,
``exception`` for an error raised by the user's code; ``message`` points at the file and line).

Imports NumPy and the standard library only; nothing is pickled.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import traceback
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

MODULE_NAME = "nnparity_user_code"
MAX_WARNINGS = 5


class Failure(Exception):
    """Stops the run; ``kind`` is ``adapter`` or ``exception``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(" ".join(message.split("\n")))  # one line on the terminal
        self.kind = kind


class Runner:
    """Evaluates adapter expressions in the user's module, with the run's values in scope."""

    def __init__(self, module: ModuleType, path: Path, scope: dict[str, Any]) -> None:
        self.module, self.path, self.scope = module, path, scope

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
        """Store ``value`` where ``expression`` points (a global, an attribute or an item)."""
        node = ast.parse(expression, mode="eval").body
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


def read_roles(runner: Runner, adapter: dict[str, Any], roles: tuple[str, ...], after: str,
               results: dict[str, np.ndarray]) -> None:
    """Copy every declared tensor of ``roles`` into ``results`` (now, before later steps)."""
    for role in roles:
        if role in ("output", "loss"):
            if role in adapter["scalars"]:
                expr = adapter["scalars"][role]
                label = f"NNPARITY[{role!r}]"
                results[role] = as_array(runner.evaluate(expr, label, after), label, expr)
            continue
        for layer, expr in enumerate(adapter["roles"].get(role, []), 1):
            if expr is not None:
                label = f"NNPARITY[{role!r}] for layer {layer}"
                results[f"{role}/{layer}"] = as_array(runner.evaluate(expr, label, after),
                                                      label, expr)


def learning_rate(runner: Runner, lr: float | str) -> float:
    """The declared learning rate, or the value of the global it names."""
    value = runner.evaluate(lr, "NNPARITY['lr']", "import") if isinstance(lr, str) else lr
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise Failure("adapter", f"NNPARITY['lr'] = {lr!r} is {value!r}, not a positive number")
    return float(value)


def run(path: Path, adapter: dict[str, Any], inputs: dict[str, np.ndarray]) \
        -> tuple[dict[str, np.ndarray], float]:
    """Run the steps; return the raw results and the learning rate used."""
    module = load_module(path)
    depth = adapter["depth"]
    weights = [inputs[f"W{i}"] for i in range(1, depth + 1)]
    biases = [inputs[f"b{i}"] for i in range(1, depth + 1)] if adapter["bias"] else []
    scope: dict[str, Any] = {**inputs, "W": weights, "b": biases, "N": adapter["n"]}
    runner = Runner(module, path, scope)
    scope["lr"] = learning_rate(runner, adapter["lr"])
    steps, results = adapter["steps"], {}
    if "model" in steps:
        scope["model"] = runner.evaluate(steps["model"], "NNPARITY['model']", "import")
    for role, values in (("W", weights), ("b", biases)):
        for layer, expr in enumerate(adapter["roles"].get(role, []), 1):
            if expr is not None:
                runner.assign(expr, values[layer - 1].copy(),
                              f"NNPARITY[{role!r}] for layer {layer}")
    gradients = ("delta", "dW", "db")
    late = adapter["grads_after"] == "update"
    plan = [("forward", "out", ("output", "z", "h")),
            ("backward", "back", ("loss",) if late else ("loss", *gradients)),
            ("update", "upd", gradients if late else ())]
    pending: tuple[str, ...] = ()
    for step, name, roles in plan:
        if step not in steps:
            pending += roles
            continue
        scope[name] = runner.evaluate(steps[step], f"NNPARITY[{step!r}]", "the earlier steps")
        read_roles(runner, adapter, pending + roles, f"the {step} step", results)
        pending = ()
    if "update" in steps or any(r in adapter["roles"] for r in ("W_new", "b_new")):
        for role, fallback in (("W_new", "W"), ("b_new", "b")):
            exprs = adapter["roles"].get(role) or adapter["roles"].get(fallback, [])
            for layer, expr in enumerate(exprs, 1):
                if expr is not None:
                    label = f"NNPARITY[{role!r}] for layer {layer}"
                    results[f"{role}/{layer}"] = as_array(
                        runner.evaluate(expr, label, "the last step"), label, expr)
    return results, scope["lr"]


def collect_warnings(caught: list[warnings.WarningMessage], path: Path) -> list[str]:
    """Warnings raised in the user's file, as ``"file:line: Category: message"`` (deduplicated)."""
    seen: list[str] = []
    for w in caught:
        if Path(w.filename).resolve() == path:
            text = f"{path.name}:{w.lineno}: {w.category.__name__}: {w.message}"
            if text not in seen:
                seen.append(text)
    return seen[:MAX_WARNINGS]


def main(job_dir: str) -> int:
    """Run one job; always exits 0 unless the process itself is killed or exits."""
    folder = Path(job_dir)
    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    path = Path(job["file"]).resolve()
    with np.load(folder / "inputs.npz", allow_pickle=False) as archive:
        inputs = {k: archive[k] for k in archive.files}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            results, lr = run(path, job["adapter"], inputs)
        except Failure as failure:
            error = {"kind": failure.kind, "message": str(failure)}
            (folder / "error.json").write_text(json.dumps(error), encoding="utf-8")
            return 0
    np.savez(folder / "results.npz", allow_pickle=False, **results)
    meta = {"lr": lr, "warnings": collect_warnings(caught, path)}
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
