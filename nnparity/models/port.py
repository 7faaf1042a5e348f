"""The port check: two users' models (e.g. a Keras original and its PyTorch port) against each
other, with the first model's weights transferred to the second through the canonical layout
(flatten order, HWIO/OIHW kernels, ``W`` vs ``W.T``: :mod:`nnparity.backends.layout`).

Forward, loss, deltas and gradients of the two are compared on a seeded batch with dropout off
(each framework draws its own masks; each model's dropout is checked against the reference in
its own check). Optimiser steps are not compared between the two: where the frameworks'
optimisers differ by design (torch's Adam vs Keras' epsilon-hat Adam, Keras' float32
hyperparameters), each model is judged against its own variant in its own check, and the port's
note states the expected drift between the two formulations after :data:`check.STEPS` steps,
measured by running the reference with each.

Before the transfer, the second model's own weights are compared with the first's: when they
are the same but for the rows of the first dense layer after the convolutions, which are the
first model's rows in the other flatten order (NCHW vs NHWC), the port's weights were converted
without that permutation, the classic flatten-order bug, and the note says so.
"""

from __future__ import annotations

import time

import numpy as np

from nnparity.backends import layout, registry
from nnparity.backends.compare import collect, compare_all, compare_tensor, tolerance
from nnparity.errors import InputError
from nnparity.reference.family import Spec
from nnparity.reference.params import Params
from nnparity.report import CaseResult

from .check import STEPS, UserModel, batches

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
        raise InputError(f"{labels[1]} is not a port of {labels[0]}: parameter {diff} is "
                         f"{shapes_b.get(diff)} there and {shapes_a.get(diff)} here{hint}")
    for what in ("loss", "reduction", "layer_names"):
        if getattr(a.spec, what) != getattr(b.spec, what):
            raise InputError(f"{labels[1]} is not a port of {labels[0]}: {what} "
                             f"{getattr(b.spec, what)} vs {getattr(a.spec, what)}")


def drift(a: UserModel, b: UserModel, seed: int, label: str) -> str | None:
    """The expected drift between the two models' optimisers, measured on the reference."""
    if a.optimizer is None or b.optimizer is None:
        return None
    if a.optimizer == b.optimizer:
        return None
    reference, params = registry.get("numpy"), a.params()
    runs = []
    for model in (a, b):
        trainer = reference.trainer(a.spec, params, model.optimizer)
        for x, y in batches(a.spec, label, seed, STEPS):
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


def _dtype(a: UserModel, b: UserModel) -> str:
    """The looser of the two models' dtypes."""
    return "float32" if "float32" in (a.spec.dtype, b.spec.dtype) else "float64"


def flatten_order(spec: Spec, ours: Params, theirs: Params, dtype: str) -> str | None:
    """The flatten-order bug in the second model's own weights ``theirs`` relative to the
    first's ``ours`` (canonical layout; module docstring)."""
    if not spec.flat_params:
        return None
    tol = tolerance(dtype, spec.family)
    same = [compare_tensor("update", k, theirs[k], ours[k], tol).passed
            for k in ours if k not in spec.flat_params]
    if not all(same):
        return None
    for name in spec.flat_params:
        for permuted in (layout.dense_rows_nhwc_to_nchw(ours[name], *spec.flat_map),
                         layout.dense_rows_nchw_to_nhwc(ours[name], *spec.flat_map)):
            check = compare_tensor("update", name, theirs[name], permuted, tol)
            if check.passed and not compare_tensor("update", name, theirs[name], ours[name],
                                                   tol).passed:
                return (f"flatten order: the second model's own weights are the first's, but "
                        f"the rows of {name} are in the other flatten order (NCHW vs NHWC; max "
                        f"rel {check.max_rel:.1e} once permuted): converted without permuting the "
                        "first dense layer's rows; the port check below transfers them through "
                        "the canonical layout instead")
    return None


def port(a: UserModel, b: UserModel, labels: tuple[str, str], *, seed: int = 0,
         own: tuple[Params, Params] | None = None) -> CaseResult:
    """``b`` against ``a`` with ``a``'s weights transferred to ``b``; ``own``: the two models'
    weights as loaded (before their checks trained them), searched for the flatten-order bug
    (default: their weights now)."""
    _same_network(a, b, labels)
    label = f"{labels[0]} -> {labels[1]}"
    result = CaseResult(label, BACKEND, spec=a.spec.to_dict())
    started = time.perf_counter()
    bug = flatten_order(a.spec, *(own or (a.params(), b.params())), _dtype(a, b))
    if bug:
        result.notes.append(bug)
    b.load_params(a.params())
    x, y = batches(a.spec, label, seed, 1)[0]
    runs = [model.run(x, y, training=False) for model in (a, b)]
    expected, actual = (collect(trace, grads) for trace, grads, _ in runs)
    result.comparisons = compare_all(actual, expected, tolerance(_dtype(a, b), a.spec.family))
    note = drift(a, b, seed, label)
    if note:
        result.notes.append(note)
    result.seconds = time.perf_counter() - started
    return result
