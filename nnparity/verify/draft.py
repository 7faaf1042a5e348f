"""``nnparity verify --init FILE``: a draft ``NNPARITY`` declaration from what the learner's file
holds, each guess with a comment saying what it rests on, for the student to confirm.

The description comes from the sandboxed child (:func:`nnparity.verify.child.describe`): the
module's arrays, functions and classes; a class built with sizes 4, 5, 3, ... and its arrays;
its forward and backward methods called on a batch of 5 and the arrays they return. Weights are
the 2-D arrays named like ``W1``/``w2``/``weight``, chained by shape (``[in, out]``: row layout;
``[out, in]``: column layout); biases the arrays named like ``b1``/``bias``; gradients the arrays
the backward returns with a weight's or a bias's shape. Every learner-given name reaches the
draft through :func:`nnparity.escape.python_string` or :func:`nnparity.escape.python_comment`.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from nnparity.files.escape import python_comment, python_string

END = r"(\d*)['\"\]]*$"  # a layer number, then the closing quote and bracket of a key
WEIGHT = re.compile(r"(?i)(^|[^a-z])(w|weights?)" + END)
BIAS = re.compile(r"(?i)(^|[^a-z])(b|bias(es)?)" + END)
GRAD_WEIGHT = re.compile(r"(?i)(^|[^a-z])(dw|grad_?w|w|weights?)" + END)
GRAD_BIAS = re.compile(r"(?i)(^|[^a-z])(db|grad_?b|b|bias(es)?)" + END)
ACTIVATIONS = ("relu", "sigmoid", "tanh")
CE_WORDS = ("softmax", "cross_entropy", "crossentropy", "log_softmax")
CNN_WORDS = ("conv", "im2col", "pool")  # a CNN's functions: its weights are worth asking for


def _layered(arrays: list[dict[str, Any]], pattern: re.Pattern[str],
             ndims: tuple[int, ...]) -> list[dict[str, Any]]:
    """The arrays of ``ndims`` dimensions whose expression ends in a name ``pattern`` matches,
    in layer order."""
    found = [a for a in arrays if len(a["shape"]) in ndims and pattern.search(a["expr"])]
    return sorted(found, key=lambda a: (_number(a["expr"]), a["expr"]))


def _number(expr: str) -> int:
    digits = re.findall(r"\d+", expr)
    return int(digits[-1]) if digits else 0


def _chain(weights: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]] | None:
    """``(layout, weights)`` when consecutive weights chain by shape."""
    shapes = [tuple(w["shape"]) for w in weights]
    if not shapes:
        return None
    if all(a[1] == b[0] for a, b in pairwise(shapes)):
        return "row", weights
    if all(a[0] == b[1] for a, b in pairwise(shapes)):
        return "column", weights
    return None


def _template(exprs: list[str]) -> str | list[str]:
    """``"model.params['W{l}']"`` (``"model.W[{i}]"``) when the expressions differ only by
    their 1-based layer number (0-based index), else the list."""
    for key, first in (("{l}", 1), ("{i}", 0)):
        candidate = re.sub(r"\d+(?=\D*$)", key, exprs[0])
        if key in candidate and [candidate.replace(key, str(i)) for i in
                                 range(first, len(exprs) + first)] == exprs:
            return candidate
    return exprs


def _shapes(arrays: list[dict[str, Any]]) -> str:
    return ", ".join(f"{a['expr']} {tuple(a['shape'])}" for a in arrays)


def _biases(candidates: list[dict[str, Any]], widths: list[int]) -> list[dict[str, Any]]:
    """One bias per layer, with that layer's width, in order (empty when one is missing)."""
    chosen: list[dict[str, Any]] = []
    for width in widths:
        match = next((b for b in candidates if b not in chosen
                      and int(np.prod(b["shape"])) == width), None)
        if match is None:
            return []
        chosen.append(match)
    return chosen


def _entry(key: str, value: Any, comment: str) -> str:
    if isinstance(value, list):
        text = "[" + ", ".join(python_string(v) for v in value) + "]"
    elif isinstance(value, str):
        text = python_string(value)
    else:
        text = repr(value)
    return f"    {python_string(key)}: {text},  # {python_comment(comment)}"


def _pick(results: list[dict[str, Any]], shapes: list[tuple[int, ...]],
          pattern: re.Pattern[str]) -> list[str] | None:
    """One returned array per layer with that layer's shape, preferring a name ``pattern``
    matches and one numbered like the layer (1-based, or 0-based), each array once."""
    picked = []
    for layer, shape in enumerate(shapes, 1):
        same = [a for a in results if tuple(a["shape"]) == shape]
        named = [a for a in same if pattern.search(a["expr"])]
        choice = sorted((a for a in named or same if a["expr"] not in picked),
                        key=lambda a: _number(a["expr"]) not in (layer, layer - 1))[:1]
        if not choice:
            return None
        picked.append(choice[0]["expr"])
    return picked


def build(description: dict[str, Any], path: Path) -> str:
    """The draft declaration (Python text) for the file at ``path`` (a CNN's from
    :mod:`nnparity.verify.draft_cnn`)."""
    from . import draft_cnn  # here: it builds on this module's readers
    lines = [f"# A draft NNPARITY for {python_comment(path.name)}, guessed by nnparity verify "
             "--init: check every line, then paste it into your file.", "NNPARITY = {"]
    names = {f["name"].lower() for f in description.get("functions", [])}
    for cls in description.get("classes", []):
        names |= {m.lower() for m in cls.get("methods", [])}
    built = next((c for c in description.get("classes", []) if c.get("arrays")), None)
    if draft_cnn.has_kernels(built["arrays"] if built else description.get("arrays", [])):
        return "\n".join(draft_cnn.build(description, lines)) + "\n"
    model = next((c for c in description.get("classes", []) if c.get("arrays")
                  and "sizes" in c), None)  # an MLP's class, built with sizes
    arrays = model["arrays"] if model else description.get("arrays", [])
    weights = _layered(arrays, WEIGHT, (2,))
    chained = _chain(weights)
    if chained is None:
        lines += ["    # no weights found by name and shape (arrays named like W1, w2, weight): "
                  "give 'spec', 'W' and 'b' yourself",
                  "    # arrays seen: " + python_comment(_shapes(arrays)[:300] or "none")]
        lines += [f"    # {python_comment(c['name'])}({python_comment(', '.join(c['params']))}) "
                  "takes its weights: give them values at the top level of your file, with "
                  "these names and an input batch x (e.g. W1 = np.random.randn(8, 1, 3, 3)), "
                  "and run --init again to have them read" for c in description.get("classes", [])
                  if "sizes" not in c and any(WEIGHT.search(p) for p in c["params"])
                  and any(word in name for name in names for word in CNN_WORDS)]
        return "\n".join([*lines, "}"]) + "\n"
    layout, weights = chained
    shapes = [tuple(w["shape"]) for w in weights]
    dims = [shapes[0][0]] + [s[1] for s in shapes] if layout == "row" else \
        [shapes[0][1]] + [s[0] for s in shapes]
    hidden = next((a for a in ACTIVATIONS if any(a in n for n in names)), "relu")
    loss = "ce" if any(w in n for n in names for w in CE_WORDS) else "l2"
    spec = {"input_dim": dims[0], "layers": dims[1:],
            "activations": [hidden] * (len(shapes) - 1) + ["identity"], "loss": loss,
            "reduction": "mean"}
    lines.append(f"    # spec from the weights' shapes: {python_comment(_shapes(weights))}; the "
                 f"hidden activation ({hidden}) and the loss ({loss}) from your functions' "
                 "names; reduction 'mean' is a guess (dL/do divided by N?)")
    lines.append(f"    \"spec\": {spec!r},")
    if layout == "column":
        lines.append(_entry("layout", "column", "weights are [out, in]: column vectors"))
    biases = _biases(_layered(arrays, BIAS, (1, 2)), dims[1:])
    if len(biases) == len(weights):
        ndim = len(biases[0]["shape"])
        shape = "flat" if ndim == 1 else ("column" if biases[0]["shape"][-1] == 1 and
                                          biases[0]["shape"][0] != 1 else "row")
        if shape != layout:
            lines.append(_entry("bias_shape", shape, f"{biases[0]['expr']} has shape "
                                f"{tuple(biases[0]['shape'])}"))
    if model:
        sizes = ", ".join(map(str, model["sizes"]))
        lines.append(_entry("model", f"{model['name']}({sizes})", f"{model['name']}("
                            f"{', '.join(model['params'])}): built with these sizes, it held "
                            "the weights and biases named here"))
        if dims[:len(model["sizes"])] != model["sizes"]:
            lines.append(f"    # the weights found ({python_comment(_shapes(weights))}) do not "
                         f"account for every size the model was built with ({sizes}): check "
                         "'spec' and 'W'")
    lines += _arrays_and_passes(model, weights, biases, len(biases) == len(weights),
                                "a batch of 5")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _arrays_and_passes(model: dict[str, Any] | None, weights: list[dict[str, Any]],
                       biases: list[dict[str, Any]], show_biases: bool, batch: str) -> list[str]:
    """The ``W`` entry (and ``b`` when ``show_biases``): where the learner's arrays live; then
    ``forward`` and ``backward``: the call of the ``model``'s that ran as each pass on
    ``batch`` (the gradients' entries after the backward's), or a line asking for it."""
    lines = [_entry("W", _template([w["expr"] for w in weights]),
                    "where the weights live: " + _shapes(weights))]
    if show_biases:
        lines.append(_entry("b", _template([b["expr"] for b in biases]),
                            "where the biases live: " + _shapes(biases)))
    for role in ("forward", "backward"):
        call = model.get(role) if model else None
        if call is None:
            lines.append(f"    # {python_string(role)}: ...,  # no method of yours ran as the "
                         f"{role} pass with (x) or (x, y): give it yourself")
            continue
        lines.append(_entry(role, call["call"], f"ran on {batch} and returned "
                            f"{len(call['result'])} array(s)"))
        if role == "backward":
            lines += _gradients(call, [tuple(w["shape"]) for w in weights],
                                [tuple(b["shape"]) for b in biases])
    return lines


def _gradients(call: dict[str, Any], weights: list[tuple[int, ...]],
               biases: list[tuple[int, ...]]) -> list[str]:
    """The ``dW``/``db`` entries: arrays the backward returned (or left on the model) with the
    weights' and biases' shapes."""
    lines = []
    for role, shapes, pattern in (("dW", weights, GRAD_WEIGHT), ("db", biases, GRAD_BIAS)):
        if not shapes:
            continue
        for source in (call["result"], [a for a in call["model"] if "grad" in a["expr"].lower()
                                        or re.search(r"\.d[wb]", a["expr"].lower())]):
            picked = _pick(source, shapes, pattern)
            if picked:
                lines.append(_entry(role, _template(picked), "arrays with the shapes of "
                                    f"{'the weights' if role == 'dW' else 'the biases'}"))
                break
        else:
            lines.append(f"    # {python_string(role)}: ...,  # not found by shape: give it")
    return lines
