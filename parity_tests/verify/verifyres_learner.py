"""A learner's NumPy network with a residual block, written apart from the teaching page's
exercise (ReLU inside the block, an L2 loss averaged over the batch), and its declaration: the
verify tests of residual blocks build on it (imported by the tests beside this file)."""

from __future__ import annotations

from pathlib import Path

from nnparity.files.escape import python_literal

DENSE = {"kind": "dense", "units": 4}
BLOCK = {"kind": "residual", "net": [DENSE, {"kind": "relu"}, DENSE]}
SPEC = {"input_shape": [3], "loss": "l2", "reduction": "mean",
        "net": [DENSE, {"kind": "tanh"}, BLOCK, {"kind": "dense", "units": 2}]}
DECLARED = {"spec": SPEC, "bias_shape": "flat",
            "forward": "forward(x, [W1, W2, W3, W4], [b1, b2, b3, b4])", "z": "out['z'][{i}]",
            "backward": "backward(out, y, [W1, W2, W3, W4])", "loss": "back[0]",
            "delta": "back[1][{i}]", "dW": "back[2][{i}]", "db": "back[3][{i}]"}

# a learner's network, written apart from the teaching page's exercise: ReLU inside the block,
# an L2 loss averaged over the batch
LEARNER = '''import numpy as np

NNPARITY = {declared}


def forward(x, W, b):
    z1 = x @ W[0] + b[0]
    h1 = np.tanh(z1)
    z2 = h1 @ W[1] + b[1]
    a2 = np.maximum(z2, 0)
    z3 = a2 @ W[2] + b[2]
    h3 = h1 + z3
    z4 = h3 @ W[3] + b[3]
    return {{"x": x, "z": [z1, z2, z3, z4], "h": [h1, a2, h3]}}


def backward(out, y, W):
    x, (z1, z2, z3, z4), (h1, a2, h3) = out["x"], out["z"], out["h"]
    n = len(x)
    loss = 0.5 * np.sum((z4 - y) ** 2) / n
    d4 = (z4 - y) / n
    dh3 = d4 @ W[3].T
    d3 = dh3
    d2 = (d3 @ W[2].T) * (z2 > 0)
    dh1 = d2 @ W[1].T + dh3
    d1 = dh1 * (1 - h1 ** 2)
    inputs = [x, h1, a2, h3]
    deltas = [d1, d2, d3, d4]
    return (loss, deltas, [i.T @ d for i, d in zip(inputs, deltas)],
            [d.sum(axis=0) for d in deltas])
'''


def learner(folder: Path, name: str, edits: tuple[tuple[str, str], ...] = (),
            declared: dict | None = None) -> Path:
    """The learner's file, with ``edits`` (each ``(old, new)``, ``old`` present) made."""
    text = LEARNER.format(declared=python_literal(declared or DECLARED))
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = folder / f"{name}.py"
    path.write_text(text)
    return path
