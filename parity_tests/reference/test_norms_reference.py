"""The reference's layernorm, global_avgpool and SAME avgpool: values by hand, their
finite-difference gradients where the generic kind test does not reach (SAME's asymmetric
padding, both divisors), names and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import GRADCHECK_TOLERANCE, SAME_OPS_FLOAT64
from nnparity.reference import NetSpec, network
from nnparity.reference.family import init_params
from nnparity.reference.gradcheck import gradcheck
from nnparity.reference.layers import make_layer
from nnparity.reference.layers.avgpool import avgpool2d
from nnparity.reference.layers.layernorm import layernorm

GRID = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)


def test_same_avgpool_averages_the_real_cells_only_as_keras() -> None:
    """TensorFlow's own example (3x3, window 2, stride 2, SAME): padded cells not counted."""
    assert avgpool2d(GRID, 2, 2, "SAME")[0, :, :, 0].tolist() == [[3.0, 4.5], [7.5, 9.0]]


def test_count_include_pad_divides_by_the_whole_window_as_torch() -> None:
    y = avgpool2d(GRID, 2, 2, "SAME", count_include_pad=True)
    assert y[0, :, :, 0].tolist() == [[3.0, 9 / 4], [15 / 4, 9 / 4]]


def test_layernorm_by_hand() -> None:
    """Row (1, 2, 3): mean 2, biased variance 2/3; eps moves the result."""
    x = np.array([[1.0, 2.0, 3.0]])
    y, _ = layernorm(x, np.array([1.0, 2.0, 1.0]), np.array([0.0, 0.0, 1.0]), 1e-5)
    r = 1 / np.sqrt(2 / 3 + 1e-5)
    np.testing.assert_allclose(y, [[-r, 0.0, r + 1]], rtol=SAME_OPS_FLOAT64)
    keras, _ = layernorm(x, np.ones(3), np.zeros(3), 1e-3)
    assert keras[0, 0] == pytest.approx(-1 / np.sqrt(2 / 3 + 1e-3), rel=SAME_OPS_FLOAT64)


def test_global_avgpool_by_hand() -> None:
    spec = NetSpec((3, 3, 1), [{"kind": "global_avgpool"}, {"kind": "dense", "units": 1}],
                   loss="l2")
    params = {"dense1.W": np.ones((1, 1)), "dense1.b": np.zeros(1)}
    trace = network.forward(spec, params, GRID)
    assert trace.h["global_avgpool1"].tolist() == [[5.0]]


@pytest.mark.parametrize("include", [False, True])
@pytest.mark.parametrize(("size", "stride", "hw"), [(2, 2, (5, 4)), (3, 2, (6, 5)), (3, 1, (4, 4))])
def test_same_avgpool_matches_finite_differences(size: int, stride: int, hw: tuple,
                                                 include: bool) -> None:
    spec = NetSpec((*hw, 2), [{"kind": "conv2d", "filters": 2, "kernel": 2, "stride": 1,
                               "padding": "same"}, {"kind": "tanh"},
                              {"kind": "avgpool", "size": size, "stride": stride,
                               "padding": "same", "count_include_pad": include},
                              {"kind": "flatten"}, {"kind": "dense", "units": 3}],
                   loss="ce", reduction="mean")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, *hw, 2)), rng.integers(0, 3, 2)
    params = init_params(spec, "he", seed=1)
    grads = network.gradients(spec, params, x, y).grads
    worst = max(gradcheck(lambda p: network.loss(spec, p, x, y), params, grads),
                key=lambda c: c.max_rel)
    assert worst.max_rel < GRADCHECK_TOLERANCE, f"{worst.name}: {worst.max_rel}"


def test_names_fields_and_json_round_trip() -> None:
    spec = NetSpec((4,), [{"kind": "layernorm", "epsilon": 1e-3}, {"kind": "dense", "units": 2},
                          {"kind": "layernorm"}], loss="l2")
    assert [layer.name for layer in spec.net] == ["layernorm1", "dense1", "layernorm2"]
    assert list(spec.param_shapes()) == ["layernorm1.gamma", "layernorm1.beta", "dense1.W",
                                         "dense1.b", "layernorm2.gamma", "layernorm2.beta"]
    assert spec.param_kind("layernorm1.gamma") == "scale" and not spec.is_weight("dense1.b")
    assert spec.to_dict()["net"][0] == {"kind": "layernorm", "epsilon": 1e-3}
    assert NetSpec.from_dict(spec.to_dict()).net == spec.net
    params = init_params(spec, seed=0)
    assert params["layernorm1.gamma"].tolist() == [1.0] * 4
    assert params["layernorm1.beta"].tolist() == [0.0] * 4


def test_a_layernorm_first_gets_its_gradients() -> None:
    """The backward walk runs down to the first layer with parameters, a layernorm included."""
    spec = NetSpec((4,), [{"kind": "layernorm"}, {"kind": "dense", "units": 2}], loss="l2")
    rng = np.random.default_rng(2)
    params = init_params(spec, seed=0)
    params["layernorm1.gamma"] = rng.standard_normal(4)
    grads = network.gradients(spec, params, rng.standard_normal((3, 4)),
                              rng.standard_normal((3, 2))).grads
    assert set(grads) == set(spec.param_shapes()) and np.any(grads["layernorm1.gamma"] != 0)


def test_avgpool_json_keeps_its_old_form_by_default() -> None:
    assert make_layer("avgpool", "a1", size=2).to_dict() == {
        "kind": "avgpool", "size": 2, "stride": 2, "padding": "VALID"}
    assert make_layer("avgpool", "a1", padding="same", count_include_pad=True).to_dict()[
        "count_include_pad"] is True


@pytest.mark.parametrize(("kind", "fields", "shape", "message"), [
    ("layernorm", {"epsilon": 0}, (4,), "epsilon must be a positive number, got 0"),
    ("layernorm", {"epsilon": "1e-5"}, (4,), "epsilon must be a positive number"),
    ("layernorm", {}, (3, 3, 2), r"\(layernorm\) needs a flat input"),
    ("global_avgpool", {}, (4,), r"needs an \(H, W, C\) input"),
    ("avgpool", {"padding": "same", "count_include_pad": "yes"}, (4, 4, 1),
     "count_include_pad must be true or false"),
])
def test_bad_layers_are_refused(kind: str, fields: dict, shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_layer(kind, "x1", **fields).output_shape(shape)


@pytest.mark.parametrize("scheme", ["xavier", "he", "torch-default"])
def test_a_layernorm_starts_as_the_frameworks_start_it(scheme: str) -> None:
    """gamma 1 and beta 0 under every scheme (torch-default draws the dense biases only)."""
    spec = NetSpec((4,), [{"kind": "dense", "units": 3}, {"kind": "layernorm"},
                          {"kind": "dense", "units": 2}], loss="l2")
    params = init_params(spec, scheme, seed=0)
    assert params["layernorm1.gamma"].tolist() == [1.0] * 3
    assert params["layernorm1.beta"].tolist() == [0.0] * 3
    assert (scheme == "torch-default") == bool(np.any(params["dense2.b"] != 0))
