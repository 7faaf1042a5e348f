"""Classic mistakes built into the reference on purpose, so a diagnosis can be checked by numbers.

Each function returns a *backward* (``(spec, params, x, trace, y) -> Gradients``, the shape of
:func:`nnparity.reference.network.backward`) or an *update* (``(optimizer, params, grads, state) ->
(params, state)``, the shape of :func:`nnparity.reference.optim.step`) with one mistake in it;
:func:`nnparity.verify.problem.reference_tensors` runs them in place of the correct ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from nnparity.reference import network
from nnparity.reference.activations import get_activation
from nnparity.reference.family import Spec
from nnparity.reference.layers import Activation, Dropout, Layer, Run
from nnparity.reference.optim import Formula, Optimizer
from nnparity.reference.optim import step as optimizer_step
from nnparity.reference.results import Gradients, Trace

from .netview import param_layers

Params = dict[str, np.ndarray]
Backward = Callable[[Spec, Params, np.ndarray, Trace, np.ndarray], Gradients]
Update = Callable[[Optimizer, Params, Params, Params], tuple[Params, Params]]
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


def with_spec(variant: Spec) -> Backward:
    """The backward pass of another spec (another reduction, no weight decay, ...)."""
    return lambda spec, params, x, trace, y: network.backward(variant, params, x, trace, y)


def with_trace(change: Callable[[Trace], Trace]) -> Backward:
    """The backward pass seeing a changed forward trace."""
    return lambda spec, params, x, trace, y: network.backward(spec, params, x, change(trace), y)


def scaled(factor: float) -> Backward:
    """Deltas and data gradients ``factor`` times the reference's (the loss unchanged)."""
    def backward(spec: Spec, params: Params, x: np.ndarray, trace: Trace,
                 y: np.ndarray) -> Gradients:
        g = network.backward(spec, params, x, trace, y)
        deltas = {k: d * factor for k, d in g.deltas.items()}
        return regrad(spec, params, x, trace, replace(g, deltas=deltas))
    return backward


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


def derivative_argument(layers: list[str], on: str) -> Backward:
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
    return backward


def bias_decay(spec: Spec, params: Params, x: np.ndarray, trace: Trace,
               y: np.ndarray) -> Gradients:
    """Weight decay applied to the biases too: ``db + lambda * b``."""
    g = network.backward(spec, params, x, trace, y)
    grads = {k: v + spec.weight_decay * params[k] if spec.param_kind(k) == "bias" else v
             for k, v in g.grads.items()}
    return replace(g, grads=grads)


def stale_weights(lr: float) -> Backward:
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
    return backward


def negated_update(opt: Optimizer, params: Params, grads: Params,
                   state: Params) -> tuple[Params, Params]:
    """The declared rule fed the negated gradient (the parameters climb the loss)."""
    return optimizer_step(opt, params, {k: -g for k, g in grads.items()}, state)


def no_update(opt: Optimizer, params: Params, grads: Params,
              state: Params) -> tuple[Params, Params]:
    """An update that changes nothing."""
    return dict(params), state


def with_formula(formula: Formula) -> Update:
    """The declared rule evaluated with one of the formula's known mistakes
    (:class:`nnparity.reference.optim.Formula`: momentum late or averaged, Adam without bias
    correction, epsilon inside the root, epsilon in the other place)."""
    return lambda opt, params, grads, state: optimizer_step(opt, params, grads, state, formula)


momentum_late = with_formula(Formula(momentum="late"))
"""Momentum in the wrong order: ``p -= lr * v; v = mu * v + g``."""
momentum_average = with_formula(Formula(momentum="average"))
"""Momentum as a moving average, ``v = mu * v + (1 - mu) * g``."""
adam_eps_before_correction = with_formula(Formula(form="keras", rounded=False))
"""Adam with epsilon added to ``sqrt(v)`` before the bias correction (the Keras form, at the
declared hyperparameters) where the declared rule adds it after."""


def adam_with(correct: bool, eps_inside: bool) -> Update:
    """Adam (torch's formulation) without bias correction (``correct=False``) or with the
    epsilon inside the square root (``eps_inside=True``)."""
    return with_formula(Formula(form="torch", bias_correction=correct,
                                eps_inside_root=eps_inside))


keras_exact = with_formula(Formula(form="keras", rounded=False))
"""The Keras formulation (``v = mu v - lr g; p += v``; Adam's epsilon before the bias
correction) with the hyperparameters as given, not rounded to float32 as Keras does."""
