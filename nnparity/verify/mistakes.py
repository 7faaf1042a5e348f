"""Classic mistakes built into the reference on purpose, so a diagnosis can be checked by numbers.

Each function returns a *backward* (``(spec, params, x, trace, y) -> Gradients``, the shape of
:func:`nnparity.reference.network.backward`) or an *update* (``(optimizer, params, grads, state) ->
(params, state)``, the shape of :func:`nnparity.reference.optim.step`) with one mistake in it;
:func:`nnparity.verify.problem.reference_tensors` runs them in place of the correct ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from nnparity.reference import network
from nnparity.reference.activations import get_activation
from nnparity.reference.dense import dense_backward
from nnparity.reference.optim import Optimizer
from nnparity.reference.optim import step as optimizer_step
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.spec import MLPSpec

Params = dict[str, np.ndarray]
Backward = Callable[[MLPSpec, Params, np.ndarray, Trace, np.ndarray], Gradients]
Update = Callable[[Optimizer, Params, Params, Params], tuple[Params, Params]]
SMOOTH = ("sigmoid", "tanh")  # activations whose derivative is written with h


def with_spec(variant: MLPSpec) -> Backward:
    """The backward pass of another spec (another reduction, no weight decay, ...)."""
    return lambda spec, params, x, trace, y: network.backward(variant, params, x, trace, y)


def with_trace(change: Callable[[Trace], Trace]) -> Backward:
    """The backward pass seeing a changed forward trace."""
    return lambda spec, params, x, trace, y: network.backward(spec, params, x, change(trace), y)


def scaled(factor: float) -> Backward:
    """Deltas and data gradients ``factor`` times the reference's (the loss unchanged)."""
    def backward(spec: MLPSpec, params: Params, x: np.ndarray, trace: Trace,
                 y: np.ndarray) -> Gradients:
        g = network.backward(spec, params, x, trace, y)
        deltas = {k: d * factor for k, d in g.deltas.items()}
        return regrad(spec, params, x, trace, replace(g, deltas=deltas))
    return backward


def regrad(spec: MLPSpec, params: Params, x: np.ndarray, trace: Trace, g: Gradients) -> Gradients:
    """Parameter gradients recomputed from ``g``'s deltas and the true layer inputs."""
    inputs = [spec.as_input(x)] + [trace.h[name] for name in spec.layer_names[:-1]]
    shapes = spec.param_shapes()
    grads = dict(g.grads)
    for i, name in enumerate(spec.layer_names, 1):
        W = params[f"W{i}"]
        _, dW, db = dense_backward(g.deltas[name], inputs[i - 1], W, shapes.get(f"b{i}"),
                                   need_dh=False)
        grads[f"W{i}"] = dW + spec.weight_decay * W if spec.weight_decay else dW
        if db is not None:
            grads[f"b{i}"] = db
    return replace(g, grads=grads)


def derivative_argument(layers: list[str], on: str) -> Backward:
    """The activation derivative of ``layers`` evaluated on the wrong argument: ``on="z"``, the
    formula in h (``h (1 - h)``, ``1 - h^2``) applied to z; ``on="h"``, the formula in z
    (``s(z)(1 - s(z))``, ``1 - tanh(z)^2``) applied to h."""
    def backward(spec: MLPSpec, params: Params, x: np.ndarray, trace: Trace,
                 y: np.ndarray) -> Gradients:
        z, h = dict(trace.z), dict(trace.h)
        for name, act in zip(spec.layer_names, spec.activations, strict=True):
            if name not in layers:
                continue
            if on == "z":
                h[name] = trace.z[name]
            else:
                z[name], h[name] = trace.h[name], get_activation(act).f(trace.h[name])
        wrong = network.backward(spec, params, x, replace(trace, z=z, h=h), y)
        return regrad(spec, params, x, trace, wrong)
    return backward


def bias_decay(spec: MLPSpec, params: Params, x: np.ndarray, trace: Trace,
               y: np.ndarray) -> Gradients:
    """Weight decay applied to the biases too: ``db + lambda * b``."""
    g = network.backward(spec, params, x, trace, y)
    grads = {k: v + spec.weight_decay * params[k] if k.startswith("b") else v
             for k, v in g.grads.items()}
    return replace(g, grads=grads)


def stale_weights(lr: float) -> Backward:
    """Each layer's weights updated (``W - lr * dW``) before the delta below them is computed
    from them: the delta of layer ``i`` sees the new ``W_{i+1}``."""
    def backward(spec: MLPSpec, params: Params, x: np.ndarray, trace: Trace,
                 y: np.ndarray) -> Gradients:
        right = network.backward(spec, params, x, trace, y)
        grads, deltas, current = dict(right.grads), dict(right.deltas), dict(params)
        for i in range(spec.depth - 1, 0, -1):
            above = f"W{i + 1}"
            current[above] = params[above] - lr * grads[above]
            g = network.backward(spec, current, x, trace, y)
            name = spec.layer_names[i - 1]
            deltas[name] = g.deltas[name]
            for key in (f"W{i}", f"b{i}"):
                if key in g.grads:
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


def momentum_late(opt: Optimizer, params: Params, grads: Params,
                  state: Params) -> tuple[Params, Params]:
    """Momentum in the wrong order: the step uses the velocity before this gradient is added
    (``p -= lr * v; v = mu * v + g``)."""
    new_params = {k: p - opt.lr * state[f"v.{k}"] for k, p in params.items()}
    return new_params, {f"v.{k}": opt.momentum * state[f"v.{k}"] + grads[k] for k in params}


def momentum_average(opt: Optimizer, params: Params, grads: Params,
                     state: Params) -> tuple[Params, Params]:
    """Momentum as a moving average, ``v = mu * v + (1 - mu) * g``, where the declared rule
    adds the whole gradient."""
    velocity = {f"v.{k}": opt.momentum * state[f"v.{k}"] + (1 - opt.momentum) * grads[k]
                for k in params}
    return {k: p - opt.lr * velocity[f"v.{k}"] for k, p in params.items()}, velocity


def adam_with(correct: bool, eps_inside: bool) -> Update:
    """Adam (the paper's formulation) without bias correction (``correct=False``) or with the
    epsilon inside the square root (``eps_inside=True``)."""
    def update(opt: Optimizer, params: Params, grads: Params,
               state: Params) -> tuple[Params, Params]:
        t = int(state["t"]) + 1
        b1, b2, eps = opt.beta1, opt.beta2, float(opt.eps or 0.0)
        new_params, new_state = {}, {"t": np.array(t)}
        for k, p in params.items():
            g = grads[k]
            m = b1 * state[f"m.{k}"] + (1 - b1) * g
            v = b2 * state[f"v.{k}"] + (1 - b2) * g * g
            m_hat = m / (1 - b1**t) if correct else m
            v_hat = v / (1 - b2**t) if correct else v
            denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
            new_params[k] = p - opt.lr * m_hat / denom
            new_state[f"m.{k}"], new_state[f"v.{k}"] = m, v
        return new_params, new_state
    return update


def adam_eps_before_correction(opt: Optimizer, params: Params, grads: Params,
                               state: Params) -> tuple[Params, Params]:
    """Adam with epsilon added to ``sqrt(v)`` before the bias correction (the Keras form, at the
    declared hyperparameters) where the declared rule adds it after."""
    t = int(state["t"]) + 1
    b1, b2, eps = opt.beta1, opt.beta2, float(opt.eps or 0.0)
    new_params, new_state = {}, {"t": np.array(t)}
    alpha = opt.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    for k, p in params.items():
        g = grads[k]
        m = b1 * state[f"m.{k}"] + (1 - b1) * g
        v = b2 * state[f"v.{k}"] + (1 - b2) * g * g
        new_params[k] = p - alpha * m / (np.sqrt(v) + eps)
        new_state[f"m.{k}"], new_state[f"v.{k}"] = m, v
    return new_params, new_state


def keras_exact(opt: Optimizer, params: Params, grads: Params,
                state: Params) -> tuple[Params, Params]:
    """The Keras formulation (``v = mu v - lr g; p += v``; Adam's epsilon before the bias
    correction) with the hyperparameters as given, not rounded to float32 as Keras does."""
    if opt.name == "adam":
        return adam_eps_before_correction(opt, params, grads, state)
    if opt.name == "momentum":
        velocity = {f"v.{k}": opt.momentum * state[f"v.{k}"] - opt.lr * grads[k]
                    for k in params}
        return {k: p + velocity[f"v.{k}"] for k, p in params.items()}, velocity
    return {k: p - opt.lr * grads[k] for k, p in params.items()}, dict(state)
