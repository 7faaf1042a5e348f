"""A :class:`~.graph.Network` as a standalone Keras file: ``build()`` returns the model (a
``keras.Sequential`` whose layers carry the reference's layer names), its optimiser and its loss,
the form ``nnparity check --model-file FILE:build`` loads. A network with residual blocks is a
functional ``keras.Model`` instead: each block ``keras.layers.Add()([body(h), h])`` (or of the
projection ``Dense``/1x1 ``Conv2D`` of ``h``), the Keras idiom.

Keras' layout is the canonical one (NHWC, HWIO, ``kernel = W``) and its SAME padding is
TensorFlow's, so nothing is permuted or padded by hand. Weight decay is a ``kernel_regularizer``
written as a function: ``keras.regularizers.L2`` casts its factor through float32.
"""

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
    each_layer,
    refuse_variance,
)
from .text import build_extras, custom_layers, header

ACTIVATIONS = {"sigmoid": '"sigmoid"', "tanh": '"tanh"', "relu": '"relu"', "relu3": "relu3",
               "leaky_relu": "leaky_relu"}
FUNCTIONS = {
    "relu3": '''def relu3(z):
    """relu(z) ** 3 (the Fashion-MNIST report's RELU3)."""
    return keras.ops.relu(z) ** 3''',
    "leaky_relu": '''def leaky_relu(z):
    """z if z > 0 else 0.01 z (LeakyReLU's op keeps its slope in float32)."""
    return keras.ops.where(z > 0, z, 0.01 * z)''',
    "gelu_none": '''def gelu_none(z):
    """The exact GELU, 0.5 z (1 + erf(z / sqrt 2)) (keras.activations.gelu casts its
    constants through float32)."""
    return 0.5 * z * (1.0 + keras.ops.erf(z * 0.7071067811865476))''',
    "gelu_tanh": '''def gelu_tanh(z):
    """GELU's tanh form, 0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3))), constants in
    float64 (keras.activations.gelu casts them through float32)."""
    return 0.5 * z * (1.0 + keras.ops.tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)))''',
}
PENALTY = '''def penalty(W):
    """0.5 * lambda * sum(W ** 2): the weight decay of one kernel."""
    return 0.5 * WEIGHT_DECAY * keras.ops.sum(W * W)'''
LOSSES = {
    "ce": "keras.losses.SparseCategoricalCrossentropy(\n        from_logits=True, "
          "reduction={reduction}, dtype=DTYPE)",
    "bce": "keras.losses.BinaryCrossentropy(\n        from_logits=True, "
           "reduction={reduction}, dtype=DTYPE)",
    "l2": "half_squared_error",
}
REDUCTIONS = {"sum": '"sum"', "mean": '"sum_over_batch_size"'}
HALF_SQUARED = '''def half_squared_error(t, o):
    """0.5 * sum((o - t) ** 2), {what} over the N samples (not the N * K entries)."""
    return 0.5 * keras.ops.sum((o - t) ** 2){scale}'''
OPTIMIZERS = {
    "sgd": "keras.optimizers.SGD({lr!r})",
    "momentum": "keras.optimizers.SGD({lr!r}, momentum={momentum!r})",
    "adam": "keras.optimizers.Adam({lr!r}, beta_1={beta1!r}, beta_2={beta2!r}, "
            "epsilon={eps!r})",
}


def _layers(layer: object, decay: str) -> list[str]:
    """The lines (comments and Keras layers) of one layer."""
    if isinstance(layer, Dense):
        bias = "" if layer.bias else ", use_bias=False"
        return [f"# kernel = {python_comment(layer.weight)} [{layer.d_in}, {layer.d_out}]",
                f'keras.layers.Dense({layer.d_out}{bias}{decay}, dtype=DTYPE, '
                f'name={python_string(layer.name)}),']
    if isinstance(layer, Act):
        if layer.kind == "identity":  # no layer: the logits are the last Dense's output
            return []
        if layer.kind == "prelu":
            return ["# one shared slope, 0.25 at start; Keras' derivative at z = 0 is 0, not a",
                    "keras.layers.PReLU(keras.initializers.Constant(0.25), shared_axes=[1],",
                    f'                   dtype=DTYPE, name={python_string(layer.name)}),']
        if layer.approximate:  # the form named: Keras' own gelu is exact unless approximate
            return [f"keras.layers.Activation(gelu_{layer.approximate}, dtype=DTYPE, "
                    f"name={python_string(layer.name)}),"]
        return [f'keras.layers.Activation({ACTIVATIONS[layer.kind]}, dtype=DTYPE, '
                f'name={python_string(layer.name)}),']
    if isinstance(layer, Conv):
        explicit = isinstance(layer.padding, int)
        padded = [f"keras.layers.ZeroPadding2D({layer.padding}, dtype=DTYPE),"] if explicit \
            else []
        return [f"# kernel = {python_comment(layer.weight)} (HWIO); "
                + (f"{layer.padding} zeros on every side (torch's padding={layer.padding})"
                   if explicit else f"{python_comment(layer.padding)} as TensorFlow pads it"),
                *padded,
                f'keras.layers.Conv2D({layer.c_out}, {layer.k}, strides={layer.stride}, '
                f'padding={python_string("valid" if explicit else layer.padding.lower())}'
                f'{decay}' + ("," if layer.bias else ", use_bias=False,"),
                f'                    dtype=DTYPE, name={python_string(layer.name)}),']
    if isinstance(layer, Pool) and layer.mode == "avg" and layer.count_include_pad:
        return ["# torch's count_include_pad=True: the padded zeros counted in the mean",
                f"keras.layers.ZeroPadding2D({layer.pads}, dtype=DTYPE),",
                f'keras.layers.AveragePooling2D({layer.k}, {layer.stride}, padding="valid", '
                f"dtype=DTYPE, name={python_string(layer.name)}),"]
    if isinstance(layer, Pool) and layer.mode == "avg":  # SAME: the mean of the real cells
        return [f'keras.layers.AveragePooling2D({layer.k}, {layer.stride}, '
                f"padding={python_string(layer.padding.lower())}, dtype=DTYPE, "
                f"name={python_string(layer.name)}),"]
    if isinstance(layer, Norm):
        return [f"# gamma = {python_comment(layer.weight)}, beta = {python_comment(layer.bias)};"
                " epsilon: Keras' default 1e-3, torch's 1e-5",
                f"keras.layers.LayerNormalization(epsilon={layer.epsilon!r}, dtype=DTYPE, "
                f"name={python_string(layer.name)}),"]
    if isinstance(layer, BatchNorm):
        return [f"# gamma = {python_comment(layer.gamma)}, beta = {python_comment(layer.beta)}, "
                f"moving_mean/variance = {python_comment(layer.mean)}/"
                f"{python_comment(layer.var)}; model(x, training=True) normalises with the "
                "batch and updates them",
                f"keras.layers.BatchNormalization(momentum={layer.momentum!r}, "
                f"epsilon={layer.epsilon!r}, dtype=DTYPE, name={python_string(layer.name)}),"]
    if isinstance(layer, GlobalPool):
        return [f"keras.layers.GlobalAveragePooling2D(dtype=DTYPE, "
                f"name={python_string(layer.name)}),"]
    if isinstance(layer, Pool):
        return [f'keras.layers.MaxPool2D({layer.k}, {layer.stride}, '
                f"padding={python_string(layer.padding.lower())}, dtype=DTYPE, "
                f"name={python_string(layer.name)}),"]
    if isinstance(layer, Flatten):
        return ['keras.layers.Flatten(dtype=DTYPE, name="flatten"),  # NHWC, as the reference']
    if isinstance(layer, Dropout):
        return [f'keras.layers.Dropout({1 - layer.keep_prob!r}, dtype=DTYPE, '
                f'name={python_string(layer.name)}),  # Keras draws the mask']
    raise TypeError(f"no Keras layer for {layer!r}")


def _calls(layers: tuple[object, ...], decay: str, h: str = "h") -> list[str]:
    """The functional form of ``layers``: ``h = Layer(...)(h)`` lines (with their comments)."""
    lines: list[str] = []
    for layer in layers:
        if isinstance(layer, Residual):
            keep = f"x_{layer.name}"
            lines += [f"{keep} = {h}  # {python_comment(layer.name)}: the block's input",
                      *_calls(layer.body, decay, h)]
            if layer.skip is not None:  # the projection, after the body: x_res = P(x_res)
                lines += _calls((layer.skip,), decay, keep)
            lines.append(f"{h} = keras.layers.Add(dtype=DTYPE, name="
                         f"{python_string(layer.name + '_add')})([{h}, {keep}])")
            continue
        text = _layers(layer, decay)
        lines += [line for line in text if line.startswith("#")]
        for code in _expressions([line for line in text if not line.startswith("#")]):
            end = code.rfind("),")
            lines.append(f"{h} = {code[:end]})({h}){code[end + 2:]}")
    return lines


def _expressions(code: list[str]) -> list[str]:
    """The layer expressions of :func:`_layers`' code lines: each ends with a line ending in
    ``),`` (a trailing comment allowed)."""
    found, current = [], []
    for line in code:
        current.append(line)
        if line.split("  #")[0].rstrip().endswith("),"):
            found.append("\n".join(current))
            current = []
    return found


def _model(net: Network, decay: str, shape: str) -> str:
    """``model()``: a ``keras.Sequential``, or a functional model when the net has blocks."""
    head = ("def model():\n"
            '    """The network, layer by layer (names as the reference\'s)."""\n')
    if not any(isinstance(layer, Residual) for layer in net.layers):
        entries = [f"        {line}" for layer in net.layers for line in _layers(layer, decay)]
        return (head + "    return keras.Sequential([\n"
                f"        keras.Input(shape=({shape}), dtype=DTYPE),\n" + "\n".join(entries)
                + "\n    ])")
    body = "\n".join(f"    {line}" for line in _calls(net.layers, decay))
    return (head + f"    x = keras.Input(shape=({shape}), dtype=DTYPE)\n    h = x\n" + body
            + "\n    return keras.Model(x, h)")


def write(net: Network) -> str:
    """The file's source (``ValueError`` for a batchnorm with the unbiased running variance,
    which Keras does not keep)."""
    refuse_variance(net, "Keras", "biased")
    decay = ", kernel_regularizer=penalty" if net.weight_decay else ""
    kinds = {f"gelu_{layer.approximate}" if layer.approximate else layer.kind
             for layer in each_layer(net.layers) if isinstance(layer, Act)}
    opt = net.optimizer
    shape = ", ".join(map(str, net.input_shape)) + ("," if len(net.input_shape) == 1 else "")
    loss = LOSSES[net.loss].format(reduction=REDUCTIONS[net.reduction])
    parts = [
        header(net, "Keras", "keras", "the same")
        + "\nimport keras\n\n"
        + f"DTYPE = {python_string(net.dtype)}  "
        "# every layer and the loss; hyperparameters stay float32\n"
        + f"WEIGHT_DECAY = {net.weight_decay!r}  # lambda: 0.5 * lambda * sum(W ** 2), weights",
        *(FUNCTIONS[k] for k in sorted(kinds & set(FUNCTIONS))),
        custom_layers({k: k for k in kinds & set(FUNCTIONS)}),
        PENALTY if net.weight_decay else "",
        HALF_SQUARED.format(what="summed" if net.reduction == "sum" else "averaged",
                            scale="" if net.reduction == "sum" else " / keras.ops.shape(o)[0]")
        if net.loss == "l2" else "",
        _model(net, decay, shape),
        "def build():\n"
        '    """Model, optimiser and loss, as `nnparity check --model-file FILE:build` loads."""\n'
        f"    optimizer = {OPTIMIZERS[opt.name].format(**opt.to_dict())}\n"
        f"    loss = {loss}\n"
        "    return {\"model\": model(), \"optimizer\": optimizer, \"loss\": loss"
        f"{build_extras(net)}}}",
        "if __name__ == \"__main__\":\n"
        "    import numpy as np\n\n"
        "    keras.config.set_floatx(DTYPE)  # fit's loss bookkeeping in DTYPE too\n"
        "    parts = build()\n"
        "    rng = np.random.default_rng(0)\n"
        f"    x = rng.standard_normal((4, {shape.rstrip(',')})).astype(DTYPE)\n"
        f"    y = {_demo_labels(net)}\n"
        "    parts[\"model\"].compile(optimizer=parts[\"optimizer\"], loss=parts[\"loss\"])\n"
        "    loss = parts[\"model\"].train_on_batch(x, y)\n"
        "    print(f\"loss {float(loss):.6f}; one step taken\")",
    ]
    return "\n\n\n".join(part for part in parts if part) + "\n"


def _demo_labels(net: Network) -> str:
    if net.loss == "ce":
        return f"rng.integers(0, {net.outputs}, 4)"
    return f"rng.random((4, {net.outputs})).astype(DTYPE)"
