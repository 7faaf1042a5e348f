"""A :class:`~.graph.Network` as a standalone JAX file: ``forward``, ``loss``, ``gradients``
(``jax.value_and_grad``), ``init_state`` and ``step``, over a dict of parameters in the
canonical layout (JAX's own: NHWC, HWIO, ``W [D_in, D_out]``), and a ``__main__`` demo."""

from __future__ import annotations

from nnparity.files.escape import python_comment, python_string

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
    padding_literal,
)
from .steps import TRAIN_STEP, demo_step, hyperparameters, step_source, trainable_constant
from .text import header, shapes_constant

ACTIVATIONS = {"sigmoid": "jax.nn.sigmoid(h)", "tanh": "jnp.tanh(h)", "relu": "jax.nn.relu(h)",
               "identity": "", "relu3": "jax.nn.relu(h) ** 3",
               "leaky_relu": "jnp.where(h > 0, h, 0.01 * h)"}
LOSSES = {
    "ce": "-jnp.take_along_axis(jax.nn.log_softmax(o), y[:, None], axis=1)[:, 0]",
    "l2": "0.5 * jnp.sum((o - y) ** 2, axis=1)",
    "bce": "jnp.sum(jnp.maximum(o, 0) - o * y + jnp.log1p(jnp.exp(-jnp.abs(o))), axis=1)",
}


def _lines(layer: object) -> list[str]:
    if isinstance(layer, Dense):
        bias = f' + params[{python_string(layer.bias)}]' if layer.bias else ""
        return [f"h = h @ params[{python_string(layer.weight)}]{bias}  "
                f"# {python_comment(layer.name)}: "
                f"[N, {layer.d_in}] -> [N, {layer.d_out}]"]
    if isinstance(layer, Act):
        if layer.slope:
            return [f'h = jnp.where(h > 0, h, params[{python_string(layer.slope)}] * h)  # PReLU']
        if layer.approximate:  # jax.nn.gelu's default is the tanh form
            return [f"h = jax.nn.gelu(h, approximate={layer.approximate == 'tanh'})"]
        return [f"h = {ACTIVATIONS[layer.kind]}"] if ACTIVATIONS[layer.kind] else []
    if isinstance(layer, Conv):
        return [f'h = jax.lax.conv_general_dilated(h, params[{python_string(layer.weight)}], '
                f'({layer.stride}, {layer.stride}), {padding_literal(layer.padding, pairs=True)},',
                '                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))'
                + (f' + params[{python_string(layer.bias)}]' if layer.bias else "")]
    if isinstance(layer, Pool) and layer.mode == "avg":
        sums = (f"jax.lax.reduce_window({{}}, 0.0, jax.lax.add, (1, {layer.k}, {layer.k}, 1), "
                f"(1, {layer.stride}, {layer.stride}, 1), {python_string(layer.padding)})")
        if layer.pads == ((0, 0), (0, 0)) or layer.count_include_pad:
            return [f"h = {sums.format('h')} / {layer.k * layer.k}  # every cell of the window"]
        return [f"h = {sums.format('h')} / \\",
                f"    {sums.format('jnp.ones_like(h[:1, :, :, :1])')}  # the real cells only"]
    if isinstance(layer, Norm):
        return ["mean, var = jnp.mean(h, -1, keepdims=True), jnp.var(h, -1, keepdims=True)",
                f"h = (h - mean) * jax.lax.rsqrt(var + {layer.epsilon!r}) * "
                f"params[{python_string(layer.weight)}] + params[{python_string(layer.bias)}]"]
    if isinstance(layer, BatchNorm):
        return _batchnorm(layer)
    if isinstance(layer, GlobalPool):
        return [f"h = jnp.mean(h, axis=(1, 2))  # {python_comment(layer.name)}: [N, {layer.c}]"]
    if isinstance(layer, Pool):
        return [f"h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, {layer.k}, {layer.k}, "
                f'1), (1, {layer.stride}, {layer.stride}, 1), {python_string(layer.padding)})']
    if isinstance(layer, Flatten):
        return [f"h = h.reshape(h.shape[0], -1)  # NHWC order: [N, {layer.h * layer.w * layer.c}]"]
    if isinstance(layer, Dropout):
        return ["if mask is not None:  # inverted dropout with an explicit 0/1 mask",
                f"    h = h * mask[:, {layer.columns[0]}:{layer.columns[1]}] / "
                f"{layer.keep_prob!r}"]
    if isinstance(layer, Residual):  # body(h) + h, or + the projection of h
        keep = f"x_{layer.name}"
        lines = [f"{keep} = h  # {python_comment(layer.name)}: the block's input",
                 *(line for inner in layer.body for line in _lines(inner))]
        if layer.skip is None:
            return [*lines, f"h = h + {keep}"]
        return [*lines, f"body, h = h, {keep}", *_lines(layer.skip), "h = body + h"]
    raise TypeError(f"no JAX code for {layer!r}")


def _batchnorm(layer: BatchNorm) -> list[str]:
    """Training: the batch's mean and biased variance, the new running statistics into
    ``running`` (out of the gradient); evaluation: the running statistics."""
    axes = "(0, 1, 2)" if layer.spatial else "0"
    mean, var = python_string(layer.mean), python_string(layer.var)
    keep = layer.momentum
    batch_var = "var * (m / (m - 1))" if layer.variance == "unbiased" else "var"
    return [f"if training:  # {python_comment(layer.name)}: the batch's statistics",
            f"    mu, var = jnp.mean(h, {axes}), jnp.var(h, {axes})",
            "    m = h.size // h.shape[-1]  # values per feature",
            f"    running[{mean}] = jax.lax.stop_gradient({keep!r} * params[{mean}] + "
            f"{1 - keep!r} * mu)",
            f"    running[{var}] = jax.lax.stop_gradient({keep!r} * params[{var}] + "
            f"{1 - keep!r} * {batch_var})  # {layer.variance}",
            "else:  # evaluation: the running statistics",
            f"    mu, var = params[{mean}], params[{var}]",
            f"h = (h - mu) * jax.lax.rsqrt(var + {layer.epsilon!r}) * "
            f"params[{python_string(layer.gamma)}] + params[{python_string(layer.beta)}]"]


def _passes(net: Network, body: str, shape: str) -> list[str]:
    """``forward``, ``loss`` and ``gradients``; with running statistics (batch normalisation)
    forward takes ``training`` (default: when a mask is given, as the reference) and returns
    them too, ``loss`` returns them as its auxiliary output and ``gradients`` returns
    ``(loss, grads of TRAINABLE, running)``."""
    reduce = "sum()" if net.reduction == "sum" else "mean()"
    data = (f"    data = ({LOSSES[net.loss]}).{reduce}\n"
            "    return data + 0.5 * WEIGHT_DECAY * sum(jnp.sum(params[k] ** 2) for k in WEIGHTS)")
    if not net.state:
        return [
            "def forward(params, x, mask=None):\n"
            f'    """The output (logits) [N, {net.outputs}] of x [N, {shape}]; mask: dropout."""\n'
            "    h = x\n" + body + "\n    return h",
            "def loss(params, x, y, mask=None):\n"
            f'    """{net.loss} ({net.reduction} over the N samples) plus weight decay."""\n'
            "    o = forward(params, x, mask)\n" + data,
            "@jax.jit\n"
            "def gradients(params, x, y, mask=None):\n"
            '    """(loss, dL/dparams) by reverse-mode autodiff, compiled by XLA."""\n'
            "    return jax.value_and_grad(loss)(params, x, y, mask)"]
    data = data.replace("    return data + ", "    return (data + ").replace(
        " for k in WEIGHTS)", " for k in WEIGHTS)), running")
    return [
        "def forward(params, x, mask=None, training=None):\n"
        f'    """(output [N, {net.outputs}] of x [N, {shape}], the running statistics a training '
        'pass\n    leaves); training: batch statistics (default: when a dropout mask is '
        'given)."""\n'
        "    training = mask is not None if training is None else training\n"
        "    running = {}\n    h = x\n" + body + "\n    return h, running",
        "def loss(params, x, y, mask=None):\n"
        f'    """({net.loss} ({net.reduction} over the N samples) plus weight decay, the running\n'
        '    statistics) of a training pass."""\n'
        "    o, running = forward(params, x, mask, training=True)\n" + data,
        "@jax.jit\n"
        "def gradients(params, x, y, mask=None):\n"
        '    """(loss, dL/dparams of TRAINABLE, running statistics) by reverse-mode autodiff, '
        'compiled\n    by XLA."""\n'
        "    (value, running), grads = jax.value_and_grad(loss, has_aux=True)(params, x, y, mask)\n"
        "    return value, {k: grads[k] for k in TRAINABLE}, running"]


def write(net: Network) -> str:
    """The file's source."""
    body = "\n".join(f"    {line}" for layer in net.layers for line in _lines(layer))
    weights = ", ".join(python_string(w) for w in net.weights)
    shape = ", ".join(map(str, net.input_shape))
    labels = (f"jax.random.randint(ky, (4,), 0, {net.outputs})" if net.loss == "ce"
              else f"jax.random.uniform(ky, (4, {net.outputs}), DTYPE)")
    parts = [
        header(net, "JAX", "jax", "the same")
        + ("\nimport math\n" if net.optimizer.name == "adam" else "")
        + "\nimport jax\nimport jax.numpy as jnp\n\n"
        + 'jax.config.update("jax_enable_x64", True)\n\n'
        + f"DTYPE = jnp.{net.dtype}\n" + shapes_constant(net)
        + (trainable_constant(net.trainable) + "  # SHAPES less the running statistics\n"
           if net.state else "")
        + f"WEIGHT_DECAY = {net.weight_decay!r}  # 0.5 * lambda * sum(W ** 2) over WEIGHTS\n"
        + f"WEIGHTS = ({weights},)\n" + hyperparameters(net.optimizer),
        *_passes(net, body, shape),
        step_source(net.optimizer, "jnp"),
        TRAIN_STEP if net.state else "",
        "if __name__ == \"__main__\":\n"
        "    kx, ky, *kp = jax.random.split(jax.random.PRNGKey(0), 2 + len(SHAPES))\n"
        "    params = {k: 0.1 * jax.random.normal(key, s, DTYPE)\n"
        "              for key, (k, s) in zip(kp, SHAPES.items(), strict=True)}\n"
        f"    x = jax.random.normal(kx, (4, {shape}), DTYPE)\n"
        f"    y = {labels}\n"
        + demo_step(bool(net.state), "jnp")
        + "    print(f\"loss {float(value):.6f}; one step taken\")",
    ]
    return "\n\n\n".join(part for part in parts if part) + "\n"
