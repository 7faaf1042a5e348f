"""The port check: two users' models (e.g. a PyTorch original and its hand-written Keras port),
each with the weights its own file gives (built in the builder, or ``--weights``), compared
layer by layer: forward, loss, deltas and gradients, on a batch drawn from the seed with dropout
off (each framework draws its own masks; each model's dropout is checked against the reference
in its own check).

Where they differ, the second model is re-run with the first model's weights transferred to it
through the canonical layout (flatten order, HWIO/OIHW kernels, ``W`` vs ``W.T``:
:mod:`nnparity.backends.layout`). When that re-run matches, the architectures are equivalent and
the weights are not: the differing tensors are explained by the conversion mistakes of
:mod:`.conversion` (flatten order, transposed or flipped kernel, OIHW/HWIO mix-up, dense weight
not transposed, bias missing or shifted, PReLU slopes shared), each confirmed by that re-run.
With ``transfer=True`` (``--transfer-weights``) the transferred comparison is the verdict (the
architecture comparison) and the as-loaded one is stated in a note. A network with batch
normalisation also compares the running statistics of one training pass, with the first
model's weights (:mod:`.batchnorm_port`, which diagnoses its conventions).

Optimiser steps are not compared between the two directly: each model's updates are judged
against the reference's with its own optimiser in its own check; where the frameworks'
optimisers differ by design (torch's Adam vs Keras' epsilon-hat Adam, Keras' float32
hyperparameters), the port's note states the expected drift between the two formulations after
:data:`check.STEPS` steps, measured by running the reference with each.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nnparity.backends import registry
from nnparity.backends.compare import (
    Comparison,
    collect,
    compare_all,
    compare_tensor,
    describe_divergence,
    first_divergence,
    tolerance_for,
)
from nnparity.errors import InputError
from nnparity.parity.report import CaseResult, Diagnosis
from nnparity.reference.layers.residual import each_layer
from nnparity.reference.params import Params

from . import batchnorm_port
from .check import STEPS, UserModel, batches
from .conversion import explain

BACKEND = "port"


def _same_network(a: UserModel, b: UserModel, labels: tuple[str, str]) -> None:
    shapes_a, shapes_b = a.spec.param_shapes(), b.spec.param_shapes()
    if shapes_a != shapes_b:
        diff = next((k for k in shapes_a if shapes_b.get(k) != shapes_a[k]), None) \
            or next(k for k in shapes_b if k not in shapes_a)
        hint = ""
        if diff in shapes_a and diff in shapes_b and a.spec.param_kind(diff) == "slope":
            hint = ("; PReLU slope sharing: Keras' PReLU() has one slope per unit, torch's "
                    "nn.PReLU() one shared (use nn.PReLU(num_parameters=D), or "
                    "PReLU(shared_axes=[1]) in Keras)")
        paddings = [(x.padding, y.padding) for x, y in zip(_convs(a), _convs(b), strict=False)
                    if x.padding != y.padding]
        if paddings:
            hint += (f"; a convolution pads {paddings[0][1]!r} there and {paddings[0][0]!r} here "
                     f"({SETTING_HINTS[('conv2d', 'padding')]})")
        raise InputError(f"{labels[1]} is not a port of {labels[0]}: parameter {diff} is "
                         f"{shapes_b.get(diff)} there and {shapes_a.get(diff)} here{hint}")
    for what in ("loss", "reduction", "layer_names"):
        if getattr(a.spec, what) != getattr(b.spec, what):
            raise InputError(f"{labels[1]} is not a port of {labels[0]}: {what} "
                             f"{getattr(b.spec, what)} vs {getattr(a.spec, what)}")


def _convs(model: UserModel) -> list[Any]:
    """The model's convolution layers, in order."""
    return [layer for layer in each_layer(model.spec.net) if layer.kind == "conv2d"]


def drift(a: UserModel, b: UserModel, seed: int) -> str | None:
    """The expected drift between the two models' optimisers, measured on the reference."""
    if a.optimizer is None or b.optimizer is None:
        return None
    if a.optimizer == b.optimizer:
        return None
    reference, params = registry.get("numpy"), a.params()
    runs = []
    for model in (a, b):
        trainer = reference.trainer(a.spec, params, model.optimizer)
        for x, y in batches(a.spec, seed, STEPS):
            trainer.step(x, y)
        runs.append(trainer.params())
    worst = max((compare_tensor("update", k, runs[1][k], runs[0][k], np.inf) for k in params),
                key=lambda c: c.max_rel)
    oa, ob = a.optimizer, b.optimizer
    what = (f"{oa.name} differs by design ({oa.variant}'s vs {ob.variant}'s formulation)"
            if oa.name == ob.name and oa.variant != ob.variant
            else f"the optimisers differ ({oa.variant} {oa.name} vs {ob.variant} {ob.name})")
    return (f"{what}: each is judged against its own in its own check; expected drift after "
            f"{STEPS} steps (the reference run with each): max rel {worst.max_rel:.1e} in "
            f"{worst.name}")


EQUIVALENT = "the architectures are equivalent; your weights are not"
GELU_DEFAULTS = ("torch's nn.GELU() and keras.activations.gelu (\"gelu\") are exact (erf) by "
                 "default; keras.ops.gelu, jax.nn.gelu and flax's nnx.gelu the tanh form")
SETTING_HINTS = {
    ("gelu", "approximate"): GELU_DEFAULTS,
    ("layernorm", "epsilon"): "LayerNorm's epsilon left at the other framework's default: "
                              "torch's nn.LayerNorm has eps=1e-5, Keras' LayerNormalization "
                              "epsilon=1e-3 (flax's nnx.LayerNorm 1e-6); give the port the "
                              "original's value",
    ("conv2d", "padding"): "TensorFlow's SAME pads the odd row and column at the bottom and "
                           "right (a stride-2 or even-sized convolution); torch's padding=p "
                           "puts p zeros on every side: pad explicitly, F.pad(x, (0, 1, 0, 1)) "
                           "before a padding=0 convolution, or ZeroPadding2D(p) before a VALID "
                           "Conv2D",
    ("avgpool", "count_include_pad"): "torch's AvgPool2d counts the padded cells in the mean "
                                      "(count_include_pad=True by default), Keras' SAME "
                                      "averages the real cells only; set count_include_pad="
                                      "False in torch (or pad explicitly in Keras)",
}
"""``(kind, field)`` -> what a port that differs in that setting most likely got wrong."""


def layer_difference(a: UserModel, b: UserModel, labels: tuple[str, str],
                     confirmed: str | None = None) -> Diagnosis | None:
    """The first layer whose settings differ between the two models' layer lists (same
    parameters, another computation: GELU's form, a layernorm's epsilon, which cells an
    average pool counts, a pool's kind), as a diagnosis naming the frameworks' defaults for
    that setting; None when the lists agree. ``confirmed``: the evidence of the reference
    re-run with the second model's settings (:func:`rerun_settings`)."""
    for first, second in zip(a.spec.net, b.spec.net, strict=False):
        ours, theirs = first.to_dict(), second.to_dict()
        if ours != theirs:
            what = f"{first.kind} {ours} in {labels[0]} vs {theirs} in {labels[1]} " \
                   f"(layer {first.name})"
            fields = [k for k in {**ours, **theirs} if ours.get(k) != theirs.get(k)]
            hints = [SETTING_HINTS[(first.kind, k)] for k in fields
                     if first.kind == second.kind and (first.kind, k) in SETTING_HINTS]
            hint = "".join(f"; {h}" for h in hints)
            evidence = "the two models' layer lists as traced" + (
                f"; {confirmed}" if confirmed else "")
            return Diagnosis("layer-settings", f"the models compute different layers: {what}"
                             f"{hint}" + (f" (confirmed: {confirmed})" if confirmed else ""),
                             evidence)
    return None


def rerun_settings(a: UserModel, b: UserModel, params: Params, batch: tuple,
                   tol: float) -> str | None:
    """The reference re-run with the second model's layer list (its settings) and the first
    model's ``params``: the evidence that the settings explain the second model's output
    (None when that re-run does not match it)."""
    x = batch[0]
    theirs = b.run(*batch, training=False)[0].output
    rerun = registry.get("numpy").forward(b.spec, params, x).output
    check = compare_tensor("forward", "output", theirs, rerun, tol)
    if not check.passed:
        return None
    return ("the reference re-run with the second model's layer settings and the first's "
            f"weights reproduces the second's output, max rel {check.max_rel:.1e}")


def _dtype(a: UserModel, b: UserModel) -> str:
    """The looser of the two models' dtypes."""
    return "float32" if "float32" in (a.spec.dtype, b.spec.dtype) else "float64"


def _compare(a: UserModel, b: UserModel, batch: tuple, tol: float) -> list[Comparison]:
    """Every tensor of ``b`` against ``a``'s on ``batch``, in evaluation mode."""
    runs = [model.run(*batch, training=False) for model in (a, b)]
    expected, actual = (collect(trace, grads) for trace, grads, _ in runs)
    return compare_all(actual, expected, tol)


def _weights(a: UserModel, own: tuple[Params, Params], tol: float, rerun: list[Comparison],
             transfer: bool) -> Diagnosis:
    """Why the weights differ: each differing tensor's conversion mistake, confirmed by
    ``rerun`` (the second model with the first's weights, which matched)."""
    found = explain(a.spec, *own, tol)
    named = [f"{k}: {text}" for k, text in found.items() if text]
    unknown = [k for k, text in found.items() if not text]
    if len(unknown) == len(own[0]):
        parts = ["every weight differs from the first model's by no known conversion mistake: "
                 "the second model has weights of its own (e.g. its own random initialisation)"
                 + ("" if transfer else "; convert the first's, or compare the architectures "
                    "with --transfer-weights")]
    else:
        parts = named + ([f"{', '.join(unknown)} differ{'s' * (len(unknown) == 1)} from the "
                          "first model's by no known conversion mistake"] if unknown else [])
    worst = max((c.max_rel for c in rerun), default=0.0)
    parts = parts or ["no single weight differs beyond the tolerance"]
    evidence = (f"re-run with the first model's weights converted through the canonical "
                f"layout, every tensor matches, max rel {worst:.1e}")
    return Diagnosis("weights-conversion", f"{EQUIVALENT}: {'; '.join(parts)} (confirmed: "
                     f"{evidence}; --write-weights FILE writes that conversion)", evidence)


def port(a: UserModel, b: UserModel, labels: tuple[str, str], *, seed: int = 0,
         own: tuple[Params, Params] | None = None, transfer: bool = False) -> CaseResult:
    """``b`` against ``a`` layer by layer, each with its own weights ``own`` (canonical; default:
    their weights now); ``transfer``: the verdict is the comparison with ``a``'s weights
    transferred to ``b`` (module docstring); where their layer lists differ in a setting, the
    diagnosis is confirmed by the reference re-run with ``b``'s settings. The models are left
    with ``b`` holding the transferred weights."""
    _same_network(a, b, labels)
    own = own or (a.params(), b.params())
    result = CaseResult(f"{labels[0]} -> {labels[1]}", BACKEND, spec=a.spec.to_dict())
    started = time.perf_counter()
    tol = tolerance_for(a.spec, _dtype(a, b))
    batch = batches(a.spec, seed, 1)[0]
    a.load_params(own[0])
    b.load_params(own[1])
    as_loaded = _compare(a, b, batch, tol)
    b.load_params(own[0])
    transferred = as_loaded if all(c.passed for c in as_loaded) else _compare(a, b, batch, tol)
    result.comparisons = transferred if transfer else as_loaded
    if first_divergence(as_loaded) is not None:
        weights = (_weights(a, own, tol, transferred, transfer)
                   if first_divergence(transferred) is None else None)
        if transfer:
            result.notes.append(f"with each model's own weights: "
                                f"{describe_divergence(as_loaded)}"
                                + (f"; {weights.message}" if weights else ""))
        elif weights:
            result.diagnoses.append(weights)
    state, notes, found = batchnorm_port.training_pass(a, b, batch, tol, labels)
    result.comparisons += state
    result.notes += notes
    evaluated = batchnorm_port.evaluation(a, b, batch, result.comparisons, tol, labels)
    found += [evaluated] if evaluated else []
    result.diagnoses += found
    if not found and first_divergence(result.comparisons) is not None \
            and layer_difference(a, b, labels):
        result.diagnoses.append(layer_difference(
            a, b, labels, rerun_settings(a, b, own[0], batch, tol)))
    note = drift(a, b, seed)
    if note:
        result.notes.append(note)
    result.seconds = time.perf_counter() - started
    return result
