"""The teaching page's exercises for the batchnorm and layernorm sections: the CS231n
assignment's ``<norm>_forward(x, gamma, beta, param)`` / ``<norm>_backward(dout, cache)`` pair
inside a small network file for ``nnparity verify``, the backward left to the learner.

Every file is the same function-style MLP with a normalisation after the hidden activation (row
layout: ``x [N, D]``, ``W [D_in, D_out]``, flat biases ``b [D_out]``, ``gamma``, ``beta [D]``,
one-hot labels ``y [N, K]``, softmax cross-entropy summed, one SGD step): x -> dense -> tanh ->
norm -> dense. Its ``NNPARITY`` declaration exposes every layer's ``z`` and delta, the norm's
output, ``dgamma``, ``dbeta``, the updated parameters and (batchnorm) the running statistics
kept in ``bn_param``. :func:`source` writes the file as the stub, the solution or the planted
bug, whose diagnosis by ``nnparity verify`` is :attr:`NormExercise.diagnosis` (tested).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .backward_exercise import BackwardExercise, file_text, verify_variant
from .exercises import INPUT_DIM

HIDDEN, OUTPUTS, LR = 5, 3, 0.1
EPS, MOMENTUM = 1e-5, 0.9


class NormExercise(BackwardExercise):
    """``key`` (the page section: ``batchnorm`` or ``layernorm``), ``task``, ``function`` (the
    backward to write), ``given`` (the forward, correct), ``solution`` and ``bug`` (the
    backward, correct and with the planted mistake), ``diagnosis`` (verify's code for it)."""

    @property
    def batch(self) -> bool:
        """True for the batch normalisation (running statistics in ``bn_param``)."""
        return self.key == "batchnorm"

    def declaration(self) -> dict:
        """The file's ``NNPARITY`` dict."""
        norm: dict[str, Any] = {"kind": self.key, "epsilon": EPS}
        if self.batch:
            norm["momentum"] = MOMENTUM
        net = [{"kind": "dense", "units": HIDDEN}, {"kind": "tanh"}, norm,
               {"kind": "dense", "units": OUTPUTS}]
        declared: dict[str, Any] = {
            "spec": {"input_shape": [INPUT_DIM], "loss": "ce", "reduction": "sum", "net": net},
            "bias_shape": "flat", "lr": "LR",
            "model": "make_param()",
        }
        if self.batch:
            declared["running_mean"] = ["model['running_mean']"]
            declared["running_var"] = ["model['running_var']"]
        return {**declared,
                "forward": "forward(x, W, b, gamma1, beta1, model)",
                "z": "out['z'][{i}]",
                "norm_out": ["out['norm']"],
                "backward": "backward(out, y, W, gamma1)",
                "loss": "back['loss']",
                "delta": "back['delta'][{i}]",
                "dW": "back['dW'][{i}]",
                "db": "back['db'][{i}]",
                "dgamma": ["back['dgamma']"],
                "dbeta": ["back['dbeta']"],
                "update": "update(W, b, gamma1, beta1, back)",
                "W_new": "upd[0][{i}]",
                "b_new": "upd[1][{i}]",
                "gamma_new": ["upd[2]"],
                "beta_new": ["upd[3]"]}


BATCHNORM_FORWARD = '''def batchnorm_forward(x, gamma, beta, bn_param):
    """Training-mode batch normalisation of x [N, D] with the batch's statistics (the biased
    variance); the running statistics in bn_param move: running = momentum * running
    + (1 - momentum) * batch. Returns out [N, D] and the cache batchnorm_backward needs."""
    eps, momentum = bn_param["eps"], bn_param["momentum"]
    mu = x.mean(axis=0)
    xmu = x - mu
    var = (xmu ** 2).mean(axis=0)
    ivar = 1 / np.sqrt(var + eps)
    xhat = xmu * ivar
    bn_param["running_mean"] = momentum * bn_param["running_mean"] + (1 - momentum) * mu
    bn_param["running_var"] = momentum * bn_param["running_var"] + (1 - momentum) * var
    return gamma * xhat + beta, (xhat, xmu, ivar, gamma)
'''

BATCHNORM_BACKWARD = '''def batchnorm_backward(dout, cache):
    """From dout = dL/dout [N, D]: dL/dx, dL/dgamma, dL/dbeta, walking the computational graph
    back (x -> mu, var -> xhat -> out)."""
    xhat, xmu, ivar, gamma = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dvar = (dxhat * xmu).sum(axis=0) * -0.5 * ivar ** 3
    dxmu = dxhat * ivar + 2 * xmu * dvar / n
    dmu = -dxmu.sum(axis=0)
    return dxmu + dmu / n, dgamma, dbeta
'''

BATCHNORM_BUG = '''def batchnorm_backward(dout, cache):
    xhat, xmu, ivar, gamma = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dvar = (dxhat * xmu).sum(axis=0) * -0.5 * ivar ** 3
    dxmu = dxhat * ivar + 2 * xmu * dvar / n
    return dxmu, dgamma, dbeta  # the path through the mean (dmu) left out
'''

LAYERNORM_FORWARD = '''def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalisation of each row of x [N, D] with its own mean and (biased) variance.
    Returns out [N, D] and the cache layernorm_backward needs."""
    mu = x.mean(axis=1, keepdims=True)
    xmu = x - mu
    ivar = 1 / np.sqrt((xmu ** 2).mean(axis=1, keepdims=True) + ln_param["eps"])
    xhat = xmu * ivar
    return gamma * xhat + beta, (xhat, ivar, gamma)
'''

LAYERNORM_BACKWARD = '''def layernorm_backward(dout, cache):
    """From dout = dL/dout [N, D]: dL/dx, dL/dgamma, dL/dbeta (the simplified form: the
    statistics are each row's, over its D features)."""
    xhat, ivar, gamma = cache
    dxhat = dout * gamma
    dx = ivar * (dxhat - dxhat.mean(axis=1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
'''

LAYERNORM_BUG = '''def layernorm_backward(dout, cache):
    xhat, ivar, gamma = cache
    dxhat = dout * gamma
    dx = ivar * (dxhat - dxhat.mean(axis=1, keepdims=True))  # the variance's term left out
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
'''

NETWORK = '''def forward(x, W, b, gamma, beta, param):
    """x -> dense -> tanh -> {key} -> dense: every dense layer's z, the norm's output and
    what the backward needs."""
    z1 = x @ W[0] + b[0]
    h1 = np.tanh(z1)
    norm, cache = {key}_forward(h1, gamma, beta, param)
    z2 = norm @ W[1] + b[1]
    return {{"x": x, "z": [z1, z2], "h1": h1, "norm": norm, "cache": cache}}


def backward(out, y, W, gamma):
    """The summed softmax cross-entropy, every dense layer's delta = dL/dz and the gradients."""
    z1, z2 = out["z"]
    e = np.exp(z2 - z2.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.sum(y * np.log(p))
    d2 = p - y
    dh1, dgamma, dbeta = {key}_backward(d2 @ W[1].T, out["cache"])
    d1 = dh1 * (1 - out["h1"] ** 2)
    return {{"loss": loss, "delta": [d1, d2], "dW": [out["x"].T @ d1, out["norm"].T @ d2],
            "db": [d1.sum(axis=0), d2.sum(axis=0)], "dgamma": dgamma, "dbeta": dbeta}}


def update(W, b, gamma, beta, back):
    """One SGD step of every parameter: new W, b, gamma, beta."""
    return ([Wi - LR * g for Wi, g in zip(W, back["dW"])],
            [bi - LR * g for bi, g in zip(b, back["db"])],
            gamma - LR * back["dgamma"], beta - LR * back["dbeta"])
'''

PARAMS = {
    "batchnorm": '''def make_param():
    """bn_param: the hyperparameters and the running statistics, kept between steps."""
    return {"mode": "train", "eps": EPS, "momentum": MOMENTUM,
            "running_mean": np.zeros(HIDDEN), "running_var": np.ones(HIDDEN)}
''',
    "layernorm": '''def make_param():
    """ln_param: the hyperparameters."""
    return {"eps": EPS}
''',
}

EXERCISES = (
    NormExercise("batchnorm", "Write batchnorm_backward: from dout = dL/dout, the gradients of "
                 "the batch normalisation's input, scale and shift (training mode: the batch's "
                 "mean and variance depend on x).", "batchnorm_backward", BATCHNORM_FORWARD,
                 BATCHNORM_BACKWARD, BATCHNORM_BUG, "batchnorm-mean-path"),
    NormExercise("layernorm", "Write layernorm_backward: from dout = dL/dout, the gradients of "
                 "the layer normalisation's input, scale and shift (each row's mean and "
                 "variance depend on that row).", "layernorm_backward", LAYERNORM_FORWARD,
                 LAYERNORM_BACKWARD, LAYERNORM_BUG, "layernorm-variance-path"),
)
BY_KEY = {exercise.key: exercise for exercise in EXERCISES}


def declaration_source(exercise: NormExercise) -> str:
    """The ``NNPARITY = {...}`` statement of the exercise's file."""
    return f"NNPARITY = {json.dumps(exercise.declaration(), indent=4)}"


def source(exercise: NormExercise, variant: str = "stub") -> str:
    """The exercise's file: ``stub`` (to complete), ``solution`` or ``bug`` (the planted one)."""
    return file_text(
        exercise, variant, declaration=declaration_source(exercise),
        network=f"The rest of the network is given: x -> dense -> tanh -> {exercise.key} -> "
        "dense (row layout: x [N, D], W [D_in, D_out], flat b, gamma, beta [D], one-hot labels "
        "y [N, K]); NNPARITY tells verify where its numbers are.",
        constants=[f"LR = {LR!r}", f"EPS, MOMENTUM = {EPS!r}, {MOMENTUM!r}", f"HIDDEN = {HIDDEN}"],
        after_given=[PARAMS[exercise.key], "", NETWORK.format(key=exercise.key)])


def verify(exercise: NormExercise, variant: str, folder: Path) -> tuple[int, dict[str, Any]]:
    """Write the exercise's file in ``variant`` into ``folder`` and verify it."""
    return verify_variant(exercise, variant, source(exercise, variant), folder)
