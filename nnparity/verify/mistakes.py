"""Classic mistakes built into the reference on purpose, so a diagnosis can be checked by numbers.

Each is a :class:`~nnparity.parity.mistaken.Mistake` (a backward pass of the shape of
:func:`nnparity.reference.network.backward`, an optimiser :class:`~nnparity.reference.optim.Formula`
with a known mistake, or a step of another shape) or a spec whose layer list holds one
(:class:`NetVariant`); :func:`nnparity.verify.problem.reference_tensors` runs it through the one
judge's runner as the reference backend with the mistake built in
(:class:`~nnparity.parity.mistaken.MistakenReference`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from nnparity.parity.mistaken import Mistake
from nnparity.reference import network
from nnparity.reference.activations import get_activation
from nnparity.reference.conv import padding_amounts
from nnparity.reference.family import Spec
from nnparity.reference.layers import (
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool,
    Run,
)
from nnparity.reference.layers.base import as_param
from nnparity.reference.optim import Formula, Optimizer, State, update
from nnparity.reference.results import Gradients, Trace

from .netview import param_layers

Params = dict[str, np.ndarray]
SMOOTH = ("sigmoid", "tanh")  # activations whose derivative is written with h


class NetVariant:
    """``spec`` with another layer list (the same names and shapes, a mistake built into some
    layers): every attribute but ``net`` is the spec's own."""

    def __init__(self, spec: Spec, net: tuple[Layer, ...]) -> None:
        self.spec, self.net = spec, net

    def __getattr__(self, name: str) -> object:
        return getattr(self.spec, name)


def with_layers(spec: Spec, change: Callable[[Layer], Layer]) -> NetVariant:
    """``spec`` with every layer passed through ``change`` (which returns the layer itself
    where it builds no mistake)."""
    return NetVariant(spec, tuple(change(layer) for layer in spec.net))


def without_derivatives(spec: Spec, layers: list[str]) -> NetVariant:
    """``spec`` whose activations after ``layers`` are the identity (their derivative left
    out when it runs only in the backward pass)."""
    return with_layers(spec, lambda layer: Activation(name=layer.name, function="identity")
                       if layer.role == "activation" and layer.name in layers else layer)


def with_spec(variant: Spec) -> Mistake:
    """The backward pass of another spec (another reduction, no weight decay, ...)."""
    return Mistake(lambda spec, params, x, trace, y: network.backward(variant, params, x,
                                                                      trace, y))


def with_trace(change: Callable[[Trace], Trace]) -> Mistake:
    """The backward pass seeing a changed forward trace."""
    return Mistake(lambda spec, params, x, trace, y: network.backward(spec, params, x,
                                                                      change(trace), y))


def scaled(factor: float) -> Mistake:
    """Deltas and data gradients ``factor`` times the reference's (the loss unchanged)."""
    def backward(spec: Spec, params: Params, x: np.ndarray, trace: Trace,
                 y: np.ndarray) -> Gradients:
        g = network.backward(spec, params, x, trace, y)
        deltas = {k: d * factor for k, d in g.deltas.items()}
        return regrad(spec, params, x, trace, replace(g, deltas=deltas))
    return Mistake(backward)


def regrad(spec: Spec, params: Params, x: np.ndarray, trace: Trace, g: Gradients) -> Gradients:
    """Parameter gradients recomputed from ``g``'s deltas and the true layer inputs (read from
    ``trace`` as :mod:`reference.network` reads them), weight decay added."""
    run = Run(np.dtype(spec.dtype))
    grads = dict(g.grads)
    h = spec.as_input(x)
    for layer in spec.net:
        if layer.role == "param":
            _, own = layer.backward(g.deltas[layer.name], h, trace.z[layer.name], None, params,
                                    run, False)
            for name, grad in own.items():
                decay = spec.weight_decay if spec.is_weight(name) else 0.0
                grads[name] = grad + decay * params[name] if decay else grad
            h = trace.z[layer.name]
        else:
            h = trace.h.get(layer.name, h) if isinstance(layer, Dropout) else trace.h[layer.name]
    return replace(g, grads=grads)


def derivative_argument(layers: list[str], on: str) -> Mistake:
    """The activation derivative of ``layers`` evaluated on the wrong argument: ``on="z"``, the
    formula in h (``h (1 - h)``, ``1 - h^2``) applied to z; ``on="h"``, the formula in z
    (``s(z)(1 - s(z))``, ``1 - tanh(z)^2``) applied to h."""
    def backward(spec: Spec, params: Params, x: np.ndarray, trace: Trace,
                 y: np.ndarray) -> Gradients:
        z, h = dict(trace.z), dict(trace.h)
        for name, act in spec.layer_activations.items():
            if name not in layers:
                continue
            if on == "z":
                h[name] = trace.z[name]
            else:
                z[name], h[name] = trace.h[name], get_activation(act).f(trace.h[name])
        wrong = network.backward(spec, params, x, replace(trace, z=z, h=h), y)
        return regrad(spec, params, x, trace, wrong)
    return Mistake(backward)


def _with_bias_decay(spec: Spec, params: Params, x: np.ndarray, trace: Trace,
                     y: np.ndarray) -> Gradients:
    g = network.backward(spec, params, x, trace, y)
    grads = {k: v + spec.weight_decay * params[k] if spec.param_kind(k) == "bias" else v
             for k, v in g.grads.items()}
    return replace(g, grads=grads)


bias_decay = Mistake(_with_bias_decay)
"""Weight decay applied to the biases too: ``db + lambda * b``."""


def stale_weights(lr: float) -> Mistake:
    """Each layer's weights updated (``W - lr * dW``) before the delta below them is computed
    from them: the delta of layer ``i`` sees the new ``W_{i+1}``."""
    def backward(spec: Spec, params: Params, x: np.ndarray, trace: Trace,
                 y: np.ndarray) -> Gradients:
        right = network.backward(spec, params, x, trace, y)
        grads, deltas, current = dict(right.grads), dict(right.deltas), dict(params)
        layers = param_layers(spec)
        for below, above in zip(layers[-2::-1], layers[:0:-1], strict=True):
            current[above.weight] = params[above.weight] - lr * grads[above.weight]
            g = network.backward(spec, current, x, trace, y)
            deltas[below.name] = g.deltas[below.name]
            for key in (below.weight, below.bias):
                if key is not None:
                    grads[key] = g.grads[key]
        return replace(right, grads=grads, deltas=deltas)
    return Mistake(backward)


def _negated_step(opt: Optimizer, params: Params, grads: Params, state: State,
                  formula: Formula) -> None:
    update(opt, params, {k: -g for k, g in grads.items()}, state, formula)


negated_update = Mistake(step=_negated_step)
"""The declared rule fed the negated gradient (the parameters climb the loss)."""
no_update = Mistake(step=lambda opt, params, grads, state, formula: None)
"""An update that changes nothing."""


def with_formula(formula: Formula) -> Mistake:
    """The declared rule evaluated with one of the formula's known mistakes
    (:class:`nnparity.reference.optim.Formula`: momentum late or averaged, Adam without bias
    correction, epsilon inside the root, epsilon in the other place)."""
    return Mistake(formula=formula)


momentum_late = with_formula(Formula(momentum="late"))
"""Momentum in the wrong order: ``p -= lr * v; v = mu * v + g``."""
momentum_average = with_formula(Formula(form="torch", momentum="average"))
"""Momentum as a moving average, ``v = mu * v + (1 - mu) * g`` (as a learner writes it, whatever
the declared variant)."""
adam_eps_before_correction = with_formula(Formula(form="keras", rounded=False))
"""Adam with epsilon added to ``sqrt(v)`` before the bias correction (the Keras form, at the
declared hyperparameters) where the declared rule adds it after."""


def adam_with(correct: bool, eps_inside: bool) -> Mistake:
    """Adam (torch's formulation) without bias correction (``correct=False``) or with the
    epsilon inside the square root (``eps_inside=True``)."""
    return with_formula(Formula(form="torch", bias_correction=correct,
                                eps_inside_root=eps_inside))


keras_exact = with_formula(Formula(form="keras", rounded=False))
"""The Keras formulation (``v = mu v - lr g; p += v``; Adam's epsilon before the bias
correction) with the hyperparameters as given, not rounded to float32 as Keras does."""


def _init_fields(layer: Layer) -> dict[str, object]:
    return {f.name: getattr(layer, f.name) for f in fields(layer) if f.init}


@dataclass(frozen=True)
class UntransposedDense(Dense):
    """A dense layer whose backward passes ``dy @ W`` down where ``dy @ W.T`` belongs (``W``
    square: ``delta @ W2`` for ``delta @ W2.T``)."""

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        dx, grads = super().backward(dy, x, y, cache, params, run, need_dx)
        return (dy @ as_param(params, self.weight, run.dtype) if need_dx else dx), grads


def untransposed(spec: Spec, layers: list[str]) -> NetVariant:
    """``spec`` with the dense ``layers`` (square weights) passing ``dy @ W`` down."""
    return with_layers(spec, lambda layer: UntransposedDense(**_init_fields(layer))
                       if isinstance(layer, Dense) and layer.name in layers else layer)


@dataclass(frozen=True)
class UnflippedConv(Conv2D):
    """A convolution whose backward correlates the delta with the kernel as it is, not rotated
    by 180 degrees (the kernel not flipped, or flipped twice): only ``dL/dx`` changes."""

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        flipped = {**params, self.weight: as_param(params, self.weight, run.dtype)[::-1, ::-1]}
        dx, _ = super().backward(dy, x, y, cache, flipped, run, need_dx)
        return dx, super().backward(dy, x, y, cache, params, run, False)[1]


def unflipped(spec: Spec) -> NetVariant:
    """``spec`` whose convolutions pass their delta down with the kernel unflipped."""
    return with_layers(spec, lambda layer: UnflippedConv(**_init_fields(layer))
                       if isinstance(layer, Conv2D) else layer)


@dataclass(frozen=True)
class PoolToAll(MaxPool):
    """A max-pool whose backward sends each window's gradient to every cell of the window."""

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        n, h, w, c = x.shape
        (top, bottom), (left, right) = padding_amounts((h, w), (self.size, self.size),
                                                       self.stride, self.padding)
        dxp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
        s, k = self.stride, self.size
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                dxp[:, i * s:i * s + k, j * s:j * s + k, :] += dy[:, i:i + 1, j:j + 1, :]
        return dxp[:, top:top + h, left:left + w, :], {}


def pool_to_all(spec: Spec) -> NetVariant:
    """``spec`` whose max-pools route the gradient to every cell of each window."""
    return with_layers(spec, lambda layer: PoolToAll(**_init_fields(layer))
                       if isinstance(layer, MaxPool) else layer)


class MirroredPadding:
    """``inner`` (a conv or a pool) with SAME's extra row and column on the other side
    (top/left): the layer run on the map mirrored in H and W (its kernel mirrored too), the
    result mirrored back."""

    def __init__(self, inner: Layer) -> None:
        self.inner, self.name, self.role, self.kind = inner, inner.name, inner.role, inner.kind

    def _params(self, params: Params) -> Params:
        weight = getattr(self.inner, "weight", None)
        return {**params, weight: params[weight][::-1, ::-1]} if weight else params

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        y, cache = self.inner.forward(x[:, ::-1, ::-1], self._params(params), run)
        return y[:, ::-1, ::-1], cache

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        dx, grads = self.inner.backward(dy[:, ::-1, ::-1], x[:, ::-1, ::-1], y[:, ::-1, ::-1],
                                        cache, self._params(params), run, need_dx)
        grads = {k: g[::-1, ::-1] if g.ndim == 4 else g for k, g in grads.items()}
        return (None if dx is None else dx[:, ::-1, ::-1]), grads


def padded_on_the_other_side(spec: Spec) -> NetVariant | None:
    """``spec`` with every conv and pool whose SAME padding is uneven padded top/left instead
    of bottom/right (None: no layer pads unevenly)."""
    def uneven(layer: Layer, shape: tuple[int, ...]) -> bool:
        window = getattr(layer, "kernel", None) or getattr(layer, "size", None)
        if not isinstance(layer, Conv2D | MaxPool) or layer.padding != "SAME":
            return False
        pads = padding_amounts(shape[:2], (window, window), layer.stride, "SAME")
        return any(before != after for before, after in pads)

    changed = [layer.name for layer, shape in zip(spec.net, spec.layer_shapes, strict=False)
               if uneven(layer, shape)]
    if not changed:
        return None
    return NetVariant(spec, tuple(MirroredPadding(layer) if layer.name in changed
                                  and isinstance(layer, Conv2D | MaxPool) else layer
                                  for layer in spec.net))  # type: ignore[arg-type]


class PermutedFlatten:
    """A flatten laying the map out in another order: ``flat[:, j] = nhwc_flat[:, order[j]]``."""

    role, kind = "map", "flatten"

    def __init__(self, name: str, order: np.ndarray) -> None:
        self.name, self.order = name, order

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        return x.reshape(x.shape[0], -1)[:, self.order], None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        dx = np.empty_like(dy)
        dx[:, self.order] = dy
        return dx.reshape(x.shape), {}


def flattened_in_order(spec: Spec, order: np.ndarray) -> NetVariant:
    """``spec`` whose flatten (before the dense layers) lays its map out by ``order``."""
    return with_layers(spec, lambda layer: PermutedFlatten(layer.name, order)  # type: ignore
                       if isinstance(layer, Flatten) else layer)


def _from_softmax(spec: Spec, params: Params, x: np.ndarray, trace: Trace,
                  y: np.ndarray) -> Gradients:
    zeros = np.zeros((len(trace.output), spec.output_dim), dtype=trace.output.dtype)
    return network.backward(spec, params, x, trace, zeros)


one_hot_left_out = Mistake(_from_softmax)
"""The backward pass from ``dE/do = softmax(o)`` (the one-hot targets never subtracted)."""


def adam_counter_per_parameter(order: list[str]) -> Mistake:
    """Adam whose step counter ``t`` is advanced once per parameter (in ``order``) instead of
    once per step: the ``k``-th parameter of step ``s`` sees ``t = (s - 1) P + k``."""
    def step(opt: Optimizer, params: Params, grads: Params, state: State,
             formula: Formula) -> None:
        t = int(state["t"])
        for k, name in enumerate(order):
            own = {"t": np.array(t + k), **{f"{s}.{name}": state[f"{s}.{name}"]
                                            for s in ("m", "v")}}
            update(opt, {name: params[name]}, {name: grads[name]}, own, formula)
        state["t"] = np.array(t + len(order))
    return Mistake(step=step)
