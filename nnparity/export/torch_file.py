"""A :class:`~.graph.Network` as a standalone PyTorch file: ``build()`` returns the model (an
``nn.Sequential`` named by canonical layer names), its optimiser and its loss, the form
``nnparity check --model-file FILE:build`` loads.

torch conventions written into the file: ``nn.Linear.weight`` is ``W.T``; images NCHW, kernels
OIHW; TensorFlow's SAME padding as an explicit ``nn.ZeroPad2d`` (``-inf`` before a pool); the
flatten is NCHW order; weight decay as the optimiser's ``weight_decay`` on weights only.
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

ACTIVATIONS = {"sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()", "relu": "nn.ReLU()",
               "leaky_relu": "nn.LeakyReLU(0.01)",
               "relu3": "ReLU3()", "prelu": "nn.PReLU(dtype=DTYPE)"}
RELU3 = '''

class ReLU3(nn.Module):
    """relu(z) ** 3 (the Fashion-MNIST report's RELU3)."""

    def forward(self, z):
        return torch.relu(z) ** 3
'''

RESIDUAL = '''

class Residual(nn.Module):
    """body(x) + x, or body(x) + skip(x) with a projection (a residual block)."""

    def __init__(self, body, skip=None):
        super().__init__()
        self.body, self.skip = body, skip

    def forward(self, x):
        return self.body(x) + (x if self.skip is None else self.skip(x))
'''


def _pad(pads: tuple[tuple[int, int], tuple[int, int]]) -> str:
    (top, bottom), (left, right) = pads
    return f"({left}, {right}, {top}, {bottom})"


NO_PADS = ((0, 0), (0, 0))


def _symmetric(pads: tuple[tuple[int, int], tuple[int, int]]) -> tuple[int, int] | None:
    """torch's ``padding=(h, w)`` when TensorFlow's pads are symmetric, else None."""
    (top, bottom), (left, right) = pads
    return (top, left) if top == bottom and left == right else None


def _modules(layer: object) -> list[tuple[str, str, str]]:
    """``(name, constructor, comment)`` of the modules of one layer."""
    if isinstance(layer, Dense):
        bias = "" if layer.bias else ", bias=False"
        return [(layer.name, f"nn.Linear({layer.d_in}, {layer.d_out}{bias}, dtype=DTYPE)",
                 f"weight = {layer.weight}.T [{layer.d_out}, {layer.d_in}]")]
    if isinstance(layer, Act):  # identity: no module (the logits are the last Linear's output)
        if layer.approximate:
            return [(layer.name, f"nn.GELU(approximate={python_string(layer.approximate)})",
                     "")]
        return [] if layer.kind == "identity" else [(layer.name, ACTIVATIONS[layer.kind], "")]
    if isinstance(layer, Conv):
        conv = f"nn.Conv2d({layer.c_in}, {layer.c_out}, {layer.k}, stride={layer.stride}" + (
            "" if layer.bias else ", bias=False")
        kernel = (f"weight = {layer.weight} as OIHW [{layer.c_out}, {layer.c_in}, {layer.k}, "
                  f"{layer.k}]")
        padding = _symmetric(layer.pads)
        if layer.pads == NO_PADS:
            return [(layer.name, f"{conv}, dtype=DTYPE)", kernel)]
        if isinstance(layer.padding, int):  # torch's own padding=p: p zeros on every side
            return [(layer.name, f"{conv}, padding={layer.padding}, dtype=DTYPE)", kernel)]
        if layer.stride == 1:  # torch's "same" puts the odd pixel bottom/right, as TensorFlow
            return [(layer.name, f'{conv}, padding="same", dtype=DTYPE)', kernel)]
        if padding:
            return [(layer.name, f"{conv}, padding={padding}, dtype=DTYPE)",
                     f"{kernel}; TensorFlow's SAME is symmetric here")]
        return [(f"pad_{layer.name}", f"nn.ZeroPad2d({_pad(layer.pads)})",
                 f"{layer.padding} as TensorFlow pads it: (left, right, top, bottom)"),
                (layer.name, f"{conv}, dtype=DTYPE)", kernel)]
    if isinstance(layer, Pool) and layer.mode == "avg":
        return _avgpool(layer)
    if isinstance(layer, Norm):
        return [(layer.name, f"nn.LayerNorm({layer.d}, eps={layer.epsilon!r}, dtype=DTYPE)",
                 "weight = gamma, bias = beta; eps: torch's default 1e-5, Keras' 1e-3")]
    if isinstance(layer, BatchNorm):
        module = "nn.BatchNorm2d" if layer.spatial else "nn.BatchNorm1d"
        return [(layer.name, f"{module}({layer.c}, eps={layer.epsilon!r}, "
                 f"momentum={1 - layer.momentum!r}, dtype=DTYPE)",
                 f"weight = {layer.gamma}, bias = {layer.beta}, buffers running_mean/var; "
                 f"momentum: the new batch's weight, 1 - {layer.momentum!r}")]
    if isinstance(layer, GlobalPool):
        return [(layer.name, "nn.AdaptiveAvgPool2d(1)", f"[N, {layer.c}, 1, 1]"),
                (f"{layer.name}_flatten", "nn.Flatten()", f"[N, {layer.c}]")]
    if isinstance(layer, Pool):
        pool = f"nn.MaxPool2d({layer.k}, {layer.stride}"
        padding = _symmetric(layer.pads)
        if layer.pads == NO_PADS:
            return [(layer.name, f"{pool})", "")]
        if padding:
            return [(layer.name, f"{pool}, padding={padding})",
                     f"{layer.padding}: symmetric here; torch pads a max-pool with -inf")]
        return [(f"pad_{layer.name}", f"nn.ConstantPad2d({_pad(layer.pads)}, -math.inf)",
                 f"{layer.padding} as TensorFlow pads it; a padded cell never wins"),
                (layer.name, f"{pool})", "")]
    if isinstance(layer, Flatten):
        return [("flatten", "nn.Flatten()",
                 f"NCHW order: the next weight's rows are the NHWC rows permuted "
                 f"({layer.h}x{layer.w}x{layer.c})")]
    if isinstance(layer, Dropout):
        return [(layer.name, f"nn.Dropout({1 - layer.keep_prob!r})",
                 "inverted; torch draws the mask")]
    if isinstance(layer, Residual):
        skip = "None" if layer.skip is None else _modules(layer.skip)[0][1]
        body = "\n".join(_sequential(layer.body, "            "))
        return [(layer.name, f"Residual(nn.Sequential(OrderedDict([\n{body}\n        ])), "
                 f"skip={skip})", "the body's output plus the input (or its projection)")]
    raise TypeError(f"no torch module for {layer!r}")


def _sequential(layers: tuple[object, ...], indent: str) -> list[str]:
    """The ``(name, module),`` lines (with their comments) of an ``nn.Sequential``."""
    lines = []
    for name, ctor, comment in (m for layer in layers for m in _modules(layer)):
        if comment:
            lines.append(f"{indent}# {python_comment(comment)}")
        lines.append(f"{indent}({python_string(name)}, {ctor}),")
    return lines
def _avgpool(layer: Pool) -> list[tuple[str, str, str]]:
    """An average pool: torch's own padding when TensorFlow's SAME pads symmetrically (which
    cells the mean counts: ``count_include_pad``, True by torch's default), else an explicit
    zero pad, the real cells counted by :data:`REAL_CELLS`' module."""
    pool = f"nn.AvgPool2d({layer.k}, {layer.stride}"
    padding = _symmetric(layer.pads)
    if layer.pads == NO_PADS:
        return [(layer.name, f"{pool})", "")]
    if padding:
        return [(layer.name, f"{pool}, padding={padding}, "
                 f"count_include_pad={layer.count_include_pad})",
                 "SAME, symmetric here; count_include_pad=False: the mean of the real cells "
                 "(Keras' SAME), True: of the whole window (torch's default)")]
    if layer.count_include_pad:
        return [(f"pad_{layer.name}", f"nn.ZeroPad2d({_pad(layer.pads)})",
                 f"{layer.padding} as TensorFlow pads it; the padded zeros counted"),
                (layer.name, f"{pool})", "")]
    return [(layer.name, f"RealCellsAvgPool({layer.k}, {layer.stride}, {_pad(layer.pads)})",
             f"{layer.padding} as TensorFlow pads it (left, right, top, bottom); the mean of "
             "the real cells, as Keras")]


REAL_CELLS = '''

class RealCellsAvgPool(nn.Module):
    """TensorFlow's SAME average pool where it pads asymmetrically: the window sums of the
    zero-padded map over each window's count of real cells."""

    def __init__(self, size, stride, pads):
        super().__init__()
        self.pad, self.pool = nn.ZeroPad2d(pads), nn.AvgPool2d(size, stride)

    def forward(self, x):
        ones = torch.ones_like(x[:1, :1])
        return self.pool(self.pad(x)) / self.pool(self.pad(ones))
'''


LOSSES = {
    "ce": "nn.CrossEntropyLoss(reduction={reduction!r})",
    "bce": "nn.BCEWithLogitsLoss(reduction={reduction!r})",
    "l2": "HalfSquaredError(reduction={reduction!r})",
}
HALF_SQUARED = '''

class HalfSquaredError(nn.Module):
    """0.5 * sum((o - t) ** 2), summed or averaged over the N samples (not the N * K entries)."""

    def __init__(self, reduction="sum"):
        super().__init__()
        self.reduction = reduction

    def forward(self, o, t):
        total = 0.5 * ((o - t) ** 2).sum()
        return total / o.shape[0] if self.reduction == "mean" else total
'''
PLAIN_GROUPS = "    groups = net.parameters()\n"
# Weights only: torch's weight_decay on every parameter would decay biases too.
DECAY_GROUPS = (
    "    decayed = [m.weight for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]\n"
    "    others = [p for p in net.parameters() if all(p is not q for q in decayed)]\n"
    "    # weight_decay adds lambda * W to W's gradient: the derivative of the penalty;\n"
    "    # weights only (nnparity check --model-file reads one group and refuses two)\n"
    "    groups = [{\"params\": decayed, \"weight_decay\": WEIGHT_DECAY},\n"
    "              {\"params\": others}]\n")
OPTIMIZERS = {
    "sgd": "torch.optim.SGD(groups, lr={lr!r})",
    "momentum": "torch.optim.SGD(groups, lr={lr!r}, momentum={momentum!r})",
    "adam": "torch.optim.Adam(groups, lr={lr!r}, betas=({beta1!r}, {beta2!r}), eps={eps!r})",
}


def write(net: Network) -> str:
    """The file's source (``ValueError`` for a batchnorm with the biased running variance,
    which torch does not keep)."""
    refuse_variance(net, "torch", "unbiased")
    lines = _sequential(net.layers, "        ")
    placed = each_layer(net.layers)
    kinds = {layer.kind for layer in placed if isinstance(layer, Act)}
    opt = net.optimizer
    needs_math = any(isinstance(layer, Pool) and layer.mode == "max" and layer.pads != NO_PADS
                     and not _symmetric(layer.pads) for layer in placed)
    layout = "NCHW images" if len(net.input_shape) == 3 else "[N, features]"
    parts = [
        header(net, "PyTorch", "torch", layout)
        + "\n" + ("import math\n" if needs_math else "")
        + "from collections import OrderedDict\n\nimport torch\nfrom torch import nn\n\n"
        + f"DTYPE = torch.{net.dtype}\n"
        + f"WEIGHT_DECAY = {net.weight_decay!r}  # lambda: 0.5 * lambda * sum(W ** 2), weights",
        RELU3.strip() if "relu3" in kinds else "",
        RESIDUAL.strip() if any(isinstance(layer, Residual) for layer in net.layers) else "",
        REAL_CELLS.strip() if any(
            "RealCellsAvgPool" in ctor for layer in placed if isinstance(layer, Pool)
            for _, ctor, _ in _modules(layer)) else "",
        custom_layers({"ReLU3": "relu3"} if "relu3" in kinds else {}),
        HALF_SQUARED.strip() if net.loss == "l2" else "",
        "def model():\n"
        '    """The network, layer by layer (names as the reference\'s)."""\n'
        "    return nn.Sequential(OrderedDict([\n" + "\n".join(lines) + "\n    ]))",
        "def build():\n"
        '    """Model, optimiser and loss, as `nnparity check --model-file FILE:build` loads."""\n'
        "    net = model()\n" + (DECAY_GROUPS if net.weight_decay else PLAIN_GROUPS)
        + f"    optimizer = {OPTIMIZERS[opt.name].format(**opt.to_dict())}\n"
        f"    loss = {LOSSES[net.loss].format(reduction=net.reduction)}\n"
        "    return {\"model\": net, \"optimizer\": optimizer, \"loss\": loss"
        f"{build_extras(net)}}}",
        "if __name__ == \"__main__\":\n"
        "    parts = build()\n"
        "    torch.manual_seed(0)\n"
        f"    x = torch.randn(4, {', '.join(map(str, _torch_shape(net.input_shape)))}, "
        "dtype=DTYPE)\n"
        f"    y = {_demo_labels(net)}\n"
        "    loss = parts[\"loss\"](parts[\"model\"](x), y)\n"
        "    loss.backward()\n"
        "    parts[\"optimizer\"].step()\n"
        "    print(f\"loss {loss.item():.6f}; one step taken\")",
    ]
    return "\n\n\n".join(part for part in parts if part) + "\n"


def _torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape


def _demo_labels(net: Network) -> str:
    if net.loss == "ce":
        return f"torch.randint(0, {net.outputs}, (4,))"
    return f"torch.rand(4, {net.outputs}, dtype=DTYPE)"
