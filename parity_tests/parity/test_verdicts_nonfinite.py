"""Non-finite values never pass: the comparison's reason names the kind, the tensor and the
side(s); finite differences and golden vectors follow the same rule."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import compare_tensor, gradcheck_comparison, nonfinite_kinds
from nnparity.errors import InputError
from nnparity.reference.gradcheck import TensorCheck
from nnparity.reference.spec import MLPSpec
from nnparity.verify.vectors import export

FINITE = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize(("actual", "expected", "note"), [
    ([1.0, np.nan, 3.0], FINITE, "non-finite: NaN in z.layer1 in the backend only"),
    (FINITE, [1.0, np.inf, 3.0], "non-finite: inf in z.layer1 in the reference only"),
    ([np.nan, 2.0, 3.0], [np.nan, 2.0, 3.0], "non-finite: NaN in z.layer1 on both sides"),
    ([-np.inf, 2.0, 3.0], [-np.inf, 2.0, 3.0], "non-finite: inf in z.layer1 on both sides"),
    ([np.inf, np.nan, 3.0], [np.nan, 2.0, 3.0],
     "non-finite: NaN and inf in z.layer1 in the backend, NaN in the reference"),
])
def test_non_finite_values_fail_naming_kind_tensor_and_sides(actual, expected, note):
    for dtype in (np.float64, np.float32):
        c = compare_tensor("forward", "z.layer1", np.asarray(actual, dtype),
                           np.asarray(expected, dtype), 1e-5)
        assert not c.passed and c.note == note
        assert c.max_abs == c.max_rel == np.inf


def test_sides_can_be_named():
    c = compare_tensor("loss", "loss", np.array(np.nan), np.array(1.0), 1e-10,
                       sides=("your result", "the reference"))
    assert c.note == "non-finite: NaN in loss in your result only"


def test_nonfinite_kinds():
    assert nonfinite_kinds(FINITE) == ""
    assert nonfinite_kinds(np.array([np.nan, -np.inf])) == "NaN and inf"


def _check(numeric: list[float], analytic: list[float]) -> TensorCheck:
    return TensorCheck("W1", 2, 2, 0.0, 0.0, 0.0, np.array(numeric), np.array(analytic))


def test_gradcheck_fails_on_non_finite_values_on_either_side():
    assert gradcheck_comparison(_check([1.0, 2.0], [1.0, 2.0]), (2,)).passed
    both = gradcheck_comparison(_check([np.nan, 2.0], [np.nan, 2.0]), (2,))
    assert not both.passed and both.note == "non-finite: NaN in W1 on both sides"
    one = gradcheck_comparison(_check([1.0, np.inf], [1.0, 2.0]), (2,))
    assert not one.passed
    assert one.note == "non-finite: inf in W1 in the finite differences only"


def test_vectors_refuse_a_non_finite_value_and_write_nothing(tmp_path):
    spec = MLPSpec(3, (4, 2), ("sigmoid", "sigmoid"), loss="l2", reduction="sum")
    with pytest.raises(InputError, match=r"vector big: the reference gives inf in W\d_new"):
        export(tmp_path / "v", {"big": spec}, 0, 1000, 1e308)
    assert not (tmp_path / "v").exists()
