"""Tracing a Flax NNX module's own ``__call__``: what it ran, in call order, as
:class:`~.structure.Layer` objects.

:class:`Recorder` patches, while it is entered (every patch restored on every exit path), the
``__call__`` of the module's own ``nnx.Linear``, ``nnx.Conv``, ``nnx.Dropout``,
``nnx.BatchNorm`` and ``nnx.LayerNorm`` instances' classes, the activation functions the user's
code reaches by module attribute (``nnx.relu``, ``nnx.sigmoid``, ``nnx.tanh``,
``nnx.leaky_relu``, ``nnx.gelu``, ``nnx.softmax``, the same names in ``jax.nn``, ``jnp.tanh``),
``nnx.max_pool``/``nnx.avg_pool`` (and ``flax.linen``'s, the same functions), ``jnp.reshape``,
``jnp.mean`` and an array's ``reshape``, ``mean`` and ``+``. Calls made inside a recorded call
are not recorded (a Linear's own bias add, a BatchNorm's own mean). A submodule of another kind
is transparent (a block of layers) where everything recorded inside it is a layer the reference
has, else (nothing recorded, or something refused: an ``RMSNorm``) it is recorded as that
unknown layer. With ``zeros``, the ``k``-th Linear/Conv/BatchNorm call's output gets
``zeros[k]`` added (the deltas' probes).

:func:`check_chain` then checks the data flow: without a ``+``, that each call was given
exactly the previous one's output (the first the model's input) and the last one's output is
what ``__call__`` returned, i.e. replaying the recorded layers in order gives ``model(x)``;
with one, :func:`flow` gives each call's sources (the calls whose outputs it took: the residual
adds of :func:`.structure.residuals`) and checks that the blocks they form are chained.
Anything else (a branch, an operation not traced) is refused naming where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen, nnx
from jax._src.array import ArrayImpl

from nnparity.errors import InputError

from .structure import Layer, residuals, unsupported

ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "leaky_relu": "leaky_relu"}
FUNCTIONS = ((nnx, (*ACTIVATIONS, "gelu", "softmax", "max_pool", "avg_pool")),
             (jax.nn, ("relu", "sigmoid", "leaky_relu", "gelu", "softmax")),
             (linen, ("max_pool", "avg_pool")),
             (jnp, ("tanh", "reshape", "mean")),
             (ArrayImpl, ("reshape", "mean", "__add__", "__radd__")))
LAYERS = (nnx.Linear, nnx.Conv, nnx.Dropout, nnx.BatchNorm, nnx.LayerNorm)
PROBED = (nnx.Linear, nnx.Conv, nnx.BatchNorm)
"""The layers whose output gets a zero probe added: their delta ``dL/dz`` is compared."""
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


def describe_module(label: str, module: nnx.Module, x: Any = None) -> Layer:
    """The layer of an ``nnx.Linear``, ``nnx.Conv``, ``nnx.Dropout``, ``nnx.BatchNorm`` or
    ``nnx.LayerNorm`` (``x``: its input)."""
    if isinstance(module, nnx.BatchNorm):
        return _batchnorm(label, module, x)
    if isinstance(module, nnx.LayerNorm):
        return _layernorm(label, module, x)
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


def _batchnorm(label: str, module: nnx.BatchNorm, x: Any) -> Layer:
    """``nnx.BatchNorm`` over the last axis of ``[N, D]`` or an NHWC map, with ``scale`` and
    ``bias``: Flax's ``momentum`` weighs the old running value (as the reference's) and its
    running variance is the batch's biased one."""
    if np.ndim(x) not in (2, 4) or module.axis not in (-1, np.ndim(x) - 1) \
            or not module.use_scale or not module.use_bias or module.axis_name is not None:
        raise unsupported(f"{label} (axis {module.axis} on an input of shape {np.shape(x)}, "
                          f"use_scale {module.use_scale}, use_bias {module.use_bias}, axis_name "
                          f"{module.axis_name}: the reference's batchnorm normalises the last "
                          "axis of [N, D] or an NHWC map, with gamma and beta)")
    return Layer("batchnorm", label, {"momentum": float(module.momentum),
                                      "epsilon": float(module.epsilon), "variance": "biased"})


def _layernorm(label: str, module: nnx.LayerNorm, x: Any) -> Layer:
    """``nnx.LayerNorm(D)`` over the features of a flat ``[N, D]`` input, with ``scale`` and
    ``bias``."""
    axes = {a % 2 for a in np.atleast_1d(module.reduction_axes)} | {
        a % 2 for a in np.atleast_1d(module.feature_axes)}
    if np.ndim(x) != 2 or axes != {1} or not module.use_scale or not module.use_bias:
        raise unsupported(f"{label} (reduction_axes {module.reduction_axes}, use_scale "
                          f"{module.use_scale}, use_bias {module.use_bias} on an input of shape "
                          f"{np.shape(x)}: the reference normalises the features of a flat "
                          "[N, D] input, with gamma and beta)")
    return Layer("layernorm", label, {"d": int(module.num_features),
                                      "epsilon": float(module.epsilon)})


def _global_mean(x: Any, args: tuple, kwargs: dict) -> bool:
    """Whether ``mean(x, *args, **kwargs)`` is a global average pool: over H and W of an NHWC
    map, nothing else given."""
    given = dict(zip(("axis", "dtype", "out", "keepdims"), args, strict=False))
    given.update(kwargs)
    axis = given.pop("axis", None)
    if np.ndim(x) != 4 or axis is None or any(v not in (None, False) for v in given.values()):
        return False
    return {a % 4 for a in np.atleast_1d(axis)} == {1, 2} and len(np.atleast_1d(axis)) == 2


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
    if name == "mean" and _global_mean(x, args[1:], kwargs):
        return Layer("global_avgpool", label)
    if name == "__add__" and len(args) == 2 and all(isinstance(a, jax.Array) for a in args) \
            and np.shape(args[0]) == np.shape(args[1]):
        return Layer("add", "an addition (+) in __call__")
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
    """One recorded call: its layer (described on demand), input, output, module (the layer
    of :data:`LAYERS` that ran, else None) and further inputs (an add's second operand)."""

    describe: Callable[[], Layer]
    x: Any
    out: Any
    module: nnx.Module | None = None
    more: tuple = ()


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
                args[0] if args else None, out, more=tuple(args[1:2]) if name == "__add__"
                else ()))
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
                if isinstance(module, PROBED):
                    out = out + self.zeros[self.params] if self.params in self.zeros else out
                    self.params += 1
            finally:
                self.depth -= 1
            self.events.append(Event(lambda: describe_module(label, module, x), x, out, module))
            return out
        return call


def _supported(event: Event | None) -> bool:
    """Whether ``event`` describes a layer the reference has."""
    try:
        return event is not None and event.describe().kind != "unsupported"
    except Exception:  # a layer it refuses, or a traced array it cannot look at
        return False


def check_chain(source: str, x: Any, events: list[Event], layers: list[Layer],
                output: Any) -> list[tuple[int, ...]] | None:
    """Exit 2 unless each recorded call was given the previous one's output (the first
    ``x``) and the last one's output is ``output``; with an add, :func:`flow`'s sources
    (module docstring)."""
    if any(layer.kind == "add" for layer in layers):
        return flow(source, x, events, layers, output)
    previous, name = x, "the model's input"
    for event, layer in zip(events, layers, strict=True):
        if not _same(event.x, previous):
            raise _not_given(source, layer.label, name)
        previous, name = event.out, layer.label
    _returned(source, output, previous, name)
    return None


def _not_given(source: str, label: str, name: str) -> InputError:
    return InputError(f"{source}: {label} is not given the output of {name}: __call__ does "
                      "something between them that nnparity does not trace (a branch, an "
                      "unknown layer or function); only chains of layers and residual blocks "
                      "x + f(x) are supported")


def _returned(source: str, output: Any, last: Any, name: str) -> None:
    if not _same(output, last):
        raise InputError(f"{source}: __call__ does not return the output of {name}: it does "
                         "something after it that nnparity does not trace (a branch, an "
                         "unknown layer or function); only chains of layers and residual "
                         "blocks x + f(x) are supported")


def flow(source: str, x: Any, events: list[Event], layers: list[Layer],
         output: Any) -> list[tuple[int, ...]]:
    """Per recorded call, the indices of the calls whose outputs it took (-1: ``x``; by
    identity, else by value, the latest first). Exit 2 for an input no call made, a returned
    value other than the last call's output, a sum that is no residual block
    (:func:`.structure.residuals`), or layers and blocks that are not one chain."""
    def made(t: Any, before: int, label: str) -> int:
        for match in (lambda a, b: a is b, _same):
            found = next((k for k in range(before - 1, -1, -1) if match(events[k].out, t)),
                         -1 if match(x, t) else None)
            if found is not None:
                return found
        raise InputError(f"{source}: {label} takes a tensor that no traced call made (a "
                         "constant, a parameter outside a layer, or an operation nnparity does "
                         "not trace); only chains of layers and residual blocks x + f(x) are "
                         "supported")
    sources = [tuple(made(t, i, layer.label) for t in (event.x, *event.more))
               for i, (event, layer) in enumerate(zip(events, layers, strict=True))]
    _returned(source, output, events[-1].out, layers[-1].label)
    blocks = residuals(layers, sources)
    inside = {i for block in blocks if block.kind == "residual"
              for i in [k for k, _ in block.info["body"]] + (
                  [block.info["projection"][0]] if block.info["projection"] else [])}
    previous = -1
    for j, block in enumerate(blocks):
        if j in inside:
            continue
        first = block.info["body"][0][0] if block.kind == "residual" else j
        if sources[first] != (previous,):
            raise _not_given(source, layers[first].label, "the model's input" if previous < 0
                             else layers[previous].label)
        previous = j
    return sources


def _same(a: Any, b: Any) -> bool:
    return a is b or (a is not None and b is not None and np.shape(a) == np.shape(b)
                      and np.array_equal(np.asarray(a), np.asarray(b)))
