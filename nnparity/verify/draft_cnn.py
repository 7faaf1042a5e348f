"""``--init`` for a NumPy CNN: a draft declaration from 4-D kernels and the dense weights after
them (:func:`nnparity.verify.draft.build` hands a description here when it holds a 4-D array
named like a weight).

Kernels are read as HWIO ``[kh, kw, C_in, C_out]`` or OIHW ``[C_out, C_in, kh, kw]``: the
reading whose windows are square and whose channels chain from kernel to kernel (and match the
module's ``x``) wins; when both fit, the comment says so. The maps' layout is where ``x`` holds
those channels (NHWC: last, NCHW: second), else the kernel's framework's (OIHW: NCHW). The layer
list is the first of a few usual small CNNs (every conv SAME or VALID, each followed by relu,
a 2x2 max-pool after the last conv or after each, or none, then the dense layers) whose
parameter shapes (:class:`reference.netspec.NetSpec`) are the arrays found, preferring the one
whose maps' shapes the forward pass left on the model. What cannot be guessed becomes a comment
naming the key to fill in.
"""

from __future__ import annotations

import re
from itertools import pairwise, product
from typing import Any

from nnparity.files.escape import python_comment
from nnparity.reference.netspec import NetSpec

from .draft import (
    ACTIVATIONS,
    BIAS,
    CE_WORDS,
    WEIGHT,
    _arrays_and_passes,
    _biases,
    _entry,
    _shapes,
)

LIST_WEIGHT = re.compile(r"(?i)(^|[^a-z])(w|weights?|kernels?)\[\d+\]$")  # model.W[0]
LIST_BIAS = re.compile(r"(?i)(^|[^a-z])(b|bias(es)?)\[\d+\]$")
X_NAMES = ("x", "X", "inputs", "images", "data")
POOL = {"kind": "maxpool", "size": 2}
Shape = tuple[int, ...]


def _named(arrays: list[dict[str, Any]], patterns: tuple[re.Pattern[str], ...],
           ndims: tuple[int, ...]) -> list[dict[str, Any]]:
    """The arrays of ``ndims`` dimensions named like ``patterns``, in layer order (the last
    number in the name, a list index counting from 0)."""
    found = [a for a in arrays if len(a["shape"]) in ndims
             and any(p.search(a["expr"]) for p in patterns)]

    def order(a: dict[str, Any]) -> tuple[int, str]:
        digits = re.findall(r"\d+", a["expr"])
        return (int(digits[-1]) if digits else 0, a["expr"])
    return sorted(found, key=order)


def has_kernels(arrays: list[dict[str, Any]]) -> bool:
    """True when some 4-D array is named like a weight."""
    return bool(_named(arrays, (WEIGHT, LIST_WEIGHT), (4,)))


def _kernel_layouts(kernels: list[Shape], channels: set[int]) -> list[str]:
    """The readings (``HWIO``, ``OIHW``) under which every kernel has a square window, the
    channels chain, and the first kernel's input channels are among ``channels`` (when
    known)."""
    fits = []
    for layout, window, c_in, c_out in (("HWIO", (0, 1), 2, 3), ("OIHW", (2, 3), 1, 0)):
        if all(k[window[0]] == k[window[1]] for k in kernels) and \
                all(a[c_out] == b[c_in] for a, b in pairwise(kernels)) and \
                (not channels or kernels[0][c_in] in channels):
            fits.append(layout)
    return fits


def _hwio(kernel: Shape, layout: str) -> Shape:
    return kernel if layout == "HWIO" else (kernel[2], kernel[3], kernel[1], kernel[0])


def _candidates(kernels: list[Shape], denses: list[Shape], size: tuple[int, int] | None,
                channels: int, activation: str, loss: str) -> list[dict]:
    """Every usual layer list whose parameter shapes are ``kernels`` (HWIO) and ``denses``, in
    order of preference; the input ``size`` (H, W), or square sizes up to 64 when unknown."""
    sizes = [size] if size else [(s, s) for s in range(1, 65)]
    found = []
    for padding, pool, pool_padding, (height, width) in product(
            ("same", "valid"), ("after the last conv", "after each conv", "none"),
            ("valid", "same"), sizes):
        if pool == "none" and pool_padding == "same":
            continue
        net: list[dict] = []
        for i, kernel in enumerate(kernels):
            net += [{"kind": "conv2d", "filters": kernel[3], "kernel": kernel[0],
                     "padding": padding}, {"kind": activation}]
            if pool == "after each conv" or (pool == "after the last conv"
                                              and i == len(kernels) - 1):
                net.append({**POOL, "padding": pool_padding})
        net.append({"kind": "flatten"})
        for i, dense in enumerate(denses):
            net.append({"kind": "dense", "units": dense[1]})
            if i < len(denses) - 1:
                net.append({"kind": activation})
        spec = {"input_shape": [height, width, channels], "loss": loss, "reduction": "mean",
                "net": net}
        try:
            built = NetSpec.from_dict(spec)
        except ValueError:
            continue
        weights = [shape for name, shape in built.param_shapes().items() if built.is_weight(name)]
        if weights == [*kernels, *denses]:
            found.append(spec)
    return found


def _maps_seen(spec: dict, maps: str) -> list[Shape]:
    """The spec's feature maps' shapes in the learner's ``maps`` layout, without the batch."""
    shapes = NetSpec.from_dict(spec).layer_shapes
    return [tuple(s) if maps == "NHWC" else (s[2], s[0], s[1]) for s in shapes if len(s) == 3]


def _model_call(model: dict[str, Any], module: list[dict[str, Any]], weights: int) -> str | None:
    """``ConvNet(W1, b1, ...)``: the class's parameters as verify's inputs, each a module array
    (or list of them) found as a weight or a bias; ``None`` when one is neither."""
    names: dict[str, str] = {}
    for role, patterns in (("W", (WEIGHT, LIST_WEIGHT)), ("b", (BIAS, LIST_BIAS))):
        found = _named(module, patterns, (4, 2) if role == "W" else (1, 2))[:weights]
        names |= {a["expr"]: f"{role}{i}" for i, a in enumerate(found, 1)}
    args = []
    for param in model["built_with"]:
        listed = [names[e] for e in names if e.startswith(param + "[")]
        if param in names:
            args.append(names[param])
        elif listed:
            args.append("[" + ", ".join(listed) + "]")
        else:
            return None
    return f"{model['name']}({', '.join(args)})"


def build(description: dict[str, Any], lines: list[str]) -> list[str]:
    """The CNN draft's lines after the header ``lines``, closing brace included."""
    names = {f["name"].lower() for f in description.get("functions", [])}
    for cls in description.get("classes", []):
        names |= {m.lower() for m in cls.get("methods", [])}
    module = description.get("arrays", [])
    model = next((c for c in description.get("classes", []) if c.get("arrays")), None)
    arrays = model["arrays"] if model else module
    weights = _named(arrays, (WEIGHT, LIST_WEIGHT), (4, 2))
    kernels = [tuple(w["shape"]) for w in weights if len(w["shape"]) == 4]
    denses = [tuple(w["shape"]) for w in weights if len(w["shape"]) == 2]
    x = next((a for a in module if a["expr"] in X_NAMES and len(a["shape"]) == 4), None)
    channels = {x["shape"][1], x["shape"][3]} if x else set()
    layouts = _kernel_layouts(kernels, channels)
    if [len(w["shape"]) for w in weights] != sorted((len(w["shape"]) for w in weights),
                                                     reverse=True) or not layouts:
        return [*lines, "    # the weights found (" + python_comment(_shapes(weights)) + ") are "
                "not conv kernels then dense weights that chain: give 'spec' (its 'net' layer "
                "list), 'kernel', 'maps', 'W' and 'b' yourself", "}"]
    kernel = layouts[0]
    hwio = [_hwio(k, kernel) for k in kernels]
    c_in = hwio[0][2]
    if x and x["shape"][1] != x["shape"][3]:
        maps, why = ("NHWC", "x has its channels last") if x["shape"][3] == c_in else \
            ("NCHW", "x has its channels second")
    else:
        maps, why = ("NCHW" if kernel == "OIHW" else "NHWC"), f"as {kernel} kernels usually go"
    size = None
    if x:
        size = tuple(x["shape"][1:3]) if maps == "NHWC" else tuple(x["shape"][2:4])
    activation = next((a for a in ACTIVATIONS if any(a in n for n in names)), "relu")
    backward = model.get("backward") if model else None
    index_labels = bool(backward) and backward.get("labels") == "index"
    loss = "ce" if index_labels or any(w in n for n in names for w in CE_WORDS) else "l2"
    specs = _candidates(hwio, denses, size, c_in, activation, loss)
    seen = {tuple(a["shape"][1:]) for call in ("forward", "backward") if model and model.get(call)
            for a in model[call]["model"] + model[call]["result"] if len(a["shape"]) == 4}
    specs.sort(key=lambda s: -sum(shape in seen for shape in _maps_seen(s, maps)))
    ambiguous = "both HWIO and OIHW fit these shapes: " if len(layouts) == 2 else ""
    axes = "[kh, kw, C_in, C_out]" if kernel == "HWIO" else "[C_out, C_in, kh, kw]"
    lines.append(_entry("kernel", kernel, f"{ambiguous}{_shapes(weights[:len(kernels)])} read "
                        f"as {axes}: {c_in} input channel(s), filters {[k[3] for k in hwio]}; "
                        "confirm"))
    shown = f" {tuple(x['shape'])}" if x else ""
    lines.append(_entry("maps", maps, f"{why}{shown}: x, z and delta of the conv layers in "
                        "this layout; confirm"))
    if not specs:
        lines.append("    # 'spec': no usual layer list (conv SAME/VALID + relu, 2x2 max-pool, "
                     "flatten, dense) has these weights: give 'spec' with its 'net' yourself")
    else:
        spec = specs[0]
        others = len(specs) - 1
        lines.append("    # spec: the layer list whose parameters have these shapes"
                     + (", its maps seen in your forward pass" if seen else "")
                     + ("" if size else "; the input size guessed square: confirm 'input_shape'")
                     + (f"; {others} other list(s) fit too: check padding and pooling" if others
                        else "") + f"; {activation} from your functions' names, {loss} from "
                     + ("the class indices your backward took" if index_labels else
                        "their names") + ", reduction 'mean' a guess (dL/do divided by N?)")
        lines.append(f"    \"spec\": {spec!r},")
        lines.append("    # 'flatten' not declared: your flatten is taken to be x.reshape(N, -1) "
                     f"of your {maps} maps; declare 'flatten' if it lays a map out otherwise")
    return lines + _roles(model, module, weights, arrays, hwio, denses) + ["}"]


def _roles(model: dict[str, Any] | None, module: list[dict[str, Any]],
           weights: list[dict[str, Any]], arrays: list[dict[str, Any]], hwio: list[Shape],
           denses: list[Shape]) -> list[str]:
    """``bias_shape``, ``labels``, ``model``, ``W``, ``b``, ``forward``, ``backward``, ``dW``,
    ``db`` (or the comments saying which to give)."""
    lines = []
    widths = [k[3] for k in hwio] + [d[1] for d in denses]
    biases = _biases(_named(arrays, (BIAS, LIST_BIAS), (1, 2)), widths)
    if biases and len(biases[0]["shape"]) == 1:
        lines.append(_entry("bias_shape", "flat", f"{biases[0]['expr']} has shape "
                            f"{tuple(biases[0]['shape'])}"))
    backward = model.get("backward") if model else None
    if backward and backward.get("labels") == "index":
        lines.append(_entry("labels", "index", "your backward took class indices (one-hot "
                            "labels failed)"))
    if model and "built_with" in model:
        call = _model_call(model, module, len(weights))
        if call:
            lines.append(_entry("model", call, f"{model['name']}({', '.join(model['params'])}):"
                                " built with your arrays, it held the weights named here"))
        else:
            lines.append(f"    # 'model': ...,  # build {python_comment(model['name'])} from "
                         "W1, b1, ... yourself")
    return lines + _arrays_and_passes(model, weights, biases, bool(biases), "your x")
