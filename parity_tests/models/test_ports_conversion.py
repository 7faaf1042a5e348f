"""The catalogue of weight-conversion mistakes (:mod:`nnparity.models.conversion`): each mistake,
made on the first model's weights, is named; a correct conversion differs in nothing."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import layout
from nnparity.models.conversion import explain
from nnparity.reference.cnn_spec import CNNSpec, ConvBlock
from nnparity.reference.spec import MLPSpec

CNN = CNNSpec((6, 6, 2), (ConvBlock(3, 3, 1, "VALID", "relu", 2, 2, "VALID"),), (), (), 1.0, 4,
              "ce", "mean")
TOL = 1e-10


def _weights(spec) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {k: rng.standard_normal(shape) for k, shape in spec.param_shapes().items()}


@pytest.mark.parametrize(("name", "mistake", "named"), [
    ("conv1.W", lambda w: w.transpose(1, 0, 2, 3), "kernel spatially transposed"),
    ("conv1.W", lambda w: w[::-1, ::-1], "kernel flipped"),
    ("conv1.W", lambda w: layout.hwio_to_oihw(w).reshape(w.shape), "OIHW/HWIO mix-up"),
    ("fc1.W", lambda w: layout.dense_rows_nhwc_to_nchw(w, *CNN.flat_map), "flatten order"),
    ("fc1.W", lambda w: w.T.reshape(w.shape), "dense weight not transposed"),
    ("fc1.b", np.zeros_like, "bias missing"),
    ("conv1.b", lambda b: np.roll(b, 1), "bias shifted by one unit"),
])
def test_each_conversion_mistake_is_named(name, mistake, named):
    ours = _weights(CNN)
    theirs = {**ours, name: mistake(ours[name])}
    found = explain(CNN, ours, theirs, TOL)
    assert list(found) == [name]
    assert found[name].startswith(named)


def test_a_correct_conversion_differs_in_nothing_and_an_unknown_difference_is_unexplained():
    ours = _weights(CNN)
    assert explain(CNN, ours, {k: v.copy() for k, v in ours.items()}, TOL) == {}
    assert explain(CNN, ours, {**ours, "fc1.b": ours["fc1.b"] + 1}, TOL) == {"fc1.b": None}


def test_per_unit_prelu_slopes_copied_as_one_shared_value_are_named():
    spec = MLPSpec(3, (4, 2), ("prelu", "identity"), prelu_slopes="unit")
    ours = _weights(spec)
    found = explain(spec, ours, {**ours, "a1": np.full_like(ours["a1"], 0.25)}, TOL)
    assert found == {"a1": "PReLU slopes shared: every unit's slope is 0.25 where the first "
                           "model has one slope per unit"}
