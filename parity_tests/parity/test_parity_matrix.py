"""The parity matrix: every case of :mod:`nnparity.parity.cases` on every installed framework
backend.

Default cases run in the ordinary test run; the cases only in ``--full`` are marked ``slow``.
A backend that is not installed is skipped with the registry's reason (``pytest -rs``). The
structure of the covering designs is tested too, and that the runner catches known traps.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.numpy_backend import NumpyBackend
from nnparity.parity import cases, runner
from nnparity.reference.train import NumpyTrainer

FRAMEWORKS = tuple(name for name in registry.NAMES if name != "numpy")
DEFAULT = {case.name for case in cases.select("default")}
NAME = re.compile(r"^(?P<activation>\w+)-(?P<loss>l2|ce)-(?P<reduction>sum|mean)-wd(?P<wd>\S+?)-"
                  r"(?P<optimizer>sgd|momentum|adam)-(?P<dtype>f64|f32)-b(?P<batch>\d+)-"
                  r"(?P<architecture>\w+)$")


def _matrix() -> Iterator[Any]:
    for case in cases.select("full"):
        for name in FRAMEWORKS:
            marks = [getattr(pytest.mark, name)]
            if case.name not in DEFAULT:
                marks.append(pytest.mark.slow)
            yield pytest.param(case, name, id=f"{case.name}-{name}", marks=marks)


def _installed(name: str) -> Any:
    why = registry.reason(name)
    if why is not None:
        pytest.skip(f"{name} backend {why}")
    return registry.get(name)


@pytest.mark.parametrize("case, name", list(_matrix()))
def test_backend_matches_reference(case: cases.Case, name: str) -> None:
    result = runner.run_case(case, _installed(name), name=name)
    worst = result.worst()
    assert result.passed, f"{result.sentence} (worst: {worst})"


@pytest.mark.parametrize("case", cases.select("default", dtype="float64"),
                         ids=lambda c: c.name)
def test_reference_matches_finite_differences(case: cases.Case) -> None:
    result = runner.run_case(case, registry.get("numpy"), name="numpy")
    assert result.comparisons and result.passed, result.sentence


def test_numpy_float32_cases_are_skipped_with_a_reason() -> None:
    case = cases.select("quick", dtype="float32")[0]
    result = runner.run_case(case, registry.get("numpy"), name="numpy")
    assert result.status == "skip" and "float64" in (result.skipped or "")


# --- the covering designs ------------------------------------------------------------------


def _dimensions(case: cases.Case) -> dict[str, Any]:
    match = NAME.match(case.name)
    assert match, case.name
    return match.groupdict()


def _matrix_cases(selection: str) -> list[dict[str, Any]]:
    return [_dimensions(c) for c in cases.select(selection, model="mlp")
            if c.architecture in cases.ARCHITECTURES]


def _pairs(rows: list[dict[str, Any]], dims: list[str]) -> set[tuple[str, str, str, str]]:
    return {(a, r[a], b, r[b]) for r in rows for a, b in itertools.combinations(dims, 2)}


MAIN = ["activation", "loss", "reduction", "wd", "optimizer", "dtype"]


def test_names_are_unique_and_spell_every_dimension() -> None:
    for selection in cases.SELECTIONS:
        names = [c.name for c in cases.select(selection)]
        assert len(names) == len(set(names))
    case = cases.mlp_case("relu", "ce", "sum", 0.0, "adam", "float64", 4, "iris")
    assert case.name == "relu-ce-sum-wd0-adam-f64-b4-iris"
    assert case.spec.layers == (20, 20, 3) and case.spec.activations == ("relu",) * 2 + (
        "identity",)


def test_default_is_a_pairwise_covering_array_of_all_eight_dimensions() -> None:
    rows = _matrix_cases("default")
    dims = [*MAIN, "batch", "architecture"]
    values = {d: {r[d] for r in _matrix_cases("full")} for d in dims}
    wanted = {(a, va, b, vb) for a, b in itertools.combinations(dims, 2)
              for va in values[a] for vb in values[b]}
    assert _pairs(rows, dims) == wanted
    assert values["architecture"] == set(cases.ARCHITECTURES)
    assert values["batch"] == {"1", "4", "20"}


def test_full_has_every_combination_of_the_math_dimensions() -> None:
    rows = _matrix_cases("full")
    combos = {tuple(r[d] for d in MAIN) for r in rows}
    assert len(combos) == 4 * 2 * 2 * 2 * 3 * 2
    # Rotation: every architecture meets every value of every dimension and every batch size.
    for other in [*MAIN, "batch"]:
        seen = {(r["architecture"], r[other]) for r in rows}
        assert len(seen) == len(cases.ARCHITECTURES) * len({r[other] for r in rows}), other


def test_quick_covers_every_pair_of_the_math_dimensions() -> None:
    rows = _matrix_cases("quick")
    full = _matrix_cases("full")
    assert _pairs(rows, MAIN) == _pairs(full, MAIN)
    assert len(cases.select("quick")) < len(cases.select("default")) < len(cases.select("full"))


def test_cnn_cases_cover_every_pair_and_seed002() -> None:
    chosen = cases.select(model="cnn")
    assert chosen and all(c.spec.family == "cnn" and c.dropout_mask is not None for c in chosen)
    tiny = [c for c in chosen if "seed002" not in c.name]
    dims = list(cases.CNN_DIMENSIONS)
    rows = [dict(zip(dims, _cnn_values(c), strict=True)) for c in tiny]
    wanted = {(a, va, b, vb) for a, b in itertools.combinations(dims, 2)
              for va in cases.CNN_DIMENSIONS[a] for vb in cases.CNN_DIMENSIONS[b]}
    assert {(a, r[a], b, r[b]) for r in rows for a, b in itertools.combinations(dims, 2)} == wanted
    assert {c.dtype for c in chosen if "seed002" in c.name} == {"float64", "float32"}
    assert not any(c.spec.family == "cnn" for c in cases.select(model="mlp"))


def _cnn_values(case: cases.Case) -> tuple:
    block = case.spec.conv[0]
    return (block.kernel, block.stride, block.padding, len(case.spec.conv), case.batch,
            case.optimizer, case.dtype)


def test_odd_shapes_are_in_default() -> None:
    odd = [c.spec for c in cases.select("default") if c.name.startswith("odd-")]
    assert any(1 in s.layers[:-1] for s in odd)  # width-1 hidden layer
    assert any(s.depth == 5 for s in odd)
    assert any(s.loss == "bce" and s.output_dim == 1 for s in odd)
    assert any(not s.bias for s in odd)


def test_output_layer_per_loss() -> None:
    assert cases.output_activation("sigmoid", "ce") == "identity"  # CE takes logits
    assert cases.output_activation("relu", "l2") == "identity"  # no dead output units
    assert cases.output_activation("tanh", "l2") == "tanh"


def test_selection_by_dtype_and_regex() -> None:
    chosen = cases.select("full", pattern=r"^relu-ce-.*-adam-", dtype="float32")
    assert chosen and all(c.name.startswith("relu-ce-") and c.dtype == "float32" for c in chosen)
    assert cases.get(chosen[0].name) is chosen[0]
    with pytest.raises(re.error):
        cases.select(pattern="(")
    with pytest.raises(KeyError):
        cases.get("nope")


def test_case_data_is_deterministic_per_seed() -> None:
    case = cases.select("default")[0]
    a, b, c = case.batches(0), case.batches(0), case.batches(1)
    assert len(a) == cases.STEPS
    assert all(np.array_equal(x1, x2) and np.array_equal(y1, y2)
               for (x1, y1), (x2, y2) in zip(a, b, strict=True))
    assert not np.array_equal(a[0][0], c[0][0])
    p0, p1 = case.params(0), case.params(0)
    assert all(np.array_equal(p0[k], p1[k]) for k in p0)
    assert all(np.any(p0[k] != 0) for k in p0 if k.startswith("b"))  # non-zero biases


def test_ten_reference_steps_stay_finite_and_bounded() -> None:
    for case in cases.select("default"):
        trainer = NumpyTrainer(case.spec, case.params(0), case.make_optimizer())
        losses = [trainer.step(x, y) for x, y in case.batches(0)]
        assert np.all(np.isfinite(losses)), case.name
        assert losses[-1] < 10 * losses[0] + 1, case.name


# --- the runner catches known traps ----------------------------------------------------------


class WrongVariant(NumpyBackend):
    """Claims torch's optimiser formulation but steps with Keras'."""

    name = "wrong-variant"
    optimizer_variant = "torch"

    def trainer(self, spec: Any, params: Any, optimizer: Any, state: Any = None) -> Any:
        return super().trainer(spec, params, dataclasses.replace(optimizer, variant="keras"),
                               state)


@pytest.mark.parametrize("optimizer, stage", [("momentum", r"step[2-9]"), ("adam", r"step1\.")])
def test_runner_catches_a_mismatched_optimizer_formulation(optimizer: str, stage: str) -> None:
    # Keras momentum equals torch's on the first step (both p - lr g): a later step's loss (Keras
    # rounds mu to float32) is the first tensor to show it.
    case = cases.mlp_case("tanh", "ce", "sum", 0.0, optimizer, "float64", 4, "iris")
    result = runner.run_case(case, WrongVariant())
    assert not result.passed
    assert re.search(f"gradients match; update of {stage}", result.sentence), result.sentence


def test_runner_is_generic_over_the_model_family() -> None:
    # A CNN case with a dropout mask: the mask reaches forward/gradients of both sides (a clone
    # of the reference must match exactly), and the reference passes finite differences.
    from nnparity.reference import cnn_spec
    from nnparity.reference.dropout import draw_dropout_mask

    spec = cnn_spec.CNNSpec.tiny()
    mask = draw_dropout_mask(spec, 3, 0)
    case = cases.Case("cnn-tiny-f64-b3", spec, batch=3, architecture="cnn", steps=0,
                      dropout_mask=mask)

    class Clone(NumpyBackend):
        name = "clone"

    cloned = runner.run_case(case, Clone())
    assert cloned.passed and {c.stage for c in cloned.comparisons} == {
        "forward", "loss", "delta", "grad"}, cloned.sentence
    checked = runner.run_case(case, registry.get("numpy"))
    assert checked.passed and checked.comparisons, checked.sentence
    unmasked = runner.run_case(dataclasses.replace(case, dropout_mask=None), Clone())
    assert unmasked.passed  # the reference draws no mask of its own: same without one
