"""The one place parity is judged: per-tensor comparison, tolerances, ordering, first divergence."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import compare
from nnparity.backends.compare import (
    collect,
    compare_all,
    compare_tensor,
    describe_divergence,
    first_divergence,
    tolerance,
)
from nnparity.reference import MLPSpec, gradients, init_params


def test_tolerance_table() -> None:
    assert tolerance("float64") == 1e-10
    assert tolerance("float32", ("dense",)) == 1e-5
    assert tolerance("float32", ("conv",)) == 1e-4
    assert compare.GRADCHECK_TOLERANCE == 1e-7
    with pytest.raises(ValueError, match="no tolerance"):
        tolerance("float16")


def test_equal_tensors_pass_with_zero_error() -> None:
    a = np.arange(6.0).reshape(2, 3)
    c = compare_tensor("forward", "z.layer1", a.copy(), a, 1e-10)
    assert c.passed and c.max_abs == 0 and c.max_rel == 0 and c.shape == (2, 3)


def test_relative_error_is_relative_to_the_reference_scale() -> None:
    expected = np.array([1000.0, 1e-3])
    actual = np.array([1000.0, 2e-3])  # the small entry is off by 100 %, but 1e-6 of the scale
    c = compare_tensor("grad", "W1", actual, expected, 1e-5)
    assert c.max_abs == pytest.approx(1e-3) and c.max_rel == pytest.approx(1e-6) and c.passed


def test_shape_mismatch_fails_before_values() -> None:
    c = compare_tensor("grad", "W1", np.zeros((3, 2)), np.zeros((2, 3)), 1e-10)
    assert not c.passed and c.max_rel == np.inf and "shape (3, 2) != (2, 3)" in c.note


def test_transposed_square_weight_is_caught_by_values() -> None:
    w = np.arange(4.0).reshape(2, 2)
    assert not compare_tensor("grad", "W1", w.T, w, 1e-10).passed


def test_dtype_mismatch_fails() -> None:
    c = compare_tensor("forward", "h.layer1", np.zeros(3, np.float32), np.zeros(3), 1e-5)
    assert not c.passed and "dtype float32 != float64" in c.note


def test_missing_tensor_fails() -> None:
    c = compare_tensor("delta", "layer2", None, np.ones(2), 1e-10)
    assert not c.passed and c.note == "missing"


def test_nan_in_actual_fails() -> None:
    c = compare_tensor("loss", "loss", np.array(np.nan), np.array(1.0), 1e-10)
    assert not c.passed and c.max_rel == np.inf
    assert c.note == "non-finite: NaN in loss in the backend only"


def test_matching_non_finite_values_fail() -> None:
    a = np.array([1.0, np.inf, np.nan])
    same = compare_tensor("forward", "h.layer1", a.copy(), a, 1e-10)
    assert not same.passed and same.note == "non-finite: NaN and inf in h.layer1 on both sides"
    assert not compare_tensor("forward", "h.layer1", np.array([1.0, -np.inf, np.nan]), a,
                              1e-10).passed


def test_zero_reference() -> None:
    zeros = np.zeros((2, 2))
    exact = compare_tensor("delta", "layer1", zeros.copy(), zeros, 1e-10)
    assert exact.passed and exact.max_rel == 0
    # Against an all-zero reference any non-zero entry is an infinite-ish relative error.
    off = compare_tensor("delta", "layer1", np.full((2, 2), 1e-300), zeros, 1e-10)
    assert not off.passed and off.max_abs == 1e-300


def test_empty_tensors_pass() -> None:
    assert compare_tensor("grad", "b1", np.zeros((1, 0)), np.zeros((1, 0)), 1e-10).passed


def _tensors() -> compare.Tensors:
    spec = MLPSpec(3, (4, 2), ("tanh", "identity"), loss="ce")
    params = init_params(spec, "xavier", 0)
    x, y = np.random.default_rng(0).standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
    g = gradients(spec, params, x, y)
    from nnparity.reference import forward

    return collect(forward(spec, params, x), g, [("step1", params)])


def test_collect_order_follows_backprop() -> None:
    keys = list(_tensors())
    assert keys == [
        ("forward", "z.layer1"), ("forward", "h.layer1"),
        ("forward", "z.layer2"), ("forward", "h.layer2"),
        ("loss", "loss"),
        ("delta", "layer2"), ("delta", "layer1"),
        ("grad", "b2"), ("grad", "W2"), ("grad", "b1"), ("grad", "W1"),
        ("update", "step1.W1"), ("update", "step1.b1"),
        ("update", "step1.W2"), ("update", "step1.b2"),
    ]


def test_first_divergence_is_the_earliest_in_order() -> None:
    expected = _tensors()
    actual = dict(expected)
    actual[("delta", "layer1")] = expected[("delta", "layer1")] * 1.5  # earlier in order...
    actual[("grad", "W1")] = expected[("grad", "W1")] * 2.0  # ...than this one
    comparisons = compare_all(actual, expected, 1e-10)
    first = first_divergence(comparisons)
    assert first is not None and (first.stage, first.name) == ("delta", "layer1")
    assert describe_divergence(comparisons) == (
        "forward and loss match; delta of layer1 differs (max rel 5.0e-01)")


def test_sentence_for_all_matching_and_for_a_forward_failure() -> None:
    expected = _tensors()
    assert describe_divergence(compare_all(dict(expected), expected, 1e-10)) == "all tensors match"
    actual = dict(expected)
    actual[("forward", "z.layer1")] = np.zeros((5, 5))
    assert describe_divergence(compare_all(actual, expected, 1e-10)) == (
        "forward of z.layer1 differs (shape (5, 5) != (5, 4))")


def test_compare_all_reports_missing_and_ignores_extra_keys() -> None:
    expected = _tensors()
    actual = {k: v for k, v in expected.items() if k != ("grad", "b1")}
    actual[("grad", "extra")] = np.ones(1)
    comparisons = compare_all(actual, expected, 1e-10)
    assert [c.name for c in comparisons if not c.passed] == ["b1"]
    assert len(comparisons) == len(expected)
