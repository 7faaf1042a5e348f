"""Loading a user's model file: ``PATH.py:NAME``.

``NAME`` is a callable returning a ``torch.nn.Module``, a ``keras.Model`` or a Flax NNX module
(an ``nnx.Sequential`` or one with its own ``__call__``: :mod:`.flax_model`), or a dict with
``model`` and optionally ``optimizer`` (an optimiser instance, or a factory: called with the
model's parameters for torch, with nothing for Keras), ``loss`` (``ce``, ``l2``, ``bce``,
``mse`` or the framework's loss object), ``reduction`` (``mean`` (default) or ``sum``, for a
loss given by name) and ``input_shape`` (``(H, W, C)``, canonical NHWC). The file may define
``NNPARITY_LAYERS = {"MySigmoid": "sigmoid"}``: custom modules, layers or activation functions
(by class or function name) that compute a reference activation.

Nothing is guessed: the loss is the builder's, else a compiled Keras model's
(``model.compile(loss=...)``), else ``--loss``; a model with none of them is refused naming
``--loss``.
The optimiser is the builder's, else a compiled Keras model's; without one, updates are not
checked. :attr:`ModelSource.origins` says where each came from, for the report. While the file
loads and its builder runs, the file's folder is first on ``sys.path`` (a module beside it
imports), and removed afterwards. The builder runs with Python, NumPy, torch and Keras seeded
from ``--seed``: a model built there gets the same weights from any folder and spelling.
:func:`describe` makes the same :class:`ModelSource` of a model in memory (the Python API,
:mod:`nnparity.api`, where ``loss=`` plays ``--loss``'s part).
"""

from __future__ import annotations

import importlib.util
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnparity.errors import InputError

from .guard import user_code

LOSS_NAMES = ("ce", "l2", "bce", "mse")
KERAS_LOSS_NAMES = {"mse": "mse", "mean_squared_error": "mse"}
"""A compiled Keras model's loss given by string -> the reference's (the cross-entropies by
string take probabilities, not logits: they have no exact counterpart)."""


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
    origins: dict[str, str] = field(default_factory=dict)
    """``loss`` / ``optimizer`` -> where it came from (``--loss``, ``the builder``,
    ``model.compile``); no ``optimizer`` key without one."""


@contextmanager
def beside(path: Path) -> Iterator[None]:
    """The folder of ``path`` first on ``sys.path`` while the block runs (removed after)."""
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)


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
    """``torch``, ``keras`` or ``flax`` (an NNX module) by the model's type (without importing a
    missing framework)."""
    for cls in type(model).__mro__:
        module = cls.__module__
        if module.startswith("torch.nn"):
            return "torch"
        if module.startswith(("keras", "tf_keras", "tensorflow")):
            return "keras"
        if module.startswith("flax.nnx"):
            return "flax"
    return None


def seed_frameworks(seed: int) -> None:
    """Seed Python, NumPy and the frameworks already imported (torch, Keras) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed)


def _compiled(model: Any, what: str) -> Any:
    """A compiled Keras model's ``loss`` or ``optimizer`` (None for torch or uncompiled)."""
    if not getattr(model, "compiled", False):
        return None
    return getattr(model, what, None)


def _loss(target: str, entry: dict, flag: Any, flag_name: str = "--loss") -> tuple[Any, str]:
    """``(loss, where it came from)``: the builder's, a compiled model's, else ``flag`` (the
    command line's ``--loss`` or the API's ``loss=``: ``flag_name``; stated as not applied
    where the model gives one)."""
    ignored = f" ({flag_name} {flag} applies to models without one)" if flag is not None else ""
    if entry.get("loss") is not None:
        return entry["loss"], "the builder" + ignored
    compiled = _compiled(entry["model"], "loss")
    if isinstance(compiled, str):
        if compiled not in KERAS_LOSS_NAMES:
            raise InputError(f"{target}: compiled loss {compiled!r} has no exact counterpart "
                             "in the reference (a cross-entropy by name takes probabilities): "
                             "compile with a loss object with from_logits=True, or return "
                             "'loss' from the builder")
        return KERAS_LOSS_NAMES[compiled], "model.compile" + ignored
    if compiled is not None:
        return compiled, "model.compile" + ignored
    if flag is not None:
        return flag, flag_name
    raise InputError(f"{target}: no loss: the builder gives none (a dict with 'loss') and the "
                     f"model is not a compiled Keras model; give {flag_name} "
                     f"({', '.join(LOSS_NAMES)})")


def load(target: str, input_shape: tuple[int, ...] = (), loss: str | None = None,
         seed: int = 0) -> ModelSource:
    """The :class:`ModelSource` of ``PATH.py:NAME`` (``loss``: ``--loss``, a name of
    :data:`LOSS_NAMES`), its builder run with every framework seeded with ``seed``
    (``--seed``); :class:`InputError` (exit 2) naming the file on any problem."""
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text.endswith(".py") or not name:
        raise InputError(f"--model-file {target!r}: expected PATH.py:NAME")
    path = Path(path_text)
    if not path.is_file():
        raise InputError(f"--model-file {target!r}: no such file {path}")
    with beside(path):
        module = _import(path)
        if not hasattr(module, name):
            raise InputError(f"{path} defines no {name!r}")
        made = getattr(module, name)
        seed_frameworks(seed)
        with user_code(target, "calling it"):
            made = made() if callable(made) and framework_of(made) is None else made
            entry = dict(made) if isinstance(made, dict) else {"model": made}
    unknown = sorted(set(entry) - {"model", "optimizer", "loss", "reduction", "input_shape"})
    if unknown or "model" not in entry:
        raise InputError(f"{target}: a dict needs 'model' and may have 'optimizer', 'loss', "
                         f"'reduction', 'input_shape' (got {', '.join(map(str, entry))})")
    layers = getattr(module, "NNPARITY_LAYERS", {})
    if not isinstance(layers, dict):
        raise InputError(f"{path}: NNPARITY_LAYERS must be a dict of name -> activation")
    return describe(target, entry, input_shape, loss, layers=dict(layers))


def describe(target: str, entry: dict, input_shape: tuple[int, ...] = (), loss: Any = None,
             *, flag_name: str = "--loss", given_by: str = "the builder",
             layers: dict[str, str] | None = None) -> ModelSource:
    """The :class:`ModelSource` of ``entry`` (a builder's dict: ``model`` and optionally
    ``optimizer``, ``loss``, ``reduction``, ``input_shape``) labelled ``target``; ``loss``: the
    caller's, for a model that gives none (``flag_name``: how the caller names it, ``--loss`` or
    ``loss=``); ``given_by``: where the entry's optimiser came from, for the report."""
    framework = framework_of(entry["model"])
    if framework is None:
        raise InputError(f"{target} gave a {type(entry['model']).__name__}, not a "
                         "torch.nn.Module, a keras.Model or a Flax NNX module")
    loss, loss_origin = _loss(target, entry, loss, flag_name)
    origins = {"loss": loss_origin}
    optimizer = entry.get("optimizer")
    if optimizer is not None:
        origins["optimizer"] = given_by
    elif _compiled(entry["model"], "optimizer") is not None:
        optimizer, origins["optimizer"] = _compiled(entry["model"], "optimizer"), "model.compile"
    if isinstance(loss, str) and loss not in LOSS_NAMES:
        raise InputError(f"{target}: unknown loss {loss!r}; known: {', '.join(LOSS_NAMES)} or "
                         "the framework's loss object")
    reduction = entry.get("reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise InputError(f"{target}: reduction must be 'mean' or 'sum', got {reduction!r}")
    shape = tuple(input_shape or entry.get("input_shape", ()))
    return ModelSource(target, framework, entry["model"], optimizer, loss, reduction, shape,
                       layers or {}, origins)
