"""The building blocks of the teaching page: formulas, reference functions, a fixed example.

A :class:`Block` names the reference functions whose source the page shows (looked up on their
module when the page is generated, so a changed function changes the page), the forward and
backward formulas (LaTeX), a fixed small example (inputs drawn from a generator seeded by the
block's key, in float64 or float32) and the reference's outputs on it. ``textbook`` has a
function named ``block.function`` with the example's inputs as keyword arguments and outputs
under the same names; so has each framework module (``torch_blocks``, ``keras_blocks``,
``jax_blocks``), its arguments built from the example by the framework's ``*_feed`` module.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from nnparity.reference import activations, conv, dense, dropout, losses, optim, params, pool
from nnparity.reference.layers import avgpool as avgpool_layer
from nnparity.reference.layers import batchnorm as batchnorm_layer
from nnparity.reference.layers import flatten as flatten_layer
from nnparity.reference.layers import gelu as gelu_layer
from nnparity.reference.layers import global_avgpool as global_avgpool_layer
from nnparity.reference.layers import layernorm as layernorm_layer
from nnparity.reference.layers import residual as residual_layer
from nnparity.reference.layers.activation import Activation
from nnparity.reference.layers.base import Run
from nnparity.reference.layers.dense import Dense
from nnparity.reference.spec import MLPSpec

Inputs = dict[str, Any]
Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Block:
    """One section of the page: ``key`` (anchor and seed), ``title``, ``intro`` (plain text),
    ``forward``/``backward`` (LaTeX), ``shapes`` (plain text), ``code`` (module, function name)
    pairs shown as the reference's code, ``example(rng, dtype) -> inputs``,
    ``reference(inputs) -> outputs``, the framework function's name and the captions of the
    two formulas."""

    key: str
    title: str
    intro: str
    forward: str
    backward: str
    shapes: str
    code: tuple[tuple[ModuleType | type, str], ...]
    example: Callable[[np.random.Generator, str], Inputs]
    reference: Callable[[Inputs], Outputs]
    function: str
    labels: tuple[str, str] = ("forward", "backward")

    def inputs(self, dtype: str) -> Inputs:
        """The fixed example in ``dtype`` (the same numbers on every generation)."""
        return self.example(np.random.default_rng(zlib.crc32(self.key.encode())), dtype)

    def sources(self) -> list[tuple[str, Callable[..., Any]]]:
        """``(qualified name, function)`` of the reference code, looked up now."""
        return [(f"{module.__name__.rsplit('.', 1)[-1]}.{name}", getattr(module, name))
                for module, name in self.code]


def _normal(rng: np.random.Generator, dtype: str, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# --- examples --------------------------------------------------------------------------------


def _dense_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"x": _normal(rng, dtype, 4, 3), "W": _normal(rng, dtype, 3, 5),
            "b": _normal(rng, dtype, 5), "dz": _normal(rng, dtype, 4, 5)}


def _activation_example(rng: np.random.Generator, dtype: str) -> Inputs:
    z = _normal(rng, dtype, 3, 4)
    z[0, 0] = 0  # the derivative at 0 is a convention
    return {"z": z, "dh": _normal(rng, dtype, 3, 4)}


def _prelu_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {**_activation_example(rng, dtype), "a": np.array([activations.PRELU_INIT], dtype)}


def _class_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"o": 3 * _normal(rng, dtype, 4, 3), "y": np.array([0, 2, 1, 2])}


def _l2_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"o": _normal(rng, dtype, 4, 3), "t": _normal(rng, dtype, 4, 3)}


def _bce_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"o": 3 * _normal(rng, dtype, 5, 1), "t": np.array([[0], [1], [1], [0], [1]], dtype)}


def _decay_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"W": _normal(rng, dtype, 3, 4), "g": _normal(rng, dtype, 3, 4), "lr": 0.1,
            "wd": 0.01}


def _conv_example(stride: int, padding: str) -> Callable[[np.random.Generator, str], Inputs]:
    def example(rng: np.random.Generator, dtype: str) -> Inputs:
        x, W = _normal(rng, dtype, 2, 7, 6, 2), _normal(rng, dtype, 3, 3, 2, 3)
        ho, wo = conv.output_hw((7, 6), (3, 3), stride, padding)
        return {"x": x, "W": W, "b": _normal(rng, dtype, 3),
                "dz": _normal(rng, dtype, 2, ho, wo, 3), "stride": stride, "padding": padding}
    return example


def _pool_example(rng: np.random.Generator, dtype: str) -> Inputs:
    x = rng.integers(0, 3, (2, 5, 5, 2)).astype(dtype)  # small integers: many ties
    ho, wo = conv.output_hw((5, 5), (2, 2), 2, "SAME")
    return {"x": x, "dy": _normal(rng, dtype, 2, ho, wo, 2), "k": 2, "stride": 2}


def _avgpool_example(rng: np.random.Generator, dtype: str) -> Inputs:
    ho, wo = conv.output_hw((5, 5), (3, 3), 2, "SAME")  # SAME pads one cell on every side
    return {"x": _normal(rng, dtype, 2, 5, 5, 2), "dy": _normal(rng, dtype, 2, ho, wo, 2),
            "k": 3, "stride": 2}


def _global_avgpool_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"x": _normal(rng, dtype, 2, 3, 4, 2), "dy": _normal(rng, dtype, 2, 2)}


def _flatten_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"x": _normal(rng, dtype, 2, 2, 3, 4), "W": _normal(rng, dtype, 24, 5),
            "b": _normal(rng, dtype, 5), "dz": _normal(rng, dtype, 2, 5)}


def _dropout_example(rng: np.random.Generator, dtype: str) -> Inputs:
    keep_prob = 0.5
    mask = dropout.draw_mask(rng, (4, 6), keep_prob, dtype)
    return {"h": _normal(rng, dtype, 4, 6), "mask": mask,
            "keep_prob": keep_prob, "dy": _normal(rng, dtype, 4, 6)}


def _norm_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"x": 2 * _normal(rng, dtype, 6, 4) + 1, "gamma": 1 + _normal(rng, dtype, 4) / 2,
            "beta": _normal(rng, dtype, 4), "dy": _normal(rng, dtype, 6, 4), "epsilon": 1e-5}


def _gelu_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"z": 2 * _normal(rng, dtype, 3, 4), "dh": _normal(rng, dtype, 3, 4)}


def _residual_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"x": _normal(rng, dtype, 4, 3), "W": _normal(rng, dtype, 3, 3),
            "b": _normal(rng, dtype, 3), "dy": _normal(rng, dtype, 4, 3)}


def _optimizer_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {"W": _normal(rng, dtype, 3, 4), "grads": [_normal(rng, dtype, 3, 4) for _ in range(3)],
            "lr": 0.1}


def _momentum_example(rng: np.random.Generator, dtype: str) -> Inputs:
    return {**_optimizer_example(rng, dtype), "mu": 0.9}


# --- reference computations --------------------------------------------------------------------


def _dense(i: Inputs) -> Outputs:
    z = dense.dense(i["x"], i["W"], i["b"])
    dx, dW, db = dense.dense_backward(i["dz"], i["x"], i["W"], i["b"].shape)
    return {"z": z, "dx": dx, "dW": dW, "db": db}


def _activation(name: str) -> Callable[[Inputs], Outputs]:
    def reference(i: Inputs) -> Outputs:
        h = getattr(activations, name)(i["z"])
        return {"h": h, "dz": i["dh"] * getattr(activations, f"{name}_grad")(i["z"], h)}
    return reference


def _prelu(i: Inputs) -> Outputs:
    z, a, dh = i["z"], i["a"], i["dh"]
    return {"h": activations.prelu(z, a), "dz": dh * activations.prelu_grad(z, a),
            "da": activations.prelu_slope_grad(z, dh)}


def _loss(loss: str, reduction: str, target: str) -> Callable[[Inputs], Outputs]:
    def reference(i: Inputs) -> Outputs:
        o = i["o"]
        t = losses.as_targets(loss, i[target], o.shape[0], o.shape[1], o.dtype)
        value, grad = losses.loss_and_grad(loss, o, t, reduction)
        return {"loss": np.asarray(value, o.dtype), "do": grad}
    return reference


def _weight_decay(i: Inputs) -> Outputs:
    W, wd = i["W"], i["wd"]
    spec = MLPSpec(W.shape[0], (W.shape[1],), ("identity",), loss="l2", weight_decay=wd,
                   dtype=str(W.dtype))
    dW = wd * W  # the model adds it to the data gradient: dW + lambda W
    return {"penalty": np.asarray(params.weight_decay_loss(spec, {"W1": W}), W.dtype),
            "dW": dW, "W after one SGD step": W - i["lr"] * (i["g"] + dW)}


def _conv(i: Inputs) -> Outputs:
    z = conv.conv2d(i["x"], i["W"], i["b"], i["stride"], i["padding"])
    dx, dW, db = conv.conv2d_backward(i["dz"], i["x"], i["W"], i["stride"], i["padding"])
    return {"z": z, "dx": dx, "dW": dW, "db": db}


def _pool(i: Inputs) -> Outputs:
    y = pool.maxpool2d(i["x"], i["k"], i["stride"], "SAME")
    return {"y": y, "dx": pool.maxpool2d_backward(i["dy"], i["x"], i["k"], i["stride"], "SAME")}


def _avgpool(i: Inputs) -> Outputs:
    x, k, stride = i["x"], i["k"], i["stride"]
    return {"y": avgpool_layer.avgpool2d(x, k, stride, "SAME"),
            "dx": avgpool_layer.avgpool2d_backward(i["dy"], x, k, stride, "SAME")}


def _global_avgpool(i: Inputs) -> Outputs:
    x, layer = i["x"], global_avgpool_layer.GlobalAvgPool("gap")
    y, cache = layer.forward(x, {}, Run(x.dtype))
    return {"y": y, "dx": layer.backward(i["dy"], x, y, cache, {}, Run(x.dtype), True)[0]}


def _flatten(i: Inputs) -> Outputs:
    x = i["x"]
    flat = x.reshape(x.shape[0], -1)  # NHWC flatten, as the CNN does before fc1
    z = dense.dense(flat, i["W"], i["b"])
    dflat, dW, _ = dense.dense_backward(i["dz"], flat, i["W"], i["b"].shape)
    return {"z": z, "dx": dflat.reshape(x.shape), "dW": dW}


def _dropout(i: Inputs) -> Outputs:
    return {"y": dropout.dropout(i["h"], i["mask"], i["keep_prob"]),
            "dh": dropout.dropout_backward(i["dy"], i["mask"], i["keep_prob"])}


def _batchnorm(i: Inputs) -> Outputs:
    x, gamma, beta = i["x"], i["gamma"], i["beta"]
    layer = batchnorm_layer.BatchNorm("bn", epsilon=i["epsilon"])
    params = {layer.gamma: gamma, layer.beta: beta, layer.mean: np.zeros_like(gamma),
              layer.var: np.ones_like(gamma)}
    run = Run(x.dtype, training=True)
    y, cache = layer.forward(x, params, run)
    dx, grads = layer.backward(i["dy"], x, y, cache, params, run, True)
    return {"y": y, "dx": dx, "dgamma": grads[layer.gamma], "dbeta": grads[layer.beta]}


def _layernorm(i: Inputs) -> Outputs:
    y, (xhat, r) = layernorm_layer.layernorm(i["x"], i["gamma"], i["beta"], i["epsilon"])
    dx, dgamma, dbeta = layernorm_layer.layernorm_backward(i["dy"], xhat, r, i["gamma"], True)
    return {"y": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def _gelu(approximate: str) -> Callable[[Inputs], Outputs]:
    def reference(i: Inputs) -> Outputs:
        z = i["z"]
        inner = gelu_layer.gelu_inner(z, approximate)
        return {"h": gelu_layer.gelu(z, inner, approximate),
                "dz": i["dh"] * gelu_layer.gelu_grad(z, inner, approximate)}
    return reference


def _residual(i: Inputs) -> Outputs:
    x = i["x"]
    block = residual_layer.Residual("res", net=(Dense("fc", units=3, weight="W", bias="b"),
                                                Activation("act", function="tanh")))
    params, run = {"W": i["W"], "b": i["b"]}, Run(x.dtype)
    y, cache = block.forward(x, params, run)
    dx, grads = block.backward(i["dy"], x, y, cache, params, run, True)
    return {"y": y, "dx": dx, "dW": grads["W"], "db": grads["b"]}


def _optimizer(name: str) -> Callable[[Inputs], Outputs]:
    def reference(i: Inputs) -> Outputs:
        out = {}
        for variant in optim.VARIANTS:
            opt = optim.Optimizer(name, lr=i["lr"], momentum=i.get("mu", 0.9), variant=variant)
            p = {"W": i["W"]}
            state = optim.init_state(opt, p)
            for g in i["grads"]:
                p, state = optim.step(opt, p, {"W": g}, state)
            out[f"W ({variant} formula)"] = p["W"]
        return out
    return reference


# --- the blocks --------------------------------------------------------------------------------

_ACTIVATIONS = {
    "sigmoid": ("Sigmoid", r"h = \sigma(z) = \frac{1}{1 + e^{-z}}",
                r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial h} \odot h (1 - h)",
                "computed without overflow for any finite z; the derivative uses h"),
    "tanh": ("Tanh", r"h = \tanh(z)",
             r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial h} \odot (1 - h^2)",
             "the derivative uses h"),
    "relu": ("ReLU", r"h = \max(z, 0)",
             r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial h} \odot [z > 0]",
             "relu'(0) = 0, as PyTorch and TensorFlow do (the NumPy blog uses 1)"),
    "relu3": ("RELU3", r"h = \max(z, 0)^3",
              r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial h} \odot 3 \max(z, 0)^2",
              "the Fashion-MNIST report's activation"),
    "identity": ("Identity", r"h = z",
                 r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial h}",
                 "the BP lecture's no_active: the output layer before a loss on logits"),
}

ELEMENTWISE = "z, h, dL/dh, dL/dz: [N, D], any shape, elementwise"


def _activation_blocks() -> list[Block]:
    return [Block(name, title, note, fwd, bwd, ELEMENTWISE,
                  ((activations, name), (activations, f"{name}_grad")),
                  _activation_example, _activation(name), name)
            for name, (title, fwd, bwd, note) in _ACTIVATIONS.items()]


def _optimizer_blocks() -> list[Block]:
    return [
        Block("sgd", "SGD", "Three steps from the same gradients; the learning rate 0.1.",
              r"W \leftarrow W - \eta\, g", r"\text{(no state)}", "W, g: any shape",
              ((optim, "step"),), _optimizer_example, _optimizer("sgd"), "sgd",
              ("update", "state")),
        Block("momentum", "Momentum: both frameworks' formulas",
              "PyTorch accumulates the gradient and scales by the learning rate at the update; "
              "Keras accumulates the scaled step. Each framework is compared with its own "
              "formula (the reference implements both). With a constant learning rate the two "
              "are the same update (v_keras = -lr v_torch), up to Keras' float32 rounding of "
              "the learning rate and the momentum.",
              r"\text{torch: } v \leftarrow \mu v + g,\; W \leftarrow W - \eta v",
              r"\text{keras: } v \leftarrow \mu v - \eta g,\; W \leftarrow W + v",
              "W, g, v: any shape", ((optim, "_momentum"),), _momentum_example,
              _optimizer("momentum"), "momentum", ("PyTorch, optax", "Keras")),
        Block("adam", "Adam: both epsilon placements",
              "PyTorch (and optax) add epsilon after the bias correction of sqrt(v), as the "
              "paper does; Keras adds epsilon-hat to sqrt(v) before it, with a default of 1e-7 "
              "instead of 1e-8. Each framework is compared with its own formula.",
              r"\text{torch: } W \leftarrow W - \frac{\eta}{1-\beta_1^t}\, "
              r"\frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}",
              r"\text{keras: } \alpha = \eta \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t},\; "
              r"W \leftarrow W - \alpha \frac{m}{\sqrt{v} + \hat\epsilon}",
              "W, g, m, v: any shape", ((optim, "_adam"),), _optimizer_example,
              _optimizer("adam"), "adam", ("PyTorch, optax", "Keras")),
    ]


NORM_SHAPES = "x, y, dL/dy [N, D]; gamma, beta [D]"
XHAT_GRADS = (r"\frac{\partial L}{\partial \gamma} = \sum \frac{\partial L}{\partial y} "
              r"\odot \hat x,\; \frac{\partial L}{\partial \beta} = \sum "
              r"\frac{\partial L}{\partial y}")


def _layer_blocks() -> list[Block]:
    """Batch normalisation, layer normalisation and both GELU forms (the layer kinds' panes)."""
    gelu_code = tuple((gelu_layer, name) for name in ("gelu_inner", "gelu", "gelu_grad"))
    return [
        Block("batchnorm", "Batch normalisation (a training pass)",
              "Statistics per feature over the batch (the biased variance), then a learned "
              "scale and shift; the backward goes through the batch statistics, so every "
              "sample's gradient depends on every other sample. Epsilon 1e-5 in every framework "
              "(torch's default; Keras' is 1e-3). The running statistics are a trap below.",
              r"\mu = \tfrac{1}{m} \sum_n x_n,\; \sigma^2 = \tfrac{1}{m} \sum_n (x_n - \mu)^2,\;"
              r" \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}},\; "
              r"y = \gamma \hat x + \beta",
              r"\frac{\partial L}{\partial x} = \frac{\gamma}{m \sqrt{\sigma^2 + \epsilon}} "
              r"\Big(m \frac{\partial L}{\partial y} - \sum_n \frac{\partial L}{\partial y_n} - "
              r"\hat x \sum_n \frac{\partial L}{\partial y_n} \hat x_n\Big),\; " + XHAT_GRADS,
              NORM_SHAPES + "; m = N (per feature)",
              ((batchnorm_layer, "batch_statistics"), (batchnorm_layer.BatchNorm, "forward"),
               (batchnorm_layer.BatchNorm, "backward")), _norm_example, _batchnorm,
              "batchnorm"),
        Block("layernorm", "Layer normalisation",
              "Statistics per sample over its D features (biased variance), then a learned "
              "scale and shift per feature; epsilon 1e-5 in every framework here (torch's "
              "default; Keras' is 1e-3: a trap below).",
              r"\mu_n = \tfrac{1}{D} \sum_i x_{ni},\; \sigma_n^2 = \tfrac{1}{D} \sum_i "
              r"(x_{ni} - \mu_n)^2,\; r_n = \frac{1}{\sqrt{\sigma_n^2 + \epsilon}},\; "
              r"y = \gamma \odot (x - \mu) r + \beta",
              r"g = \frac{\partial L}{\partial y} \odot \gamma,\; "
              r"\frac{\partial L}{\partial x_n} = r_n \big(g_n - \overline{g_n} - \hat x_n\, "
              r"\overline{g_n \hat x_n}\big),\; " + XHAT_GRADS,
              NORM_SHAPES + "; the bar: the mean over a row's D features",
              ((layernorm_layer, "layernorm"), (layernorm_layer, "layernorm_backward")),
              _norm_example, _layernorm, "layernorm"),
        Block("gelu", "GELU (exact, erf)",
              "torch's nn.GELU() and Keras' gelu default to this form; jax.nn.gelu defaults to "
              "the tanh form (the next section; the difference is a trap below). "
              "keras.activations.gelu casts its constants through float32: its float64 rows "
              "are about 1e-9 off, on purpose (the reference's Keras backend writes GELU with "
              "keras.ops instead).",
              r"h = z\, \Phi(z) = \tfrac{1}{2} z \Big(1 + \mathrm{erf}\frac{z}{\sqrt 2}\Big)",
              r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial h} \odot "
              r"\big(\Phi(z) + z\, \varphi(z)\big),\; \varphi(z) = "
              r"\frac{e^{-z^2/2}}{\sqrt{2\pi}}",
              ELEMENTWISE, gelu_code, _gelu_example, _gelu("none"), "gelu"),
        Block("gelu-tanh", "GELU (tanh approximation)",
              "jax.nn.gelu's default, torch's approximate='tanh', Keras' approximate=True "
              "(float32 constants again: its float64 rows are off).",
              r"h = \tfrac{1}{2} z (1 + \tanh u),\; u = \sqrt{2/\pi}\,(z + 0.044715 z^3)",
              r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial h} \odot "
              r"\Big(\tfrac{1}{2} (1 + \tanh u) + \tfrac{1}{2} z (1 - \tanh^2 u) "
              r"\sqrt{2/\pi}\, (1 + 3 \cdot 0.044715 z^2)\Big)",
              ELEMENTWISE, gelu_code, _gelu_example, _gelu("tanh"), "gelu_tanh"),
        Block("residual", "Residual block",
              "y = x + f(x), here f a dense layer and tanh: the skip path passes the gradient "
              "through unchanged, so dL/dx is the sum of the two paths'.",
              r"y = x + f(x),\; f(x) = \tanh(x W + b)",
              r"\delta = \frac{\partial L}{\partial y} \odot (1 - f^2),\; "
              r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} + \delta W^\top,\; "
              r"\frac{\partial L}{\partial W} = x^\top \delta,\; "
              r"\frac{\partial L}{\partial b} = \mathbf{1}^\top \delta",
              "x, y [N, D], W [D, D], b [D]",
              ((residual_layer.Residual, "forward"),
               (residual_layer.Residual, "backward_with_deltas")),
              _residual_example, _residual, "residual"),
    ]


def blocks() -> list[Block]:
    """Every section of the page, in reading order."""
    dz = r"\frac{\partial L}{\partial z}"
    return [
        Block("dense", "Dense layer", "The fully connected layer of the BP lecture.",
              r"z = h W + b",
              rf"\frac{{\partial L}}{{\partial h}} = {dz} W^\top,\; "
              rf"\frac{{\partial L}}{{\partial W}} = h^\top {dz},\; "
              rf"\frac{{\partial L}}{{\partial b}} = \mathbf{{1}}^\top {dz}",
              "h [N, D_in], W [D_in, D_out], b [D_out], z [N, D_out]",
              ((dense, "dense"), (dense, "dense_backward")), _dense_example, _dense, "dense"),
        *_activation_blocks(),
        Block("prelu", "PReLU",
              "One learnable slope per layer (nn.PReLU()); PReLU'(0) = a. Keras' PReLU layer "
              "computes relu(z) - a relu(-z), whose derivative at 0 is 0: the example holds a "
              "z = 0, and the Keras rows show the difference.",
              r"h = \begin{cases} z & z > 0 \\ a z & z \le 0 \end{cases}",
              r"\frac{\partial L}{\partial z} = \frac{\partial L}{\partial h} \odot "
              r"\begin{cases} 1 & z > 0 \\ a & z \le 0 \end{cases},\; "
              r"\frac{\partial L}{\partial a} = \sum \frac{\partial L}{\partial h} \min(z, 0)",
              "z, h [N, D], a [1]",
              ((activations, "prelu"), (activations, "prelu_grad"),
               (activations, "prelu_slope_grad")), _prelu_example, _prelu, "prelu"),
        Block("softmax-ce", "Softmax cross-entropy",
              "On logits, with log-sum-exp; class indices as labels; summed over the batch.",
              r"L = -\sum_{n} \log \mathrm{softmax}(o_n)_{y_n}",
              r"\frac{\partial L}{\partial o} = \mathrm{softmax}(o) - t",
              "o, t [N, K] (t one-hot), y [N]",
              ((losses, "log_softmax_and_softmax"), (losses, "loss_and_grad")),
              _class_example, _loss("ce", "sum", "y"), "softmax_ce"),
        Block("l2", "L2 loss", "The BP lecture's squared error.",
              r"L = \tfrac{1}{2} \sum (o - t)^2", r"\frac{\partial L}{\partial o} = o - t",
              "o, t [N, K]", ((losses, "loss_and_grad"),), _l2_example,
              _loss("l2", "sum", "t"), "l2"),
        Block("log-loss", "Log-loss (binary cross-entropy on a logit)",
              "The sigmoid folded into the loss, computed without overflow.",
              r"L = \sum \max(o, 0) - o t + \log(1 + e^{-|o|})",
              r"\frac{\partial L}{\partial o} = \sigma(o) - t", "o, t [N, 1]",
              ((losses, "loss_and_grad"),), _bce_example, _loss("bce", "sum", "t"), "log_loss"),
        Block("sum-vs-mean", "Sum vs mean",
              "The mean divides by N, the number of samples, not by N K; the gradient carries "
              "the same 1/N. Frameworks default to the mean.",
              r"L_{\mathrm{mean}} = \frac{1}{N} L_{\mathrm{sum}}",
              r"\frac{\partial L_{\mathrm{mean}}}{\partial o} = "
              r"\frac{1}{N} (\mathrm{softmax}(o) - t)",
              "o [N, K], y [N]", ((losses, "loss_and_grad"),), _class_example,
              _loss("ce", "mean", "y"), "mean_ce"),
        Block("weight-decay", "Weight decay",
              "Added to the loss for weights only (not biases, not PReLU slopes); PyTorch's "
              "SGD(weight_decay=λ) adds λW to the gradient, which is the same step. Keras' L2 "
              "regulariser casts its factor through float32: its float64 rows are about 2e-8 "
              "off.",
              r"L \mathrel{+}= \tfrac{\lambda}{2} \sum W^2",
              r"\frac{\partial L}{\partial W} \mathrel{+}= \lambda W", "W [D_in, D_out]",
              ((params, "weight_decay_loss"),), _decay_example, _weight_decay, "weight_decay"),
        Block("conv-same-stride2", "Convolution, SAME padding, stride 2",
              "TensorFlow's SAME: the odd padding pixel goes to the bottom/right. A 7x6 input "
              "with a 3x3 kernel at stride 2 pads 0 rows on top and 1 at the bottom, "
              "0 columns left and 1 right; PyTorch must pad explicitly.",
              r"z_{n,i,j,f} = b_f + \sum_{p,q,c} x^{\mathrm{pad}}_{n,si+p,sj+q,c}\, W_{p,q,c,f}",
              r"\frac{\partial L}{\partial W_{p,q,c,f}} = \sum_{n,i,j} "
              r"x^{\mathrm{pad}}_{n,si+p,sj+q,c}\, \frac{\partial L}{\partial z_{n,i,j,f}},\; "
              r"\frac{\partial L}{\partial x^{\mathrm{pad}}_{n,si+p,sj+q,c}} \mathrel{+}= "
              r"\sum_f \frac{\partial L}{\partial z_{n,i,j,f}} W_{p,q,c,f}",
              "x [N, H, W, C] (NHWC), W [k, k, C, F] (HWIO), b [F], z [N, Ho, Wo, F]",
              ((conv, "same_padding"), (conv, "conv2d"), (conv, "conv2d_backward")),
              _conv_example(2, "SAME"), _conv, "conv2d"),
        Block("conv-valid", "Convolution, VALID padding, stride 1",
              "No padding: the output shrinks by k - 1.",
              r"z_{n,i,j,f} = b_f + \sum_{p,q,c} x_{n,i+p,j+q,c}\, W_{p,q,c,f}",
              r"\frac{\partial L}{\partial x_{n,i+p,j+q,c}} \mathrel{+}= "
              r"\sum_f \frac{\partial L}{\partial z_{n,i,j,f}} W_{p,q,c,f}",
              "x [N, H, W, C], W [k, k, C, F], z [N, H-k+1, W-k+1, F]",
              ((conv, "im2col"), (conv, "col2im"), (conv, "col2im_add")),
              _conv_example(1, "VALID"), _conv, "conv2d"),
        Block("maxpool", "Max-pool (ties)",
              "2x2 windows at stride 2, SAME, on a 5x5 map of small integers, so many windows "
              "tie: the gradient goes to the first maximum in row-major window order.",
              r"y_{n,i,j,c} = \max_{p,q} x_{n,si+p,sj+q,c}",
              r"\frac{\partial L}{\partial x_{n,si+p^*,sj+q^*,c}} \mathrel{+}= "
              r"\frac{\partial L}{\partial y_{n,i,j,c}},\; (p^*, q^*) = \text{first argmax}",
              "x [N, H, W, C], y [N, ceil(H/s), ceil(W/s), C]",
              ((pool, "maxpool2d_argmax"), (pool, "maxpool2d_backward")), _pool_example, _pool,
              "maxpool2d"),
        Block("avgpool", "Average pool (SAME: the real cells only)",
              "3x3 windows at stride 2, SAME, on a 5x5 map: the border windows reach over the "
              "edge, and the mean is over the cells they cover (Keras' AveragePooling2D, "
              "torch's count_include_pad=False; torch's default counts the padded zeros: a "
              "trap below).",
              r"y_{n,i,j,c} = \frac{1}{d_{ij}} \sum_{p,q} x^{\mathrm{pad}}_{n,si+p,sj+q,c},\;"
              r" d_{ij} = \#\{\text{real cells in the window}\}",
              r"\frac{\partial L}{\partial x^{\mathrm{pad}}_{n,si+p,sj+q,c}} \mathrel{+}= "
              r"\frac{1}{d_{ij}} \frac{\partial L}{\partial y_{n,i,j,c}}",
              "x [N, H, W, C], y [N, ceil(H/s), ceil(W/s), C]",
              ((avgpool_layer, "divisors"), (avgpool_layer, "avgpool2d"),
               (avgpool_layer, "avgpool2d_backward")), _avgpool_example, _avgpool,
              "avgpool2d"),
        Block("global-avgpool", "Global average pool",
              "Each channel's mean over the whole map: a flat [N, C] output a dense layer can "
              "take without a flatten (torch: AdaptiveAvgPool2d(1), then a flatten; Keras: "
              "GlobalAveragePooling2D).",
              r"y_{n,c} = \frac{1}{H W} \sum_{i,j} x_{n,i,j,c}",
              r"\frac{\partial L}{\partial x_{n,i,j,c}} = \frac{1}{H W} "
              r"\frac{\partial L}{\partial y_{n,c}}",
              "x [N, H, W, C], y [N, C]",
              ((global_avgpool_layer.GlobalAvgPool, "forward"),
               (global_avgpool_layer.GlobalAvgPool, "backward")), _global_avgpool_example,
              _global_avgpool, "global_avgpool"),
        Block("flatten", "Flatten (NHWC vs NCHW) into a dense layer",
              "The reference flattens NHWC; PyTorch flattens NCHW, so the rows of the dense "
              "weight must be permuted into NCHW order.",
              r"z = \mathrm{flat}_{\mathrm{NHWC}}(x)\, W + b",
              r"\frac{\partial L}{\partial x} = \mathrm{unflat}\Big(\frac{\partial L}{\partial z}"
              r" W^\top\Big)",
              "x [N, H, W, C], W [H W C, D] (rows in NHWC order)", ((flatten_layer, "Flatten"),),
              _flatten_example, _flatten, "flatten_dense"),
        Block("dropout", "Dropout (inverted, explicit mask)",
              "The mask is an input, so every framework applies the same one; kept units are "
              "scaled by 1/keep_prob in training.",
              r"y = h \odot m / p", r"\frac{\partial L}{\partial h} = "
              r"\frac{\partial L}{\partial y} \odot m / p", "h, m, y [N, D]; p = keep_prob",
              ((dropout, "dropout"), (dropout, "dropout_backward")), _dropout_example,
              _dropout, "dropout"),
        *_layer_blocks(),
        *_optimizer_blocks(),
    ]
