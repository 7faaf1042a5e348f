"""Every layer kind of ``reference.layers.KINDS``, inside a small network written as a ``net``
list: its hand-derived gradients against finite differences (float64), its deltas against the
finite differences of the loss in the layer's ``z``, and the naming rule."""

from __future__ import annotations

import numpy as np
import pytest

import nnparity
from nnparity.backends.compare import GRADCHECK_TOLERANCE, REORDERED_FLOAT64
from nnparity.reference import CNNSpec, MLPSpec, NetSpec, network
from nnparity.reference.family import init_params, spec_from_dict
from nnparity.reference.gradcheck import gradcheck
from nnparity.reference.layers import KINDS

FLAT = [{"kind": "dense", "units": 5}]
MAP = [{"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "padding": "same"}]
TAIL = [{"kind": "flatten"}, {"kind": "dense", "units": 3}]


def _net(kind: str) -> NetSpec:
    """A float64 network exercising ``kind`` (activations after a dense and after a conv)."""
    if kind in ("dense", "dropout"):
        layers = [*FLAT, {"kind": "tanh"}, {"kind": "dropout", "keep_prob": 0.6},
                  {"kind": "dense", "units": 3, "use_bias": False}]
        return NetSpec((4,), layers, loss="ce", reduction="sum", weight_decay=0.01)
    if kind in ("conv2d", "maxpool", "flatten"):
        layers = [*MAP, {"kind": "relu"},
                  {"kind": "maxpool", "size": 3, "stride": 1, "padding": "valid"}, *TAIL]
        return NetSpec((7, 6, 2), layers, loss="ce", reduction="mean")
    if kind == "avgpool":  # overlapping windows (stride 1), then non-overlapping ones
        layers = [*MAP, {"kind": "gelu"}, {"kind": "avgpool", "size": 2, "stride": 1},
                  {"kind": "avgpool", "size": 2}, *TAIL]
        return NetSpec((9, 9, 2), layers, loss="ce", reduction="mean")
    if kind == "residual":  # identity skip on a map, projected skip on a flat input
        block = [{"kind": "conv2d", "filters": 2, "kernel": 3}, {"kind": "tanh"}]
        layers = [{"kind": "residual", "net": block}, *TAIL, {"kind": "tanh"},
                  {"kind": "residual", "projection": True, "net": [*FLAT, {"kind": "gelu"}]},
                  {"kind": "dense", "units": 2}]
        return NetSpec((5, 5, 2), layers, loss="l2", reduction="mean", weight_decay=0.01)
    if kind == "layernorm":  # first (the input's rows), and after a dense layer's activation
        layers = [{"kind": "layernorm", "epsilon": 1e-3}, *FLAT, {"kind": "tanh"},
                  {"kind": "layernorm"}, {"kind": "dense", "units": 3}]
        return NetSpec((4,), layers, loss="ce", reduction="mean")
    if kind == "global_avgpool":  # flat output: a dense layer follows without a flatten
        layers = [*MAP, {"kind": "tanh"}, {"kind": "global_avgpool"}, *FLAT[:1],
                  {"kind": "dense", "units": 2}]
        return NetSpec((5, 4, 2), layers, loss="l2", reduction="mean")
    extra = {"prelu": {"slopes": "unit"}, "gelu": {"approximate": "tanh"}}.get(kind, {})
    layers = [*MAP, {"kind": kind, **extra}, *TAIL[:1], *FLAT, {"kind": kind},
              {"kind": "dense", "units": 2}]
    return NetSpec((5, 5, 2), layers, loss="l2", reduction="mean")


def _batch(spec: NetSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, *spec.input_shape))
    y = rng.integers(0, spec.output_dim, 3) if spec.loss == "ce" \
        else rng.standard_normal((3, spec.output_dim))
    mask = (rng.random((3, spec.dropout_units)) < spec.keep_prob).astype(float) \
        if spec.dropout_units else None
    return x, y, mask


def _off_the_kinks(spec: NetSpec, x: np.ndarray) -> dict[str, np.ndarray]:
    """Seeded parameters whose pre-activations all lie 1e-3 or more from 0: a finite difference
    (step 1e-4) straddling a kink measures neither one-sided derivative."""
    for seed in range(50):
        params = init_params(spec, "he", seed=seed)
        if all(np.min(np.abs(z)) > 1e-3 for z in network.forward(spec, params, x).z.values()):
            return params
    raise AssertionError("no seed keeps every pre-activation off the kinks")


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_matches_finite_differences(kind: str) -> None:
    spec = _net(kind)
    assert kind in {layer.kind for layer in spec.net}
    x, y, mask = _batch(spec)
    params = _off_the_kinks(spec, x)
    result = network.gradients(spec, params, x, y, dropout_mask=mask)
    checks = gradcheck(lambda p: network.loss(spec, p, x, y, dropout_mask=mask), params,
                       result.grads)
    worst = max(checks, key=lambda c: c.max_rel)
    assert worst.max_rel < GRADCHECK_TOLERANCE, f"{kind}: {worst.name} max rel {worst.max_rel}"


@pytest.mark.parametrize("kind", ["dense", "conv2d"])
def test_deltas_are_the_loss_gradient_in_z(kind: str) -> None:
    """``deltas[name]`` is dL/dz: perturbing the layer's bias moves the loss by its sum."""
    spec = _net(kind)
    params = init_params(spec, "he", seed=3)
    x, y, mask = _batch(spec)
    result = network.gradients(spec, params, x, y, dropout_mask=mask)
    first = spec.layer_names[0]
    axes = tuple(range(result.deltas[first].ndim - 1))
    np.testing.assert_allclose(result.deltas[first].sum(axis=axes), result.grads[f"{first}.b"],
                               rtol=REORDERED_FLOAT64)


def test_the_naming_rule() -> None:
    spec = _net("conv2d")
    assert [layer.name for layer in spec.net] == ["conv1", "conv1", "pool1", "flatten1",
                                                  "dense1"]
    assert list(spec.param_shapes()) == ["conv1.W", "conv1.b", "dense1.W", "dense1.b"]
    assert spec.param_shapes()["conv1.W"] == (3, 3, 2, 3)
    prelu = _net("prelu")
    assert prelu.param_shapes()["conv1.a"] == (3,) and prelu.param_shapes()["dense1.a"] == (1,)


def test_a_net_spec_round_trips_through_json() -> None:
    spec = _net("dropout")
    again = spec_from_dict({k: v for k, v in spec.to_dict().items() if k != "family"})
    assert again == spec and again.to_json() == spec.to_json()


@pytest.mark.parametrize(("layers", "message"), [
    ([{"kind": "relu"}, *FLAT], "must follow a dense, conv2d, batchnorm or residual"),
    ([{"kind": "dense", "units": 2, "bias": "x"}], "set by nnparity"),
    ([{"kind": "dense", "units": 0}], "units must be a positive integer"),
    ([{"kind": "pool"}], "unknown layer kind 'pool'"),
    ([{"kind": "dense", "units": 3, "stride": 2}], "unknown field"),
    ([*FLAT, {"kind": "dropout", "keep_prob": 0.5}, {"kind": "dropout", "keep_prob": 0.6},
      {"kind": "dense", "units": 2}], "give them one value"),
    ([{"kind": "flatten"}], "nothing to learn"),
])
def test_bad_nets_are_refused_naming_the_layer(layers: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NetSpec((4,), layers)


def test_the_package_gradients_take_every_kind_of_spec() -> None:
    for spec in (MLPSpec(4, (5, 3), ("relu", "identity")), CNNSpec.tiny(), _net("conv2d")):
        params = nnparity.init_params(spec, seed=0)
        x, y, _ = _batch(spec) if isinstance(spec, NetSpec) else (
            np.random.default_rng(0).standard_normal((2, *spec.input_shape)),
            np.array([0, 1]), None)
        result = nnparity.gradients(spec, params, x, y)
        assert set(result.grads) == set(spec.param_shapes())
        assert set(result.deltas) == set(spec.layer_names)
