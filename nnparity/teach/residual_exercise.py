"""The teaching page's exercise for the residual section: a small network file for ``nnparity
verify`` whose residual block ``y = h + f(h)``, ``f`` = dense -> tanh -> dense, the learner
back-propagates.

The file is a function-style MLP (row layout: ``x [N, D]``, ``W [D_in, D_out]``, flat biases
``b [D_out]``, one-hot labels ``y [N, K]``, softmax cross-entropy summed, one SGD step): x ->
dense -> tanh -> residual[dense -> tanh -> dense] -> dense. verify numbers the block's dense
layers with the outer ones in forward order (:mod:`nnparity.verify.netview`): ``W[0]`` the first
dense, ``W[1]`` and ``W[2]`` the block's, ``W[3]`` the output's; its ``NNPARITY`` declaration
exposes every dense layer's ``z``, delta, gradients and updated parameters. :func:`source`
writes the file as the stub, the solution or the planted bug (the skip path's gradient left out
of ``dL/dh``), whose diagnosis by ``nnparity verify`` is :attr:`ResidualExercise.diagnosis`
(tested).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnparity.files.escape import python_literal

from .backward_exercise import BackwardExercise, file_text, verify_variant
from .exercises import INPUT_DIM

HIDDEN, OUTPUTS, LR = 5, 3, 0.1


class ResidualExercise(BackwardExercise):
    """``key`` (the page section), ``task``, ``function`` (the backward to write), ``given``
    (the block's forward, correct), ``solution`` and ``bug`` (the backward, correct and with the
    planted mistake), ``diagnosis`` (verify's code for it)."""

    def declaration(self) -> dict:
        """The file's ``NNPARITY`` dict."""
        dense = {"kind": "dense", "units": HIDDEN}
        net = [dense, {"kind": "tanh"},
               {"kind": "residual", "net": [dense, {"kind": "tanh"}, dense]},
               {"kind": "dense", "units": OUTPUTS}]
        return {"spec": {"input_shape": [INPUT_DIM], "loss": "ce", "reduction": "sum",
                         "net": net},
                "bias_shape": "flat", "lr": "LR",
                "forward": "forward(x, W, b)", "z": "out['z'][{i}]",
                "backward": "backward(out, y, W)", "loss": "back['loss']",
                "delta": "back['delta'][{i}]", "dW": "back['dW'][{i}]",
                "db": "back['db'][{i}]",
                "update": "update(W, b, back)", "W_new": "upd[0][{i}]", "b_new": "upd[1][{i}]"}


RESIDUAL_FORWARD = '''def residual_forward(h, Wa, ba, Wb, bb):
    """y = h + f(h), f(h) = tanh(h Wa + ba) Wb + bb, h and y [N, D]: y and the cache
    residual_backward needs (h, za, a = tanh(za), zb)."""
    za = h @ Wa + ba
    a = np.tanh(za)
    zb = a @ Wb + bb
    return h + zb, (h, za, a, zb)
'''

RESIDUAL_BACKWARD = '''def residual_backward(dy, cache, Wa, Wb):
    """From dy = dL/dy [N, D]: dL/dh, the deltas (dL/dza, dL/dzb), the weights' gradients
    (dL/dWa, dL/dWb) and the biases' (dL/dba, dL/dbb)."""
    h, za, a, zb = cache
    dzb = dy
    dza = (dzb @ Wb.T) * (1 - a ** 2)
    dh = dza @ Wa.T + dy
    return dh, (dza, dzb), (h.T @ dza, a.T @ dzb), (dza.sum(axis=0), dzb.sum(axis=0))
'''

RESIDUAL_BUG = RESIDUAL_BACKWARD.replace(
    "    dh = dza @ Wa.T + dy\n",
    "    dh = dza @ Wa.T  # the skip path's gradient (+ dy) left out\n")

NETWORK = '''def forward(x, W, b):
    """x -> dense -> tanh -> residual block -> dense: every dense layer's z (the block's two
    included) and what the backward needs."""
    z1 = x @ W[0] + b[0]
    h1 = np.tanh(z1)
    h2, cache = residual_forward(h1, W[1], b[1], W[2], b[2])
    z4 = h2 @ W[3] + b[3]
    return {"x": x, "z": [z1, cache[1], cache[3], z4], "h1": h1, "h2": h2, "cache": cache}


def backward(out, y, W):
    """The summed softmax cross-entropy, every dense layer's delta = dL/dz and the
    gradients."""
    z4 = out["z"][3]
    e = np.exp(z4 - z4.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.sum(y * np.log(p))
    d4 = p - y
    dh1, (d2, d3), (dW2, dW3), (db2, db3) = residual_backward(d4 @ W[3].T, out["cache"],
                                                              W[1], W[2])
    d1 = dh1 * (1 - out["h1"] ** 2)
    return {"loss": loss, "delta": [d1, d2, d3, d4],
            "dW": [out["x"].T @ d1, dW2, dW3, out["h2"].T @ d4],
            "db": [d1.sum(axis=0), db2, db3, d4.sum(axis=0)]}


def update(W, b, back):
    """One SGD step of every layer: new lists of W and b."""
    return ([Wi - LR * g for Wi, g in zip(W, back["dW"])],
            [bi - LR * g for bi, g in zip(b, back["db"])])
'''

EXERCISES = (
    ResidualExercise(
        "residual", "Write residual_backward: from dy = dL/dy, the gradients of the residual "
        "block y = h + f(h) (f = dense -> tanh -> dense): its input's, through both paths, "
        "and its two dense layers' deltas, weights' and biases'.", "residual_backward",
        RESIDUAL_FORWARD, RESIDUAL_BACKWARD, RESIDUAL_BUG, "residual-skip-gradient"),
)
BY_KEY = {exercise.key: exercise for exercise in EXERCISES}


def declaration_source(exercise: ResidualExercise) -> str:
    """The ``NNPARITY = {...}`` statement of the exercise's file."""
    return f"NNPARITY = {python_literal(exercise.declaration())}"


def source(exercise: ResidualExercise, variant: str = "stub") -> str:
    """The exercise's file: ``stub`` (to complete), ``solution`` or ``bug`` (the planted one)."""
    return file_text(
        exercise, variant, declaration=declaration_source(exercise),
        network="The rest of the network is given: x -> dense -> tanh -> residual block -> "
        "dense (row layout: x [N, D], W [D_in, D_out], flat b, one-hot labels y [N, K]); verify "
        "numbers the block's dense layers with the others in forward order (W[1], W[2]); "
        "NNPARITY tells verify where its numbers are.",
        constants=[f"LR = {LR!r}"], after_given=[NETWORK])


def verify(exercise: ResidualExercise, variant: str, folder: Path) -> tuple[int, dict[str, Any]]:
    """Write the exercise's file in ``variant`` into ``folder`` and verify it."""
    return verify_variant(exercise, variant, source(exercise, variant), folder)
