"""A :class:`~.graph.Network` as a standalone NumPy file: ``forward``, ``gradients`` (the
hand-derived backward pass, layer by layer in reverse), ``init_state`` and ``step``, and a
``__main__`` demo.

The layer functions (dense, activations, GELU and its erf, losses, convolution, max- and
average-pool, layer normalisation, dropout) are the
reference's own, copied in by :func:`inspect.getsource` when the file is written (with the
constants and the modules, ``math`` and ``numpy``, that they name), so an export computes exactly
what the reference does and never imports nnparity.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nnparity.files.escape import python_comment, python_string
from nnparity.reference import activations, conv, dense, dropout, losses, pool
from nnparity.reference.layers import avgpool, batchnorm, gelu, layernorm

from .graph import (
    Act,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Network,
    Norm,
    Pool,
    Residual,
    each_layer,
    padding_literal,
)
from .steps import TRAIN_STEP, demo_step, hyperparameters, step_source, trainable_constant
from .text import header, shapes_constant

ACTIVATIONS = {
    "sigmoid": (activations.sigmoid, activations.sigmoid_grad),
    "tanh": (activations.tanh, activations.tanh_grad),
    "relu": (activations.relu, activations.relu_grad),
    "identity": (activations.identity, activations.identity_grad),
    "relu3": (activations.relu3, activations.relu3_grad),
    "leaky_relu": (activations.leaky_relu, activations.leaky_relu_grad),
    "prelu": (activations.prelu, activations.prelu_grad, activations.prelu_slope_grad),
    "gelu": (gelu.gelu_inner, gelu.gelu, gelu.gelu_grad),
}

def _forward(layer: object, h: str) -> str:
    """The expression of one layer's output, given its input expression ``h``."""
    if isinstance(layer, Dense):
        bias = f'params[{python_string(layer.bias)}]' if layer.bias else "None"
        return f'dense({h}, params[{python_string(layer.weight)}], {bias})'
    if isinstance(layer, Act):
        if layer.slope:
            return f'prelu({h}, params[{python_string(layer.slope)}])'
        if layer.approximate:
            form = python_string(layer.approximate)
            return f"gelu({h}, gelu_inner({h}, {form}), {form})"
        return f"{ACTIVATIONS[layer.kind][0].__name__}({h})"
    if isinstance(layer, Conv):
        bias = f"params[{python_string(layer.bias)}]" if layer.bias else "None"
        return (f"conv2d({h}, params[{python_string(layer.weight)}], {bias}, {layer.stride}, "
                f"{padding_literal(layer.padding)})")
    if isinstance(layer, Pool) and layer.mode == "avg":
        return f"avgpool2d({h}, {_avg_settings(layer)})"
    if isinstance(layer, Norm):
        return f"layernorm({h}, {_norm_settings(layer)})[0]"
    if isinstance(layer, BatchNorm):
        names = ", ".join(python_string(n) for n in (layer.gamma, layer.beta, layer.mean,
                                                       layer.var))
        return (f"batchnorm_layer({h}, params, ({names}), {layer.momentum!r}, "
                f"{layer.epsilon!r}, {layer.variance == 'unbiased'}, "
                "running if training else None)")
    if isinstance(layer, GlobalPool):
        return f"{h}.mean(axis=(1, 2))"
    if isinstance(layer, Pool):
        return f'maxpool2d({h}, {layer.k}, {layer.stride}, {python_string(layer.padding)})'
    if isinstance(layer, Flatten):
        return f"{h}.reshape(len({h}), -1)"
    if isinstance(layer, Dropout):
        start, stop = layer.columns
        return f"dropout({h}, None if mask is None else mask[:, {start}:{stop}], " \
               f"{layer.keep_prob!r})"
    raise TypeError(f"no NumPy code for {layer!r}")


def _avg_settings(layer: Pool) -> str:
    return f"{layer.k}, {layer.stride}, {python_string(layer.padding)}, " \
        f"{layer.count_include_pad}"


def _norm_settings(layer: Norm) -> str:
    return f"params[{python_string(layer.weight)}], params[{python_string(layer.bias)}], " \
        f"{layer.epsilon!r}"


def _backward(layer: object, h: str, out: str, first: bool) -> list[str]:
    """The lines taking ``d = dL/d(output)`` of one layer to ``dL/d(input)``."""
    if isinstance(layer, Dense):
        shape = f'params[{python_string(layer.bias)}].shape' if layer.bias else "None"
        db = f', grads[{python_string(layer.bias)}]' if layer.bias else ", _"
        need = ", need_dh=False" if first else ""
        return [f'd, grads[{python_string(layer.weight)}]{db} = dense_backward(',
                f'    d, {h}, params[{python_string(layer.weight)}], {shape}{need})']
    if isinstance(layer, Act):
        if layer.slope:
            return [f'grads[{python_string(layer.slope)}] = prelu_slope_grad({h}, d)',
                    f'd = d * prelu_grad({h}, params[{python_string(layer.slope)}])']
        if layer.approximate:
            form = python_string(layer.approximate)
            return [f"d = d * gelu_grad({h}, gelu_inner({h}, {form}), {form})"]
        return [f"d = d * {ACTIVATIONS[layer.kind][1].__name__}({h}, {out})"]
    if isinstance(layer, Conv):
        need = ", need_dx=False" if first else ""
        db = f"grads[{python_string(layer.bias)}]" if layer.bias else "_"
        return [f"d, grads[{python_string(layer.weight)}], {db} = conv2d_backward(",
                f"    d, {h}, params[{python_string(layer.weight)}], {layer.stride}, "
                f"{padding_literal(layer.padding)}{need})"]
    if isinstance(layer, Pool) and layer.mode == "avg":
        return [f"d = avgpool2d_backward(d, {h}, {_avg_settings(layer)})"]
    if isinstance(layer, Norm):
        return [f"d, grads[{python_string(layer.weight)}], grads[{python_string(layer.bias)}]"
                " = layernorm_backward(",
                f"    d, *layernorm({h}, {_norm_settings(layer)})[1], "
                f"params[{python_string(layer.weight)}], {not first})"]
    if isinstance(layer, BatchNorm):
        gamma = f"params[{python_string(layer.gamma)}]"
        return [f"d, grads[{python_string(layer.gamma)}], grads[{python_string(layer.beta)}]"
                " = batchnorm_backward(",
                f"    d, *batchnorm_train({h}, {gamma}, params[{python_string(layer.beta)}], "
                f"{layer.epsilon!r})[1][:2], {gamma}, {not first})"]
    if isinstance(layer, GlobalPool):
        return [f"d = np.broadcast_to(d[:, None, None, :] / {layer.h * layer.w}, "
                f"{h}.shape).copy()"]
    if isinstance(layer, Pool):
        return [f"d = maxpool2d_backward(d, {h}, {layer.k}, {layer.stride}, "
                f"{python_string(layer.padding)})"]
    if isinstance(layer, Flatten):
        return [f"d = d.reshape({h}.shape)"]
    if isinstance(layer, Dropout):
        start, stop = layer.columns
        return [f"d = dropout_backward(d, None if mask is None else mask[:, {start}:{stop}], "
                f"{layer.keep_prob!r})"]
    raise TypeError(f"no NumPy code for {layer!r}")


def _dependencies(function: Callable[..., Any], found: dict[str, Any],
                  seen: set[str] | None = None) -> None:
    """Add to ``found`` (in dependency order) the reference functions, constants and modules
    that ``function`` names, then ``function`` itself (``seen``: names already being
    visited)."""
    seen = set() if seen is None else seen
    seen.add(function.__name__)
    code = inspect.unwrap(function).__code__
    names, stack = [], [code]
    while stack:
        current = stack.pop()
        names += current.co_names
        stack += [c for c in current.co_consts if inspect.iscode(c)]
    for name in dict.fromkeys(names):
        value = function.__globals__.get(name)
        if name in found or name in seen or value is None:
            continue
        if inspect.isfunction(value) and value.__module__.startswith("nnparity.reference"):
            _dependencies(value, found, seen)
        elif inspect.ismodule(value) or (  # a module (math, numpy) is imported at the top
                isinstance(value, int | float | str | tuple) and name.isupper()):
            found[name] = value
    found.setdefault(function.__name__, function)


def _functions(net: Network) -> dict[str, Any]:
    """The reference functions (and the constants they read) the file needs, in dependency
    order, by name."""
    needed: list[Callable[..., Any]] = [losses.loss_and_grad, dense.dense, dense.dense_backward]
    for layer in each_layer(net.layers):
        if isinstance(layer, Act):
            needed += ACTIVATIONS[layer.kind]
        if isinstance(layer, Pool) and layer.mode == "avg":
            needed += [avgpool.avgpool2d, avgpool.avgpool2d_backward]
        if isinstance(layer, Norm):
            needed += [layernorm.layernorm, layernorm.layernorm_backward]
        if isinstance(layer, BatchNorm):
            needed += [batchnorm.batchnorm_train, batchnorm.batchnorm_eval,
                       batchnorm.batchnorm_running, batchnorm.batchnorm_backward]
    if any(isinstance(layer, Conv | Pool) for layer in each_layer(net.layers)):
        needed += [conv.conv2d, conv.conv2d_backward, pool.maxpool2d, pool.maxpool2d_backward]
    if any(isinstance(layer, Dropout) for layer in net.layers):
        needed += [dropout.dropout, dropout.dropout_backward]
    found: dict[str, Any] = {}
    for function in needed:
        _dependencies(function, found)
    return found


def _bodies(net: Network) -> tuple[str, str]:
    """The bodies of ``forward`` and of the backward part of ``gradients``: every layer's
    output appended to ``hs`` (a residual block's body layers too, then the block's sum), and
    the backward chunks in reverse (a block's sum keeps ``dL/dy`` for the skip path, added back
    at the block's input)."""
    forward: list[str] = []
    chunks: list[list[str]] = []  # in forward order, run in reverse

    def walk(layers: tuple[object, ...], top: bool) -> None:
        for layer in layers:
            i = len(forward)
            name = python_comment(getattr(layer, "name", type(layer).__name__.lower()))
            if not isinstance(layer, Residual):
                forward.append(f"hs.append({_forward(layer, f'hs[{i}]')})  # {name}")
                chunks.append([f"# {name}", *_backward(layer, f"hs[{i}]", f"hs[{i + 1}]",
                                                       first=top and i == 0)])
                continue
            keep = f"d_{layer.name}"  # dL/dy of the block, the skip path's gradient
            skip = f"hs[{i}]" if layer.skip is None else _forward(layer.skip, f"hs[{i}]")
            entry = [f"# {name}: the skip path"]
            if layer.skip is None:
                entry.append(f"d = d + {keep}")
            else:
                entry += ["d_body = d", f"d = {keep}",
                          *_backward(layer.skip, f"hs[{i}]", "", first=False), "d = d + d_body"]
            chunks.append(entry)
            walk(layer.body, False)
            end = len(forward)
            forward.append(f"hs.append(hs[{end}] + {skip})  # {name}: body + skip")
            chunks.append([f"# {name}: the sum", f"{keep} = d"])

    walk(net.layers, True)
    backward = [line for chunk in reversed(chunks) for line in chunk]
    return "\n".join(f"    {line}" for line in forward), \
        "\n".join(f"    {line}" for line in backward)


BATCHNORM_LAYER = '''def batchnorm_layer(x, params, names, momentum, epsilon, unbiased, running):
    """Batch normalisation of x (names: gamma, beta, running mean and variance): with running
    None the evaluation pass on the running statistics, else the training pass on the batch's,
    its new running statistics written into the dict running."""
    gamma, beta, mean, var = (params[name] for name in names)
    if running is None:
        return batchnorm_eval(x, gamma, beta, mean, var, epsilon)
    y, (_, _, mu, batch_var, m) = batchnorm_train(x, gamma, beta, epsilon)
    running[names[2]], running[names[3]] = batchnorm_running(
        mean, var, mu, batch_var, m, momentum, unbiased)
    return y'''
"""The file's one function of its own: a batchnorm layer's pass from the reference's."""


def _passes(net: Network, forward: str, backward: str) -> list[str]:
    """``forward`` and ``gradients``; with running statistics (batch normalisation) forward
    takes ``training`` (default: when a mask is given, as the reference) and returns them too,
    and ``gradients`` returns ``(loss, grads of TRAINABLE, running)``."""
    stateful = bool(net.state)
    signature = "params, x, mask=None, training=None" if stateful else "params, x, mask=None"
    running = ("    training = mask is not None if training is None else training\n"
               "    running = {}  # the running statistics a training pass leaves\n"
               if stateful else "")
    outputs = ", running" if stateful else ""
    doc = (" and the running statistics\n    a training pass leaves (training: batch "
           "statistics; default: when a mask is given)" if stateful else "")
    keys = "TRAINABLE" if stateful else "SHAPES"
    return [
        f"def forward({signature}):\n"
        f'    """The output [N, K] of x, every layer\'s output hs[1:] (hs[0] is x){doc}."""\n'
        + running + "    hs = [np.asarray(x, DTYPE)]\n" + forward
        + f"\n    return hs[-1], hs{outputs}",
        "def gradients(params, x, y, mask=None):\n"
        f'    """(loss, dL/dparams{outputs}): the forward pass, then every layer\'s backward '
        'pass in reverse."""\n'
        + (f"    o, hs{outputs} = forward(params, x, mask, training=True)\n" if stateful
           else "    o, hs = forward(params, x, mask)\n")
        + "    t = np.eye(o.shape[1], dtype=DTYPE)[y] if LOSS == \"ce\" else np.asarray(y, DTYPE)\n"
        "    value, d = loss_and_grad(LOSS, o, t, REDUCTION)  # d = dL/do\n"
        "    grads = {}\n" + backward + "\n"
        "    for k in WEIGHTS:  # weight decay\n"
        "        value = value + 0.5 * WEIGHT_DECAY * np.sum(params[k] ** 2)\n"
        "        grads[k] = grads[k] + WEIGHT_DECAY * params[k]\n"
        f"    return float(value), {{k: grads[k] for k in {keys}}}{outputs}",
    ]



def write(net: Network) -> str:
    """The file's source."""
    forward, backward = _bodies(net)
    needed = _functions(net)
    modules = {"np": np, **{k: v for k, v in needed.items() if inspect.ismodule(v)}}
    if net.optimizer.name == "adam":
        modules["math"] = math
    imports = "".join(sorted(f"import {m.__name__}" + (f" as {k}" if k != m.__name__ else "")
                             + "\n" for k, m in modules.items()))
    constants = [f"{k} = {v!r}" for k, v in needed.items()
                 if not callable(v) and not inspect.ismodule(v)]
    functions = [v for v in needed.values() if callable(v)]
    weights = ", ".join(python_string(w) for w in net.weights)
    shape = ", ".join(map(str, net.input_shape))
    labels = (f"rng.integers(0, {net.outputs}, 4)" if net.loss == "ce"
              else f"rng.random((4, {net.outputs}))")
    parts = [
        header(net, "NumPy", "numpy", "the same")
        # the copied functions' annotations may name the reference's type aliases: never evaluated
        + "\nfrom __future__ import annotations\n\n"
        + imports + "\n"
        + f"DTYPE = {python_string(net.dtype)}\n"
        f"LOSS, REDUCTION = {python_string(net.loss)}, {python_string(net.reduction)}\n"
        + shapes_constant(net)
        + (trainable_constant(net.trainable) + "  # SHAPES less the running statistics\n"
           if net.state else "")
        + f"WEIGHT_DECAY = {net.weight_decay!r}  # 0.5 * lambda * sum(W ** 2) over WEIGHTS\n"
        + f"WEIGHTS = ({weights},)\n" + "\n".join([hyperparameters(net.optimizer), *constants]),
        "# The reference's layer functions, copied verbatim when this file was written.",
        *(inspect.getsource(f).strip() for f in functions),
        BATCHNORM_LAYER if net.state else "",
        *_passes(net, forward, backward),
        step_source(net.optimizer, "np"),
        TRAIN_STEP if net.state else "",
        "if __name__ == \"__main__\":\n"
        "    rng = np.random.default_rng(0)\n"
        "    params = {k: 0.1 * rng.standard_normal(s) for k, s in SHAPES.items()}\n"
        f"    x = rng.standard_normal((4, {shape}))\n"
        f"    y = {labels}\n" + demo_step(bool(net.state), "np")
        + "    print(f\"loss {value:.6f}; one step taken\")",
    ]
    return "\n\n\n".join(part for part in parts if part) + "\n"
