"""Batch normalisation in a port: the running statistics one training pass leaves, and the
convention mistakes that explain a difference, each confirmed by re-running the reference with
the mistake.

A port compares its two models in evaluation mode (:mod:`.port`), where batch normalisation
reads the running statistics and never updates them: a momentum copied verbatim between
frameworks would pass unseen. So for a network with running statistics (and no dropout: each
framework would draw its own masks) both models also run one training pass on the batch, and
the second model's running statistics are compared (``train.<layer>.mean``/``.var``) with the
reference's training pass on the first model's weights and settings. The one difference no
setting removes, the variance estimator (torch keeps the unbiased running variance, Keras and
Flax the biased one: a factor ``m/(m-1)`` on each batch's contribution), is judged as Adam's
variants are: the reference runs with the second model's estimator, and a note states the
difference by design and its size.

Diagnoses (each a :class:`~nnparity.parity.report.Diagnosis`):

- ``batchnorm-momentum``: the second model's running statistics are the reference's with its
  own momentum (e.g. torch's ``momentum=0.1``, the weight of the *new* batch, copied verbatim
  into Keras' ``momentum``, the weight of the *old* value);
- ``batchnorm-epsilon``: the forward differs and the reference with the second model's epsilon
  reproduces its output (epsilon left at the other framework's default: torch 1e-5, Keras
  1e-3);
- ``batchnorm-training-mode``: the evaluation output differs and the reference's forward on the
  batch's statistics reproduces it (a model left in training mode for evaluation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnparity.backends.compare import Comparison, compare_tensor, first_divergence
from nnparity.parity.report import Diagnosis
from nnparity.reference import network
from nnparity.reference.params import Params

CONVENTIONS = ("torch's BatchNorm momentum (default 0.1) weighs the new batch, Keras' "
               "BatchNormalization and Flax NNX's BatchNorm momentum (default 0.99) the old "
               "value: torch momentum m is Keras/Flax momentum 1 - m; epsilon defaults: torch "
               "1e-5, Keras 1e-3, Flax 1e-5")
"""The three frameworks' conventions, as a diagnosis cites them."""


def _batchnorms(spec: Any) -> list[Any]:
    return [layer for layer in spec.net if layer.kind == "batchnorm"]


def _settings(spec: Any, source: Any, fields: tuple[str, ...]) -> Any:
    """``spec`` with the ``fields`` of each batchnorm layer taken from ``source``'s."""
    theirs = {layer.name: layer for layer in _batchnorms(source)}
    data = spec.to_dict()
    data["net"] = [{**entry, **{f: getattr(theirs[layer.name], f) for f in fields}}
                   if layer.kind == "batchnorm" and layer.name in theirs else entry
                   for entry, layer in zip(data["net"], spec.net, strict=True)]
    return type(spec).from_dict(data)


def _state(model: Any) -> Params:
    spec = model.spec
    return {k: v for k, v in model.params().items() if spec.is_state(k)}


def _trained_state(model: Any, batch: tuple) -> Params:
    """The running statistics after one training pass of ``model`` on ``batch``; the model is
    left with the parameters it had."""
    before = model.params()
    model.run(*batch, training=True)
    after = _state(model)
    model.load_params(before)
    return after


def training_pass(a: Any, b: Any, batch: tuple, tol: float,
                  labels: tuple[str, str]) -> tuple[list[Comparison], list[str], list[Diagnosis]]:
    """``(comparisons, notes, diagnoses)`` of the second model's running statistics after one
    training pass against the reference's with the first model's weights and settings (the
    second's variance estimator); nothing for a network without running statistics or with
    dropout."""
    spec = a.spec
    if not _batchnorms(spec):
        return [], [], []
    if spec.dropout_units:
        return [], ["running statistics not compared: the network has dropout, and each "
                    "framework draws its own masks in a training pass"], []
    params = a.params()
    x, y = batch
    own = _settings(spec, b.spec, ("variance",))
    expected = network.gradients(own, params, x, y).state
    actual = _trained_state(b, batch)
    comparisons = [compare_tensor("update", f"train.{k}", actual.get(k), v, tol)
                   for k, v in expected.items()]
    notes = []
    if own != spec:
        first = network.gradients(spec, params, x, y).state
        worst = max((compare_tensor("update", k, expected[k], v, np.inf)
                     for k, v in first.items()), key=lambda c: c.max_rel)
        notes.append(f"running variance estimators differ by design ({labels[0]}: "
                     f"{_batchnorms(spec)[0].variance}, {labels[1]}: "
                     f"{_batchnorms(b.spec)[0].variance}; no setting of either framework "
                     "changes it): the second is judged against the reference with its own; "
                     f"expected difference after one training pass: max rel "
                     f"{worst.max_rel:.1e} in {worst.name}")
    diagnoses = []
    if first_divergence(comparisons) is not None:
        found = _momentum(own, b, params, batch, actual, tol, labels)
        diagnoses += [found] if found else []
    return comparisons, notes, diagnoses


def _momentum(spec: Any, b: Any, params: Params, batch: tuple, actual: Params, tol: float,
              labels: tuple[str, str]) -> Diagnosis | None:
    """The reference re-run with the second model's momenta reproduces its running statistics."""
    mine = {layer.name: layer.momentum for layer in _batchnorms(spec)}
    theirs = {layer.name: layer.momentum for layer in _batchnorms(b.spec)}
    differing = [name for name in mine if theirs.get(name) != mine[name]]
    if not differing:
        return None
    rerun = network.gradients(_settings(spec, b.spec, ("momentum",)), params, *batch).state
    checks = [compare_tensor("update", k, actual.get(k), v, tol) for k, v in rerun.items()]
    if not all(c.passed for c in checks):
        return None
    layer = differing[0]
    evidence = (f"the reference re-run with momentum {theirs[layer]} reproduces the running "
                f"statistics of {labels[1]} (max rel {max(c.max_rel for c in checks):.1e})")
    return Diagnosis(
        "batchnorm-momentum",
        f"momentum convention: {layer} keeps {theirs[layer]:g} of the old running value in "
        f"{labels[1]} but {mine[layer]:g} in {labels[0]} (the reference's momentum is the "
        f"weight of the old value): a momentum copied verbatim between frameworks? "
        f"{CONVENTIONS} (confirmed: {evidence})", evidence)


def evaluation(a: Any, b: Any, batch: tuple, comparisons: list[Comparison], tol: float,
               labels: tuple[str, str]) -> Diagnosis | None:
    """Why the second model's evaluation forward differs: its epsilon, or batch statistics at
    evaluation (left in training mode), each confirmed by the reference's re-run."""
    first = first_divergence(comparisons)
    if first is None or first.stage != "forward" or not _batchnorms(a.spec):
        return None
    params, x = a.params(), batch[0]
    output = b.run(*batch, training=False)[0].output
    eps = _settings(a.spec, b.spec, ("epsilon",))
    if eps != a.spec:
        rerun = compare_tensor("forward", "output", output,
                               network.forward(eps, params, x).output, tol)
        if rerun.passed:
            layer = next(n for n, m in zip(a.spec.net, eps.net, strict=True)
                         if n.kind == "batchnorm" and n != m)
            theirs = next(m for m in eps.net if m.name == layer.name)
            evidence = (f"the reference re-run with epsilon {theirs.epsilon:g} reproduces "
                        f"{labels[1]}'s output (max rel {rerun.max_rel:.1e})")
            return Diagnosis(
                "batchnorm-epsilon",
                f"epsilon: {layer.name} adds {theirs.epsilon:g} to the variance in {labels[1]} "
                f"but {layer.epsilon:g} in {labels[0]}: left at the other framework's default? "
                f"{CONVENTIONS} (confirmed: {evidence})", evidence)
    return training_mode(b.spec, params, x, output, tol, labels[1])


def training_mode(spec: Any, params: Params, x: np.ndarray, output: np.ndarray, tol: float,
                  label: str) -> Diagnosis | None:
    """The reference's forward on the batch's statistics reproduces an evaluation ``output``."""
    if not _batchnorms(spec) or spec.dropout_units:
        return None
    rerun = compare_tensor("forward", "output", output,
                           network.forward(spec, params, x, training=True).output, tol)
    if not rerun.passed:
        return None
    evidence = (f"the reference's forward on the batch's statistics reproduces its evaluation "
                f"output (max rel {rerun.max_rel:.1e})")
    return Diagnosis(
        "batchnorm-training-mode",
        f"{label} evaluates on the batch's statistics, not the running ones: a model left in "
        f"training mode for evaluation (torch: model.eval(); Keras: training=False; Flax: "
        f"model.eval(), or no use_running_average=False in __call__) "
        f"(confirmed: {evidence})", evidence)
