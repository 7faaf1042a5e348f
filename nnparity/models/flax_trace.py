"""Tracing a Flax NNX module's own ``__call__``: what it ran, in call order, as
:class:`~.structure.Layer` objects.

:class:`Recorder` patches, while it is entered (every patch restored on every exit path), the
``__call__`` of the module's own ``nnx.Linear``, ``nnx.Conv`` and ``nnx.Dropout`` instances'
classes, the activation functions the user's code reaches by module attribute (``nnx.relu``,
``nnx.sigmoid``, ``nnx.tanh``, ``nnx.leaky_relu``, ``nnx.softmax``, the same names in
``jax.nn``, ``jnp.tanh``), ``nnx.max_pool``, ``jnp.reshape`` and an array's ``reshape`` and
``+``. Calls made inside a recorded call are not recorded (a Linear's own bias add). A
submodule of another kind is transparent (a block of layers) where everything recorded inside
it is a layer the reference has, else (nothing recorded, or something refused: a ``LayerNorm``)
it is recorded as that unknown layer. With
``zeros``, the ``k``-th Linear/Conv call's output gets ``zeros[k]`` added (the deltas' probes).

:func:`check_chain` then checks that the calls form a chain: each one was given exactly the
previous one's output (the first the model's input) and the last one's output is what
``__call__`` returned, i.e. replaying the recorded layers in order gives ``model(x)``; anything
else (a branch, a residual add, an operation not traced) is refused naming where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax._src.array import ArrayImpl

from nnparity.errors import InputError

from .structure import Layer, unsupported

ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "leaky_relu": "leaky_relu"}
FUNCTIONS = ((nnx, (*ACTIVATIONS, "gelu", "softmax", "max_pool", "avg_pool")),
             (jax.nn, ("relu", "sigmoid", "leaky_relu", "gelu", "softmax")),
             (jnp, ("tanh", "reshape")),
             (ArrayImpl, ("reshape", "__add__", "__radd__")))
LAYERS = (nnx.Linear, nnx.Conv, nnx.Dropout)
_MISSING = object()


def square(value: Any, label: str, what: str) -> int:
    """One int from an int or a pair of equal ints (a kernel needs the pair)."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or pair[0] != pair[1]:
        raise unsupported(f"{label} ({what} {value}: the reference has square 2-D windows)")
    return int(pair[0])


def padding(value: Any, label: str) -> str:
    """``SAME`` or ``VALID`` (lax's SAME is TensorFlow's); exit 2 for anything else."""
    if not isinstance(value, str) or value.upper() not in ("SAME", "VALID"):
        raise unsupported(f"{label} (padding {value!r}: the reference has SAME and VALID)")
    return value.upper()


def describe_module(label: str, module: nnx.Module) -> Layer:
    """The layer of an ``nnx.Linear``, ``nnx.Conv`` or ``nnx.Dropout``."""
    if isinstance(module, nnx.Linear):
        return Layer("dense", label, {"in": module.in_features, "out": module.out_features,
                                      "bias": module.use_bias})
    if isinstance(module, nnx.Conv):
        if isinstance(module.kernel_size, int) or module.feature_group_count != 1 \
                or module.mask is not None or any(
                    d not in (1, (1, 1), None) for d in (module.kernel_dilation,
                                                         module.input_dilation)):
            raise unsupported(f"{label} (a 1-D kernel, dilation, groups or a mask)")
        return Layer("conv", label, {"cin": module.in_features, "cout": module.out_features,
                                     "kernel": square(module.kernel_size, label, "kernel"),
                                     "stride": square(module.strides, label, "strides"),
                                     "padding": padding(module.padding, label),
                                     "bias": module.use_bias})
    if isinstance(module, nnx.Dropout) and not module.broadcast_dims:
        return Layer("dropout", label, {"keep_prob": 1.0 - float(module.rate)})
    raise unsupported(label)


def describe_function(name: str, label: str, args: tuple, kwargs: dict, out: Any) -> Layer:
    """The layer of one call of a function :data:`FUNCTIONS` names (``args[0]``: its input);
    ``gelu`` takes JAX's default, the tanh form."""
    x = args[0] if args else None
    if name in ACTIVATIONS and (name != "leaky_relu" or kwargs.get(
            "negative_slope", args[1] if len(args) > 1 else 0.01) == 0.01):
        return Layer("activation", label, {"name": ACTIVATIONS[name]})
    if name == "softmax" and kwargs.get("axis", args[1] if len(args) > 1 else -1) in (-1, 1):
        return Layer("softmax", label)
    if name == "gelu":  # jax.nn.gelu (nnx.gelu): the tanh form unless approximate=False
        tanh_form = kwargs.get("approximate", args[1] if len(args) > 1 else True)
        return Layer("activation", label, {"name": "gelu",
                                           "approximate": "tanh" if tanh_form else "none"})
    if name in ("max_pool", "avg_pool"):
        given = dict(zip(("window_shape", "strides", "padding", "count_include_pad"), args[1:],
                         strict=False))
        given.update(kwargs)
        mode = padding(given.get("padding", "VALID"), label)
        info = {"window": square(given.get("window_shape", ()), label, "window"),
                "stride": square(given.get("strides") or (1, 1), label, "strides"),
                "padding": mode}
        if name == "avg_pool":  # flax counts SAME's padded cells by default, as torch
            info["count_include_pad"] = mode == "SAME" and bool(
                given.get("count_include_pad", True))
        return Layer("pool" if name == "max_pool" else "avgpool", label, info)
    if name == "reshape" and x is not None and np.shape(out) == np.shape(x):
        return Layer("identity", label)
    if name == "reshape" and x is not None and np.ndim(out) == 2 and np.ndim(x) in (2, 4) \
            and np.array_equal(np.asarray(out), np.asarray(x).reshape(len(x), -1)):
        return Layer("flatten", label)
    if name in ("__add__", "__radd__"):
        label = "an addition (+) in __call__ (a residual add or a bias outside a layer)"
    raise unsupported(label)


@dataclass
class Event:
    """One recorded call: its layer (described on demand), input, output and module (the
    Linear/Conv/Dropout that ran, else None)."""

    describe: Callable[[], Layer]
    x: Any
    out: Any
    module: nnx.Module | None = None


def _labels(model: nnx.Module) -> dict[int, str]:
    """``id(submodule) -> "fc1 (Linear)"`` for the submodules of ``model``."""
    return {id(node): f"{'.'.join(str(p) for p in path)} ({type(node).__name__})"
            for path, node in nnx.iter_graph(model)
            if path and isinstance(node, nnx.Module) and not isinstance(node, nnx.List)}


def modules_in_order(value: Any) -> Iterator[nnx.Module]:
    """``value``'s submodules in the order they were assigned (``nnx.iter_graph`` sorts)."""
    if isinstance(value, nnx.List | list | tuple):
        for item in value:
            yield from modules_in_order(item)
    elif isinstance(value, nnx.Module):
        yield value
        for item in vars(value).values():
            yield from modules_in_order(item)


class Recorder:
    """The events of ``model``'s calls while entered (module docstring)."""

    def __init__(self, model: nnx.Module, zeros: dict[int, Any] | None = None) -> None:
        self.labels = _labels(model)
        self.zeros = zeros or {}
        self.events: list[Event] = []
        self.depth = self.params = 0
        self.saved: list[tuple[Any, str, Any]] = []
        self.classes = {type(m) for path, m in nnx.iter_graph(model)
                        if path and isinstance(m, nnx.Module) and not isinstance(m, nnx.List)
                        and callable(m)}

    def __enter__(self) -> Recorder:
        try:
            for owner, names in FUNCTIONS:
                for name in names:
                    self._patch(owner, name, self._function(name, getattr(owner, name)))
            for cls in self.classes:
                self._patch(cls, "__call__", self._module(cls.__call__))
        except BaseException:
            self.restore()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _patch(self, owner: Any, name: str, replacement: Callable) -> None:
        self.saved.append((owner, name, vars(owner).get(name, _MISSING)))
        setattr(owner, name, replacement)

    def restore(self) -> None:
        """Put back every patched attribute, last patched first."""
        while self.saved:
            owner, name, original = self.saved.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

    def _function(self, name: str, original: Callable) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.depth:
                return original(*args, **kwargs)
            self.depth += 1
            try:
                out = original(*args, **kwargs)
            finally:
                self.depth -= 1
            label = f"{name.strip('_')}() in __call__"
            self.events.append(Event(
                lambda: describe_function(name, label, args, kwargs, out),
                args[0] if args else None, out))
            return out
        return call

    def _module(self, original: Callable) -> Callable:
        def call(module: nnx.Module, *args: Any, **kwargs: Any) -> Any:
            label = self.labels.get(id(module))
            if label is None or self.depth:
                return original(module, *args, **kwargs)
            x = args[0] if args else None
            if not isinstance(module, LAYERS):  # a container, or a layer nnparity doesn't know
                before = len(self.events)
                out = original(module, *args, **kwargs)
                if not self.depth and not all(map(_supported, self.events[before:] or [None])):
                    del self.events[before:]
                    self.events.append(Event(lambda: Layer("unsupported", label), x, out))
                return out
            self.depth += 1
            try:
                out = original(module, *args, **kwargs)
                if isinstance(module, nnx.Linear | nnx.Conv):
                    out = out + self.zeros[self.params] if self.params in self.zeros else out
                    self.params += 1
            finally:
                self.depth -= 1
            self.events.append(Event(lambda: describe_module(label, module), x, out, module))
            return out
        return call


def _supported(event: Event | None) -> bool:
    """Whether ``event`` describes a layer the reference has."""
    try:
        return event is not None and event.describe().kind != "unsupported"
    except Exception:  # a layer it refuses, or a traced array it cannot look at
        return False


def check_chain(source: str, x: Any, events: list[Event], layers: list[Layer],
                output: Any) -> None:
    """Exit 2 unless each recorded call was given the previous one's output (the first
    ``x``) and the last one's output is ``output`` (module docstring)."""
    previous, name = x, "the model's input"
    for event, layer in zip(events, layers, strict=True):
        if not _same(event.x, previous):
            raise InputError(f"{source}: {layer.label} is not given the output of {name}: "
                             "__call__ does something between them that nnparity does not "
                             "trace (a branch, a residual add, an unknown layer or function); "
                             "only chains of layers are supported")
        previous, name = event.out, layer.label
    if not _same(output, previous):
        raise InputError(f"{source}: __call__ does not return the output of {name}: it does "
                         "something after it that nnparity does not trace (a residual add, a "
                         "branch, an unknown layer or function); only chains of layers are "
                         "supported")


def _same(a: Any, b: Any) -> bool:
    return a is b or (a is not None and b is not None and np.shape(a) == np.shape(b)
                      and np.array_equal(np.asarray(a), np.asarray(b)))
