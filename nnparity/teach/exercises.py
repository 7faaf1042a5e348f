"""The teaching page's exercises: one per MLP block, each a small network file for ``nnparity
verify`` in which the learner completes one function.

Every exercise file is the same two-layer MLP in the function style of the BP lecture (row
layout: ``x [N, D]``, ``W [D_in, D_out]``, ``b [1, D_out]``, one-hot labels ``y [N, K]``) with its
``NNPARITY`` declaration; the network (hidden activation, loss, reduction, weight decay,
optimiser) is chosen for the block, and one function of it is the task. :func:`source` writes
the file three ways: the stub (the task's body raises ``NotImplementedError``), the solution,
and the planted bug, whose diagnosis by ``nnparity verify`` is :attr:`Exercise.diagnosis`
(tested). The convolution, max-pool, flatten, GELU, average-pool, dropout and PReLU sections
have theirs in :mod:`nnparity.teach.cnn_exercises`, the normalisations theirs in
:mod:`nnparity.teach.norm_exercises`, the residual block its in
:mod:`nnparity.teach.residual_exercise`; :data:`WITHOUT_EXERCISE` would say why a section has
none (every section has one).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnparity.files.atomic import write_text
from nnparity.files.escape import python_docstring, python_literal, python_string
from nnparity.files.json_input import read_json
from nnparity.files.outputs import make_output_folder, output_file, output_folder

INPUT_DIM, HIDDEN = 4, 5


@dataclass(frozen=True)
class Exercise:
    """``key`` (the page section and file name), ``task`` (what to write, plain text),
    ``function`` (the name of the function to complete), ``solution`` and ``bug`` (the
    function's source, correct and with the planted mistake), ``diagnosis`` (verify's code for
    the bug), the network: ``activation`` (hidden), ``loss``, ``reduction``, ``outputs``,
    ``weight_decay`` and ``optimizer`` (verify's ``optimizer`` dict, or ``None`` for one SGD
    step)."""

    key: str
    task: str
    function: str
    solution: str
    bug: str
    diagnosis: str
    activation: str = "relu"
    loss: str = "ce"
    reduction: str = "sum"
    outputs: int = 3
    weight_decay: float = 0.0
    optimizer: dict | None = field(default=None)
    edge_case: bool = False
    """The planted bug is right on a generic batch and fails only at an edge (relu'(0) = 1, a
    softmax without the max shift): verify names it as a robustness finding, and fails it
    with ``--edge-cases fail``, the option its command carries."""

    @property
    def options(self) -> tuple[str, ...]:
        """The options of its ``nnparity verify`` command."""
        return ("--edge-cases", "fail") if self.edge_case else ()

    @property
    def file_name(self) -> str:
        """The stub's file name (``--exercises DIR``)."""
        return f"{self.key.replace('-', '_')}.py"

    def declaration(self) -> dict:
        """The file's ``NNPARITY`` dict."""
        spec = {"input_dim": INPUT_DIM, "layers": [HIDDEN, self.outputs],
                "activations": [self.activation, "identity"], "loss": self.loss,
                "reduction": self.reduction}
        if self.weight_decay:
            spec["weight_decay"] = self.weight_decay
        declared: dict = {"spec": spec}
        if self.optimizer:
            declared["optimizer"] = self.optimizer  # its lr is LR
        else:
            declared["lr"] = "LR"
        return {**declared, **STEPS}


STEPS = {
    "forward": "forward(x, W, b)",
    "z": "out[0][{i}]",
    "h": "out[1][{i}]",
    "backward": "backward(x, y, W, b, out)",
    "loss": "back[0]",
    "delta": "back[1][{i}]",
    "dW": "back[2][{i}]",
    "db": "back[3][{i}]",
    "update": "update(W, b, back[2], back[3])",
    "W_new": "upd[0][{i}]",
    "b_new": "upd[1][{i}]",
}

# --- the functions of the network, correct (a task replaces one of them) -----------------------

DENSE = '''def dense(h, W, b):
    """z = h W + b: h [N, D_in], W [D_in, D_out], b [1, D_out]."""
    return h @ W + b
'''

DENSE_BACKWARD = '''def dense_backward(delta, h, W):
    """From delta = dL/dz [N, D_out]: dL/dh, dL/dW, dL/db."""
    return delta @ W.T, h.T @ delta, delta.sum(axis=0, keepdims=True)
'''

ACTIVATIONS = {
    "relu": ('''def activation(z):
    return np.maximum(z, 0)
''', '''def activation_grad(z, h):
    """dh/dz, given z and h = activation(z); relu'(0) = 0."""
    return (z > 0).astype(z.dtype)
'''),
    "sigmoid": ('''def activation(z):
    return 1 / (1 + np.exp(-z))
''', '''def activation_grad(z, h):
    """dh/dz, given z and h = activation(z)."""
    return h * (1 - h)
'''),
    "tanh": ('''def activation(z):
    return np.tanh(z)
''', '''def activation_grad(z, h):
    """dh/dz, given z and h = activation(z)."""
    return 1 - h**2
'''),
    "relu3": ('''def activation(z):
    return np.maximum(z, 0) ** 3
''', '''def activation_grad(z, h):
    """dh/dz, given z and h = activation(z)."""
    return 3 * np.maximum(z, 0) ** 2
'''),
}

OUTPUT_GRAD = '''def output_grad(z, h):
    """dh/dz of the output layer, whose activation is the identity (h = z)."""
    return np.ones_like(z)
'''

LOSSES = {
    ("ce", "sum"): '''def loss_and_grad(o, y):
    """Softmax cross-entropy of logits o [N, K], one-hot y, summed: L and dL/do."""
    e = np.exp(o - o.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return -np.sum(y * np.log(p)), p - y
''',
    ("ce", "mean"): '''def loss_and_grad(o, y):
    """Softmax cross-entropy of logits o [N, K], one-hot y, averaged over the N samples."""
    n = o.shape[0]
    e = np.exp(o - o.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return -np.sum(y * np.log(p)) / n, (p - y) / n
''',
    ("l2", "sum"): '''def loss_and_grad(o, y):
    """L = 1/2 sum (o - y)^2 and dL/do."""
    return 0.5 * np.sum((o - y) ** 2), o - y
''',
    ("bce", "sum"): '''def loss_and_grad(o, y):
    """Log-loss of logits o [N, 1] and 0/1 targets, summed, without overflow: L and dL/do."""
    t = y.reshape(o.shape)
    loss = np.sum(np.maximum(o, 0) - o * t + np.log1p(np.exp(-np.abs(o))))
    return loss, 1 / (1 + np.exp(-o)) - t
''',
}

WEIGHT_DECAY = '''def add_weight_decay(dW, db, W, b):
    """The gradients of the penalty WEIGHT_DECAY / 2 * sum(W^2) added (weights only)."""
    return dW + WEIGHT_DECAY * W, db
'''

UPDATES = {
    "sgd": '''def update(W, b, dW, db):
    """One SGD step of every layer: new lists of W and b."""
    return ([Wi - LR * g for Wi, g in zip(W, dW)],
            [bi - LR * g for bi, g in zip(b, db)])
''',
    "momentum": '''def update(W, b, dW, db):
    """One momentum step (PyTorch's form: v = mu v + g; p = p - lr v), velocities in STATE."""
    new = []
    for k, (p, g) in enumerate(zip(W + b, dW + db)):
        v = MU * STATE.get(k, 0.0) + g
        STATE[k] = v
        new.append(p - LR * v)
    return new[:len(W)], new[len(W):]
''',
    "adam": '''def update(W, b, dW, db):
    """One Adam step (the paper's and PyTorch's form), moments and step count in STATE."""
    STATE["t"] = t = STATE.get("t", 0) + 1
    new = []
    for k, (p, g) in enumerate(zip(W + b, dW + db)):
        m = BETA1 * STATE.get(("m", k), 0.0) + (1 - BETA1) * g
        v = BETA2 * STATE.get(("v", k), 0.0) + (1 - BETA2) * g**2
        STATE[("m", k)], STATE[("v", k)] = m, v
        m_hat, v_hat = m / (1 - BETA1**t), v / (1 - BETA2**t)
        new.append(p - LR * m_hat / (np.sqrt(v_hat) + EPS))
    return new[:len(W)], new[len(W):]
''',
}

FORWARD_BACKWARD = '''def forward(x, W, b):
    """Every layer's z and h; the last layer's h is its z (the logits)."""
    zs, hs, h = [], [], x
    for i in range(len(W)):
        z = dense(h, W[i], b[i])
        h = activation(z) if i < len(W) - 1 else z
        zs.append(z)
        hs.append(h)
    return zs, hs


def backward(x, y, W, b, out):
    """The loss, every layer's delta = dL/dz, and the gradients dL/dW, dL/db."""
    zs, hs = out
    loss, do = loss_and_grad(hs[-1], y)
    loss += WEIGHT_DECAY / 2 * sum(np.sum(Wi**2) for Wi in W)
    delta = do * output_grad(zs[-1], hs[-1])
    inputs = [x] + hs[:-1]
    deltas, dW, db = [None] * len(W), [None] * len(W), [None] * len(W)
    for i in reversed(range(len(W))):
        deltas[i] = delta
        dh, dW[i], db[i] = dense_backward(delta, inputs[i], W[i])
        if WEIGHT_DECAY:
            dW[i], db[i] = add_weight_decay(dW[i], db[i], W[i], b[i])
        if i > 0:
            delta = dh * activation_grad(zs[i - 1], hs[i - 1])
    return loss, deltas, dW, db
'''


def _activation_exercise(name: str, bug: str, diagnosis: str, loss: str = "ce",
                         edge_case: bool = False) -> Exercise:
    return Exercise(name, f"Write activation_grad for {name}: dh/dz of the hidden layer, "
                    "given z and h.", "activation_grad", ACTIVATIONS[name][1], bug, diagnosis,
                    activation=name, loss=loss, edge_case=edge_case)


EXERCISES = (
    Exercise("dense", "Write dense_backward: from delta = dL/dz, the gradients of the layer's "
             "input, weight and bias (row layout).", "dense_backward", DENSE_BACKWARD,
             '''def dense_backward(delta, h, W):
    return delta @ W.T, delta.T @ h, delta.sum(axis=0, keepdims=True)  # dW transposed
''', "transposed"),
    _activation_exercise("sigmoid", '''def activation_grad(z, h):
    return z * (1 - z)  # the derivative written in h, applied to z
''', "derivative-on-z"),
    _activation_exercise("tanh", '''def activation_grad(z, h):
    return 1 - np.tanh(h) ** 2  # the derivative written in z, applied to h
''', "derivative-on-h"),
    _activation_exercise("relu", '''def activation_grad(z, h):
    return (z >= 0).astype(z.dtype)  # relu'(0) = 1
''', "relu-at-zero", edge_case=True),
    _activation_exercise("relu3", '''def activation_grad(z, h):
    return -3 * np.maximum(z, 0) ** 2  # the sign flipped
''', "sign"),
    Exercise("identity", "Write output_grad: dh/dz of the output layer, whose activation is the "
             "identity.", "output_grad", OUTPUT_GRAD, '''def output_grad(z, h):
    return 2 * np.ones_like(z)  # the 2 of the L2 loss's square counted again
''', "factor-two", loss="l2"),
    Exercise("softmax-ce", "Write loss_and_grad: softmax cross-entropy of the logits, summed "
             "over the batch, and its gradient.", "loss_and_grad", LOSSES[("ce", "sum")],
             '''def loss_and_grad(o, y):
    p = np.exp(o) / np.exp(o).sum(axis=1, keepdims=True)  # no max shift
    return -np.sum(y * np.log(p)), p - y
''', "softmax-overflow", edge_case=True),
    Exercise("l2", "Write loss_and_grad: the L2 loss 1/2 sum (o - y)^2 and its gradient.",
             "loss_and_grad", LOSSES[("l2", "sum")], '''def loss_and_grad(o, y):
    return np.sum((o - y) ** 2), o - y  # the 1/2 forgotten in the loss
''', "factor-two", loss="l2"),
    Exercise("log-loss", "Write loss_and_grad: the log-loss of one logit per sample (0/1 "
             "targets), summed, without overflow, and its gradient.", "loss_and_grad",
             LOSSES[("bce", "sum")], '''def loss_and_grad(o, y):
    t = y.reshape(o.shape)
    loss = np.sum(np.maximum(o, 0) - o * t + np.log1p(np.exp(-np.abs(o))))
    return loss, t - 1 / (1 + np.exp(-o))  # the sign flipped
''', "sign", loss="bce", outputs=1),
    Exercise("sum-vs-mean", "Write loss_and_grad: softmax cross-entropy averaged over the N "
             "samples, and its gradient.", "loss_and_grad", LOSSES[("ce", "mean")],
             '''def loss_and_grad(o, y):
    n = o.shape[0]
    e = np.exp(o - o.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return -np.sum(y * np.log(p)) / n, p - y  # the gradient of the sum
''', "sum-vs-mean", reduction="mean"),
    Exercise("weight-decay", "Write add_weight_decay: add the gradient of WEIGHT_DECAY / 2 * "
             "sum(W^2) to the layer's gradients.", "add_weight_decay", WEIGHT_DECAY,
             '''def add_weight_decay(dW, db, W, b):
    return dW + WEIGHT_DECAY * W, db + WEIGHT_DECAY * b  # the biases decayed too
''', "weight-decay-on-bias", weight_decay=0.01),
    Exercise("sgd", "Write update: one SGD step of every weight and bias.", "update",
             UPDATES["sgd"], '''def update(W, b, dW, db):
    return ([Wi - LR * g for Wi, g in zip(W, dW)],
            [bi - LR * bi for bi in b])  # the bias, not its gradient
''', "bias-with-bias"),
    Exercise("momentum", "Write update: one momentum step in PyTorch's form (v = mu v + g; "
             "p = p - lr v), keeping each parameter's velocity in STATE.", "update",
             UPDATES["momentum"], '''def update(W, b, dW, db):
    new = []
    for k, (p, g) in enumerate(zip(W + b, dW + db)):
        v = STATE.get(k, 0.0)
        new.append(p - LR * v)  # stepped with the old velocity
        STATE[k] = MU * v + g
    return new[:len(W)], new[len(W):]
''', "momentum-order", optimizer={"name": "momentum", "lr": 0.1, "momentum": 0.9}),
    Exercise("adam", "Write update: one Adam step with bias correction, keeping the moments "
             "and the step count in STATE.", "update", UPDATES["adam"],
             '''def update(W, b, dW, db):
    new = []
    for k, (p, g) in enumerate(zip(W + b, dW + db)):
        m = BETA1 * STATE.get(("m", k), 0.0) + (1 - BETA1) * g
        v = BETA2 * STATE.get(("v", k), 0.0) + (1 - BETA2) * g**2
        STATE[("m", k)], STATE[("v", k)] = m, v
        new.append(p - LR * m / (np.sqrt(v) + EPS))  # no bias correction
    return new[:len(W)], new[len(W):]
''', "adam-bias-correction",
             optimizer={"name": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
)

BY_KEY = {exercise.key: exercise for exercise in EXERCISES}
VARIANTS = ("stub", "solution", "bug")

WITHOUT_EXERCISE: dict[str, str] = {}  # section key -> why it has no exercise


def stub(exercise: Exercise) -> str:
    """The task's function with its body left to the learner."""
    signature = exercise.solution.split("\n", 1)[0]
    message = exercise.task
    return f"{signature}\n    raise NotImplementedError({python_string(message)})\n"


def _function(exercise: Exercise, name: str, correct: str, variant: str) -> str:
    if name != exercise.function:
        return correct
    return {"stub": stub(exercise), "solution": exercise.solution, "bug": exercise.bug}[variant]


def declaration_source(exercise: Exercise) -> str:
    """The ``NNPARITY = {...}`` statement of the exercise's file."""
    return f"NNPARITY = {python_literal(exercise.declaration())}"


def source(exercise: Exercise, variant: str = "stub") -> str:
    """The exercise's file: ``stub`` (to complete), ``solution`` or ``bug`` (the planted one)."""
    activation, activation_grad = ACTIVATIONS[exercise.activation]
    lr = (exercise.optimizer or {}).get("lr", 0.1)
    given = [DENSE, DENSE_BACKWARD, activation, activation_grad, OUTPUT_GRAD,
             LOSSES[(exercise.loss, exercise.reduction)], WEIGHT_DECAY,
             UPDATES[(exercise.optimizer or {"name": "sgd"})["name"]]]
    names = [part.split("(", 1)[0].removeprefix("def ") for part in given]
    task = next(i for i, name in enumerate(names) if name == exercise.function)
    others = [_function(exercise, n, part, variant) for i, (n, part) in
              enumerate(zip(names, given, strict=True)) if i != task]
    declaration = declaration_source(exercise)
    command = " ".join(("nnparity verify", exercise.file_name, *exercise.options))
    doc = python_docstring(
        f"Exercise {exercise.key}: {exercise.task}\n\nComplete {exercise.function} below, "
        f"then check it with\n\n    {command}\n\nThe rest of the "
        "network is given: a two-layer MLP (row layout: x [N, D], W [D_in, D_out], "
        "b [1, D_out], one-hot labels y [N, K]); NNPARITY tells verify where its numbers are.")
    return "\n".join([
        doc, "", "import numpy as np", "", declaration, "",
        f"LR = {lr!r}", f"WEIGHT_DECAY = {exercise.weight_decay!r}",
        "MU = 0.9", "BETA1, BETA2, EPS = 0.9, 0.999, 1e-8",
        "STATE = {}  # the optimiser's state, kept between steps", "", "",
        "# --- your part " + "-" * 60, "", "",
        _function(exercise, exercise.function, given[task], variant),
        "", "# --- given " + "-" * 64, "", "",
        "\n\n".join(others), "", FORWARD_BACKWARD])


def _stubs() -> list[tuple[str, str]]:
    """Every exercise's ``(file name, stub text)``: the MLP ones, then the CNN ones, then the
    normalisations', then the residual block's."""
    from . import cnn_exercises, norm_exercises, residual_exercise  # they build on this module

    return ([(e.file_name, source(e, "stub")) for e in EXERCISES]
            + [(e.file_name, cnn_exercises.source(e)) for e in cnn_exercises.EXERCISES]
            + [(e.file_name, norm_exercises.source(e)) for e in norm_exercises.EXERCISES]
            + [(e.file_name, residual_exercise.source(e))
               for e in residual_exercise.EXERCISES])


def files(folder: Path) -> list[Path]:
    """The stubs :func:`write_stubs` writes into ``folder``."""
    return [folder / name for name, _ in _stubs()]


def write_stubs(folder: Path) -> list[Path]:
    """One stub per exercise in ``folder`` (created when missing; its parent must exist), each
    written atomically, every path checked by the output rules before the first is written;
    returns their paths."""
    stubs = _stubs()
    paths = [output_folder(folder) / name for name, _ in stubs]
    if folder.exists():
        paths = [output_file(path) for path in paths]
    make_output_folder(folder)
    for (_, text), path in zip(stubs, paths, strict=True):
        write_text(path, text)
    return paths


def verify(exercise: Exercise, variant: str, folder: Path) -> tuple[int, dict[str, Any]]:
    """Write the exercise's file in ``variant`` into ``folder`` and run :func:`verify_file` on
    it."""
    path = folder / f"{variant}_{exercise.file_name}"
    path.write_text(source(exercise, variant))
    return verify_file(path, exercise.options)


def verify_file(path: Path, options: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    """Run ``nnparity verify`` on an exercise file (``--backends none``; ``--sandbox off``: the
    file is nnparity's own, not a learner's) with ``options``: the exit code and the ``yours``
    entry of its JSON report (``status``, ``first_divergence``, ``diagnosis``)."""
    from nnparity.cli import main  # here: the command line loads every command's module

    report = path.with_suffix(".json")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["verify", str(path), "--backends", "none", "--sandbox", "off", "--json",
                     str(report), *options])
    return code, read_json(report)["cases"][path.name]["backends"]["yours"]
