"""The teaching page's exercises for the convolution, max-pool and flatten sections: a small CNN
file for ``nnparity verify`` in which the learner writes one layer's forward and backward.

Every file is a NumPy network in the function style of the MLP exercises (``x [N, H, W, C]``
NHWC maps, ``W [k, k, C, F]`` HWIO kernels, flat biases ``b [F]``, one-hot labels ``y [N, K]``,
softmax cross-entropy summed, one SGD step), walked over its layer list ``NET``, with its
``NNPARITY`` declaration (the spec's ``net`` is the same list). Before the task's layer sits a
given 1x1 convolution, so that verify compares the task's input gradient too (it never sees
the gradient of the network's input). :func:`source` writes the file three ways: the stub (the
task's functions raise ``NotImplementedError``, so verify fails naming the function to write),
the solution (:mod:`nnparity.teach.cnn_solutions`, shown on the page in a fold, never in a
stub), and the planted bug, one line of the solution changed, whose diagnosis by ``nnparity
verify`` is :attr:`CNNExercise.diagnosis` (tested). Sections without an exercise:
:data:`nnparity.teach.exercises.WITHOUT_EXERCISE` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnparity.files.escape import python_docstring, python_literal, python_string

from . import cnn_solutions
from .exercises import STEPS


@dataclass(frozen=True)
class CNNExercise:
    """``key`` (the page section), ``task`` (plain text), ``functions`` (the names the learner
    writes), ``input_shape`` ``[H, W, C]``, ``net`` (the spec's layer list, which the file's
    ``NET`` walks), ``solution`` (the source of the task's functions), ``bug`` (``(line,
    planted)``: a line of the solution and what replaces it, a comment saying what is wrong),
    ``diagnosis`` (verify's code for the bug), ``flatten`` (the order the file's flatten lays a
    map out in, declared when it is not NHWC)."""

    key: str
    task: str
    functions: tuple[str, ...]
    input_shape: tuple[int, int, int]
    net: tuple[dict, ...]
    solution: str
    bug: tuple[str, str]
    diagnosis: str
    flatten: str = "NHWC"
    im2col: bool = False
    """The file's convolutions are one matrix product of im2col's patches (``conv_cols``)."""
    edge_case: bool = False
    """Ties are checked on the edge-case batch only (its zero image makes every window of a
    map tie): the command carries ``--edge-cases fail``."""

    @property
    def options(self) -> tuple[str, ...]:
        """The options of its ``nnparity verify`` command."""
        return ("--edge-cases", "fail") if self.edge_case else ()

    @property
    def file_name(self) -> str:
        """The stub's file name (``--exercises DIR``)."""
        return f"{self.key.replace('-', '_')}.py"

    @property
    def planted(self) -> str:
        """The task's functions with the planted bug (every occurrence of the bug's line)."""
        line, planted = self.bug
        if line not in self.solution:
            raise ValueError(f"{self.key}: the bug's line is not in the solution: {line!r}")
        return self.solution.replace(line, planted)

    def declaration(self) -> dict:
        """The file's ``NNPARITY`` dict."""
        spec = {"input_shape": list(self.input_shape), "loss": "ce", "reduction": "sum",
                "net": [dict(layer) for layer in self.net]}
        declared: dict = {"spec": spec, "bias_shape": "flat", "lr": "LR"}
        if self.flatten != "NHWC":
            declared["flatten"] = self.flatten
        steps = {k: v for k, v in STEPS.items() if k != "h"}
        handed = [name for kind, name in (("prelu", "a"), ("dropout", "masks"))
                  if any(layer["kind"] == kind for layer in self.net)]
        if handed:  # the PReLU slopes, the dropout masks verify hands over
            steps["forward"] = f"forward(x, W, b, {', '.join(handed)})"
        if "a" in handed:
            steps["da"] = "back[4][{i}]"
        return {**declared, **steps}


# --- the file's functions (the task's are left to the learner; the rest is given) -------------

PADS = '''def pads(size, k, stride, padding):
    """(before, after) padding of one axis: none for "valid"; for "same" TensorFlow's rule,
    the output ceil(size / stride) and the odd pixel at the bottom/right."""
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2
'''

SIGNATURES = {
    "conv_forward": ('def conv_forward(x, W, b, stride, padding):',
                     "x [N, H, W, C], W [k, k, C, F] (HWIO), b [F] -> z [N, Ho, Wo, F]: the "
                     "cross-correlation at this stride, padded by pads()."),
    "conv_backward": ('def conv_backward(d, x, W, stride, padding):',
                      "From d = dL/dz [N, Ho, Wo, F] and the layer's input x: dL/dx, dL/dW, "
                      "dL/db."),
    "maxpool_forward": ('def maxpool_forward(a, size, padding):',
                        "size x size windows at stride size ('same': -inf padding from "
                        "pads()) -> (pooled [N, Ho, Wo, C], what maxpool_backward needs)."),
    "maxpool_backward": ('def maxpool_backward(dout, cache):',
                         "dL/da: each window's gradient to its first maximum in row-major "
                         "order (ties included)."),
    "flatten_forward": ('def flatten_forward(a):',
                        "a [N, H, W, C] -> [N, C*H*W] in NCHW order (channel by channel), the "
                        "order the next dense weight's rows follow."),
    "im2col": ('def im2col(x, k):',
               "x [N, H, W, C] -> cols [N*Ho*Wo, k*k*C] (VALID, stride 1): row (n, i, j) holds "
               "the k x k x C patch under output (i, j), in the kernel's HWIO order."),
    "col2im": ('def col2im(dcols, shape, k):',
               "The adjoint of im2col: dL/dx [N, H, W, C] (shape), each entry of dcols "
               "[N*Ho*Wo, k*k*C] added back where im2col took it from."),
    "flatten_backward": ('def flatten_backward(d, shape):',
                         "dL/da [N, H, W, C] (shape) from d = dL/dflat [N, C*H*W]."),
    "gelu_forward": ('def gelu_forward(z):',
                     "The exact GELU, elementwise: z Phi(z), Phi(z) = (1 + erf(z / sqrt 2)) / 2 "
                     "the standard normal's CDF (erf() is given)."),
    "gelu_backward": ('def gelu_backward(d, z):',
                      "dL/dz from d = dL/dh and the GELU's input z."),
    "gelu_tanh_forward": ('def gelu_tanh_forward(z):',
                          "GELU's tanh form, elementwise: 0.5 z (1 + tanh u), u = sqrt(2/pi) "
                          "(z + 0.044715 z^3)."),
    "gelu_tanh_backward": ('def gelu_tanh_backward(d, z):',
                           "dL/dz from d = dL/dh and the layer's input z."),
    "avgpool_forward": ('def avgpool_forward(a, size, padding):',
                        "size x size windows at stride size ('same': padded by pads()) -> "
                        "pooled [N, Ho, Wo, C], each window's mean over its real cells (the "
                        "padding not counted)."),
    "avgpool_backward": ('def avgpool_backward(d, shape, size, padding):',
                         "dL/da [N, H, W, C] (shape) from d = dL/dpooled [N, Ho, Wo, C]."),
    "global_avgpool_forward": ('def global_avgpool_forward(a):',
                               "a [N, H, W, C] -> [N, C]: each channel's mean over the map."),
    "global_avgpool_backward": ('def global_avgpool_backward(d, shape):',
                                "dL/da [N, H, W, C] (shape) from d = dL/dpooled [N, C]."),
    "dropout_forward": ('def dropout_forward(h, mask, keep_prob):',
                        "Inverted dropout in training: h [N, D] and its 0/1 mask [N, D] (verify "
                        "draws it and hands it to forward in masks) -> y [N, D], the kept units "
                        "scaled so that evaluation needs no scaling."),
    "dropout_backward": ('def dropout_backward(d, mask, keep_prob):',
                         "dL/dh [N, D] from d = dL/dy and the forward's mask."),
    "prelu_forward": ('def prelu_forward(z, a):',
                      "z [N, H, W, C] and one slope per channel a [C] -> h: z where z > 0, "
                      "else a z."),
    "prelu_backward": ('def prelu_backward(d, z, a):',
                       "From d = dL/dh: dL/dz, and dL/da [C], each channel's slope gradient."),
}

ERF = '''def erf(x):
    """The error function, elementwise (math.erf on each entry: NumPy has none)."""
    return np.vectorize(math.erf, otypes=[float])(x)
'''

POINTWISE = '''def pointwise_forward(x, W, b):
    """A 1x1 convolution: x [N, H, W, C], W [1, 1, C, F], b [F] -> z [N, H, W, F]."""
    return x @ W[0, 0] + b


def pointwise_backward(d, x, W):
    """From d = dL/dz [N, H, W, F]: dL/dx, dL/dW, dL/db."""
    dW = np.tensordot(x, d, axes=([0, 1, 2], [0, 1, 2]))[None, None]
    return d @ W[0, 0].T, dW, d.sum(axis=(0, 1, 2))
'''

CONV_COLS = '''def conv_cols_forward(x, W, b):
    """VALID, stride 1, as one matrix product: z [N, Ho, Wo, F] = im2col(x) W + b."""
    n, height, width, _ = x.shape
    k, filters = W.shape[0], W.shape[3]
    z = im2col(x, k) @ W.reshape(-1, filters) + b
    return z.reshape(n, height - k + 1, width - k + 1, filters)


def conv_cols_backward(d, x, W):
    """From d = dL/dz [N, Ho, Wo, F]: dL/dx (through col2im), dL/dW, dL/db."""
    k, filters = W.shape[0], W.shape[3]
    d2 = d.reshape(-1, filters)
    dW = (im2col(x, k).T @ d2).reshape(W.shape)
    return col2im(d2 @ W.reshape(-1, filters).T, x.shape, k), dW, d2.sum(axis=0)
'''

FLATTEN_NHWC = '''def flatten_forward(a):
    """a [N, H, W, C] -> [N, H*W*C] in NHWC order."""
    return a.reshape(len(a), -1)


def flatten_backward(d, shape):
    """dL/da [N, H, W, C] from d = dL/dflat."""
    return d.reshape(shape)
'''

LOSS = '''def loss_and_grad(o, y):
    """Softmax cross-entropy of logits o [N, K], one-hot y, summed: L and dL/do."""
    e = np.exp(o - o.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return -np.sum(y * np.log(p)), p - y
'''

UPDATE = '''def update(W, b, dW, db):
    """One SGD step of every layer: new lists of W and b."""
    return ([Wi - LR * g for Wi, g in zip(W, dW)],
            [bi - LR * g for bi, g in zip(b, db)])
'''

# the walk's branch per kind of NET: forward (h -> y, cache), backward (d -> d, or the layer's
# delta and gradients)
FORWARD_BRANCH = {
    "conv": "y, cache = conv_forward(h, W[i], b[i], *args), None",
    "conv_cols": "y, cache = conv_cols_forward(h, W[i], b[i]), None",
    "pointwise": "y, cache = pointwise_forward(h, W[i], b[i]), None",
    "dense": "y, cache = h @ W[i] + b[i], None",
    "relu": "y, cache = np.maximum(h, 0), None",
    "maxpool": "y, cache = maxpool_forward(h, *args)",
    "flatten": "y, cache = flatten_forward(h), None",
    "gelu": "y, cache = gelu_forward(h), None",
    "gelu_tanh": "y, cache = gelu_tanh_forward(h), None",
    "avgpool": "y, cache = avgpool_forward(h, *args), None",
    "global_avgpool": "y, cache = global_avgpool_forward(h), None",
    "dropout": "cache = next(masks)\n            y = dropout_forward(h, cache, *args)",
    "prelu": "y, cache = prelu_forward(h, a[k]), (k, a[k])\n            k += 1",
}
BACKWARD_BRANCH = {
    "conv": "d, dW[i], db[i] = conv_backward(d, h, W[i], *args)",
    "conv_cols": "d, dW[i], db[i] = conv_cols_backward(d, h, W[i])",
    "pointwise": "d, dW[i], db[i] = pointwise_backward(d, h, W[i])",
    "dense": "d, dW[i], db[i] = d @ W[i].T, h.T @ d, d.sum(axis=0)",
    "relu": "d = d * (h > 0)",
    "maxpool": "d = maxpool_backward(d, cache)",
    "flatten": "d = flatten_backward(d, h.shape)",
    "gelu": "d = gelu_backward(d, h)",
    "gelu_tanh": "d = gelu_tanh_backward(d, h)",
    "avgpool": "d = avgpool_backward(d, h.shape, *args)",
    "global_avgpool": "d = global_avgpool_backward(d, h.shape)",
    "dropout": "d = dropout_backward(d, cache, *args)",
    "prelu": "k, slope = cache\n            d, da[k] = prelu_backward(d, h, slope)",
}
GELUS = ("gelu", "gelu_tanh")
PARAM_KINDS = ("conv", "conv_cols", "pointwise", "dense")


def _net_entry(layer: dict, im2col: bool) -> tuple:
    """The file's ``NET`` entry of a spec layer: ``(kind, *args)`` of its walk's call."""
    kind = layer["kind"]
    if kind == "conv2d" and layer["kernel"] == 1:
        return ("pointwise",)
    if kind == "conv2d" and im2col:
        return ("conv_cols",)
    if kind == "conv2d":
        return ("conv", layer.get("stride", 1), layer.get("padding", "valid"))
    if kind in ("maxpool", "avgpool"):
        return (kind, layer["size"], layer.get("padding", "valid"))
    if kind == "dropout":
        return ("dropout", layer["keep_prob"])
    if kind == "gelu" and layer.get("approximate") == "tanh":
        return ("gelu_tanh",)
    return (kind,)


def _walk(kinds: list[str]) -> str:
    """``forward`` and ``backward`` over ``NET``, with a branch for each kind it holds."""
    def branches(table: dict[str, str], indent: str) -> str:
        lines = []
        for n, kind in enumerate(kinds):
            keyword = "if" if n == 0 else "elif"
            lines += [f'{indent}{keyword} kind == "{kind}":', f"{indent}    {table[kind]}"]
        return "\n".join(lines)

    prelu, masks = "prelu" in kinds, "dropout" in kinds
    handed = "".join(name for name, used in ((", a", prelu), (", masks", masks)) if used)
    setup = (("\n    k = 0" if prelu else "") + ("\n    masks = iter(masks)" if masks else ""))
    slopes = ("\n    da = [None] * sum(kind == \"prelu\" for kind, *_ in NET)" if prelu else "")
    tail = ", dL/da" if prelu else ""
    return f'''def forward(x, W, b{handed}):
    """Every layer with parameters' output z, and per layer of NET (input, output, cache)."""
    zs, trace, h, i = [], [], x, 0{setup}
    for kind, *args in NET:
{branches(FORWARD_BRANCH, "        ")}
        if kind in {PARAM_KINDS!r}:
            zs.append(y)
            i += 1
        trace.append((h, y, cache))
        h = y
    return zs, trace


def backward(x, y, W, b, out):
    """The loss, every layer with parameters' delta = dL/dz, and dL/dW, dL/db{tail}."""
    zs, trace = out
    loss, d = loss_and_grad(zs[-1], y)
    deltas, dW, db = [None] * len(W), [None] * len(W), [None] * len(W){slopes}
    i = len(W)
    for (kind, *args), (h, _, cache) in zip(reversed(NET), reversed(trace)):
        if kind in {PARAM_KINDS!r}:
            i -= 1
            deltas[i] = d
{branches(BACKWARD_BRANCH, "        ")}
    return loss, deltas, dW, db{", da" if prelu else ""}
'''


def stub_function(name: str) -> str:
    """One task function as the learner gets it: its signature, what it computes, a raise."""
    signature, doc = SIGNATURES[name]
    message = f"write {name}: {doc}"
    return (f"{signature}\n    {python_docstring(doc)}\n"
            f"    raise NotImplementedError({python_string(message)})\n")


def _given(exercise: CNNExercise, kinds: list[str]) -> list[str]:
    given = [PADS] if {"conv", "maxpool", "avgpool"} & set(kinds) else []
    if set(GELUS) & set(kinds):
        given.append(ERF)
    if "pointwise" in kinds:
        given.append(POINTWISE)
    if "conv_cols" in kinds:
        given.append(CONV_COLS)
    if "flatten" in kinds and "flatten_forward" not in exercise.functions:
        given.append(FLATTEN_NHWC)
    return [*given, LOSS, UPDATE]


def declaration_source(exercise: CNNExercise) -> str:
    """The ``NNPARITY = {...}`` statement of the exercise's file."""
    return f"NNPARITY = {python_literal(exercise.declaration())}"


def stubs(exercise: CNNExercise) -> str:
    """The task's functions as the stub has them."""
    return "\n\n".join(stub_function(name) for name in exercise.functions)


def source(exercise: CNNExercise, variant: str = "stub") -> str:
    """The exercise's file: ``stub`` (to complete), ``solution`` or ``bug`` (the planted
    one)."""
    written = {"stub": stubs(exercise), "solution": exercise.solution,
               "bug": exercise.planted}[variant]
    entries = [_net_entry(layer, exercise.im2col) for layer in exercise.net]
    kinds = list(dict.fromkeys(entry[0] for entry in entries))
    command = " ".join(("nnparity verify", exercise.file_name, *exercise.options))
    doc = python_docstring(
        f"Exercise {exercise.key}: {exercise.task}\n\nComplete "
        f"{' and '.join(exercise.functions)} below, then check them with\n\n    {command}\n\n"
        "The rest of the network is given: NHWC maps x [N, H, W, C], HWIO kernels W [k, k, C, "
        "F], flat biases b [F], one-hot labels y [N, K]; NET is its layer list, NNPARITY tells "
        "verify where its numbers are.")
    net = "NET = [\n" + "".join(f"    {entry!r},\n" for entry in entries) + "]"
    return "\n".join([
        doc, "", *(["import math"] if set(GELUS) & set(kinds) else []), "import numpy as np", "",
        declaration_source(exercise), "", "LR = 0.1", "", net,
        "", "", "# --- your part " + "-" * 60, "", "",
        written, "", "# --- given " + "-" * 64, "", "",
        "\n\n".join(_given(exercise, kinds)), "", _walk(kinds)])


def _conv(filters: int, stride: int, padding: str, kernel: int = 3) -> dict:
    return {"kind": "conv2d", "filters": filters, "kernel": kernel, "stride": stride,
            "padding": padding}


RELU, FLATTEN, OUTPUT = {"kind": "relu"}, {"kind": "flatten"}, {"kind": "dense", "units": 3}
POINTWISE_LAYER = _conv(3, 1, "valid", kernel=1)  # given, before the task's layer

EXERCISES = (
    CNNExercise("conv-same-stride2", "Write conv_forward and conv_backward: the convolution (a "
                "cross-correlation) at stride 2 with SAME padding, and its gradients of the "
                "input, kernel and bias.",
                ("conv_forward", "conv_backward"), (7, 6, 2),
                (POINTWISE_LAYER, RELU, _conv(4, 2, "same"), RELU, FLATTEN, OUTPUT),
                cnn_solutions.CONV, ("left, right = pads(x.shape[2], k, stride, padding)",
                                     "right, left = pads(x.shape[2], k, stride, padding)  "
                                     "# the odd column on the left"), "padding-side"),
    CNNExercise("conv-valid", "Write im2col and col2im: the patches that a VALID, stride-1 "
                "convolution multiplies by its kernel in one matrix product, and their adjoint, "
                "which carries the gradient back to the input.", ("im2col", "col2im"),
                (5, 5, 2), (POINTWISE_LAYER, RELU, _conv(4, 1, "valid"), RELU, FLATTEN, OUTPUT),
                cnn_solutions.IM2COL, ("+= dcols[:, :, :, i, j, :]",
                                       "+= dcols[:, :, :, k - 1 - i, k - 1 - j, :]  "
                                       "# the patch mirrored: the kernel flipped"),
                "kernel-flip", im2col=True),
    CNNExercise("maxpool", "Write maxpool_forward and maxpool_backward: 2x2 max-pool at stride "
                "2, SAME (-inf padding), the gradient to each window's first maximum.",
                ("maxpool_forward", "maxpool_backward"), (5, 5, 2),
                (POINTWISE_LAYER, RELU, {"kind": "maxpool", "size": 2, "padding": "same"},
                 FLATTEN, OUTPUT),
                cnn_solutions.MAXPOOL,
                ("np.put_along_axis(route, first[:, i, j, None, :], dout[:, i, j, None, :], "
                 "axis=1)", "route[:] = dout[:, i, j, None, :]  # to every cell of the window"),
                "maxpool-all", edge_case=True),
    CNNExercise("flatten", "Write flatten_forward and flatten_backward: flatten NHWC maps in "
                "NCHW order (as torch's x.reshape(N, -1) of an NCHW map), the order the dense "
                "weight's rows follow, and its backward.",
                ("flatten_forward", "flatten_backward"), (3, 4, 2),
                (POINTWISE_LAYER, RELU, FLATTEN, OUTPUT), cnn_solutions.FLATTEN,
                ("return a.transpose(0, 3, 1, 2).reshape(len(a), -1)",
                 "return a.reshape(len(a), -1)  # NHWC order where NCHW is declared"),
                "flatten-order", flatten="NCHW"),
    CNNExercise("gelu", "Write gelu_forward and gelu_backward: the exact GELU, z Phi(z) with "
                "Phi the standard normal's CDF, and its derivative.",
                ("gelu_forward", "gelu_backward"), (3, 4, 2),
                (POINTWISE_LAYER, {"kind": "gelu", "approximate": "none"}, FLATTEN, OUTPUT),
                cnn_solutions.GELU,
                ("    cdf = 0.5 * (1 + erf(z / np.sqrt(2)))\n    return z * cdf",
                 "    cdf = 0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))  "
                 "# the tanh form where the exact one is declared\n    return z * cdf"),
                "gelu-form"),
    CNNExercise("gelu-tanh", "Write gelu_tanh_forward and gelu_tanh_backward: GELU's tanh "
                "form (jax.nn.gelu's default) and its derivative.",
                ("gelu_tanh_forward", "gelu_tanh_backward"), (3, 4, 2),
                (POINTWISE_LAYER, {"kind": "gelu", "approximate": "tanh"}, FLATTEN, OUTPUT),
                cnn_solutions.GELU_TANH,
                ("return d * (0.5 * (1 + t) + 0.5 * z * (1 - t**2) * du)",
                 "return d * 0.5 * (1 + t)  # the product rule's z * pdf term left out"),
                "gelu-pdf-term"),
    CNNExercise("avgpool", "Write avgpool_forward and avgpool_backward: 2x2 average pool at "
                "stride 2, SAME, each window's mean over its real cells (Keras' and "
                "TensorFlow's count, torch's count_include_pad=False), and its gradient.",
                ("avgpool_forward", "avgpool_backward"), (5, 5, 2),
                (POINTWISE_LAYER, RELU, {"kind": "avgpool", "size": 2, "padding": "same"},
                 FLATTEN, OUTPUT),
                cnn_solutions.AVGPOOL,
                ("+= d[:, i, j, None, None, :] / real[:, rows, cols].sum()",
                 "+= d[:, i, j, None, None, :]  # not divided by the window's count"),
                "avgpool-undivided"),
    CNNExercise("global-avgpool", "Write global_avgpool_forward and global_avgpool_backward: "
                "each channel's mean over the whole map (then a dense layer, no flatten) and "
                "its gradient.",
                ("global_avgpool_forward", "global_avgpool_backward"), (3, 4, 2),
                (POINTWISE_LAYER, RELU, {"kind": "global_avgpool"}, OUTPUT),
                cnn_solutions.GLOBAL_AVGPOOL,
                ("return np.broadcast_to(d[:, None, None, :] / (height * width), shape).copy()",
                 "return np.broadcast_to(d[:, None, None, :], shape).copy()  # not divided by "
                 "H * W"),
                "global-avgpool-undivided"),
    CNNExercise("dropout", "Write dropout_forward and dropout_backward: inverted dropout in "
                "training, with the mask verify draws and hands to forward (keep_prob 0.5).",
                ("dropout_forward", "dropout_backward"), (3, 4, 2),
                (POINTWISE_LAYER, RELU, FLATTEN, {"kind": "dropout", "keep_prob": 0.5}, OUTPUT),
                cnn_solutions.DROPOUT,
                ("return h * mask / keep_prob",
                 "return h * mask  # the kept units not scaled by 1 / keep_prob"),
                "dropout-scale"),
    CNNExercise("prelu", "Write prelu_forward and prelu_backward: PReLU with one learnable "
                "slope per channel (verify hands the slopes to forward in a), the input's "
                "gradient and each slope's.",
                ("prelu_forward", "prelu_backward"), (3, 4, 2),
                (POINTWISE_LAYER, {"kind": "prelu", "slopes": "unit"}, FLATTEN, OUTPUT),
                cnn_solutions.PRELU,
                ("da = np.sum(d * np.minimum(z, 0), axis=(0, 1, 2))",
                 "da = np.sum(d * np.minimum(z, 0), axis=0)  # over the batch only"),
                "prelu-slope-axis"),
)

BY_KEY = {exercise.key: exercise for exercise in EXERCISES}
