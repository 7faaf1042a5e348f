"""Loading a user's model file: ``PATH.py:NAME``.

``NAME`` is a callable returning a ``torch.nn.Module`` or a ``keras.Model``, or a dict with
``model`` and optionally ``optimizer`` (an optimiser instance, or a factory: called with the
model's parameters for torch, with nothing for Keras), ``loss`` (``ce``, ``l2``, ``bce``,
``mse`` or the framework's loss object; default ``ce``), ``reduction`` (``mean`` (default) or
``sum``, for a loss given by name) and ``input_shape`` (``(H, W, C)``, canonical NHWC). The file
may define ``NNPARITY_LAYERS = {"MySigmoid": "sigmoid"}``: custom modules, layers or activation
functions (by class or function name) that compute a reference activation.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnparity.errors import InputError

from .guard import user_code

LOSS_NAMES = ("ce", "l2", "bce", "mse")


@dataclass
class ModelSource:
    """What a model file gives: ``label`` (``PATH.py:NAME``), ``framework`` (``torch`` or
    ``keras``), the model, its optimiser (instance, factory or None), loss (name or object),
    reduction for a named loss, input shape (NHWC, may be empty) and ``layers``
    (``NNPARITY_LAYERS``)."""

    label: str
    framework: str
    model: Any
    optimizer: Any = None
    loss: Any = "ce"
    reduction: str = "mean"
    input_shape: tuple[int, ...] = ()
    layers: dict[str, str] = field(default_factory=dict)


def _import(path: Path) -> Any:
    name = f"nnparity_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with user_code(str(path), "loading it"):
        spec.loader.exec_module(module)
    return module


def framework_of(model: Any) -> str | None:
    """``torch`` or ``keras`` by the model's type (without importing a missing framework)."""
    for cls in type(model).__mro__:
        module = cls.__module__
        if module.startswith("torch.nn"):
            return "torch"
        if module.startswith(("keras", "tf_keras", "tensorflow")):
            return "keras"
    return None


def load(target: str, input_shape: tuple[int, ...] = ()) -> ModelSource:
    """The :class:`ModelSource` of ``PATH.py:NAME``; :class:`InputError` (exit 2) naming the
    file on any problem."""
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text.endswith(".py") or not name:
        raise InputError(f"--model-file {target!r}: expected PATH.py:NAME")
    path = Path(path_text)
    if not path.is_file():
        raise InputError(f"--model-file {target!r}: no such file {path}")
    module = _import(path)
    if not hasattr(module, name):
        raise InputError(f"{path} defines no {name!r}")
    made = getattr(module, name)
    with user_code(target, "calling it"):
        made = made() if callable(made) and framework_of(made) is None else made
        entry = dict(made) if isinstance(made, dict) else {"model": made}
    unknown = sorted(set(entry) - {"model", "optimizer", "loss", "reduction", "input_shape"})
    if unknown or "model" not in entry:
        raise InputError(f"{target}: a dict needs 'model' and may have 'optimizer', 'loss', "
                         f"'reduction', 'input_shape' (got {', '.join(map(str, entry))})")
    framework = framework_of(entry["model"])
    if framework is None:
        raise InputError(f"{target} gave a {type(entry['model']).__name__}, not a "
                         "torch.nn.Module or a keras.Model")
    layers = getattr(module, "NNPARITY_LAYERS", {})
    if not isinstance(layers, dict):
        raise InputError(f"{path}: NNPARITY_LAYERS must be a dict of name -> activation")
    loss = entry.get("loss", "ce")
    if isinstance(loss, str) and loss not in LOSS_NAMES:
        raise InputError(f"{target}: unknown loss {loss!r}; known: {', '.join(LOSS_NAMES)} or "
                         "the framework's loss object")
    reduction = entry.get("reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise InputError(f"{target}: reduction must be 'mean' or 'sum', got {reduction!r}")
    shape = tuple(input_shape or entry.get("input_shape", ()))
    return ModelSource(target, framework, entry["model"], entry.get("optimizer"), loss,
                       reduction, shape, dict(layers))
