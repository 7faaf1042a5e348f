"""The residual block in the reference: its hand-derived backward against finite differences
(identity and projected skips, flat and map inputs), the deltas of its inner layers, the naming
rule of its sub-list, its JSON round trip and the shapes it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import GRADCHECK_TOLERANCE, REORDERED_FLOAT64, SAME_OPS_FLOAT64
from nnparity.reference import NetSpec, network
from nnparity.reference.family import init_params
from nnparity.reference.gradcheck import gradcheck

DENSE_BLOCK = [{"kind": "dense", "units": 4}, {"kind": "gelu"}, {"kind": "dense", "units": 4}]
FLAT_NET = [{"kind": "dense", "units": 4}, {"kind": "tanh"},
            {"kind": "residual", "net": DENSE_BLOCK},
            {"kind": "residual", "projection": True,
             "net": [{"kind": "dense", "units": 3}, {"kind": "tanh"}]},
            {"kind": "dense", "units": 3}]
MAP_NET = [{"kind": "residual", "projection": True,
            "net": [{"kind": "conv2d", "filters": 3, "kernel": 3}, {"kind": "tanh"}]},
           {"kind": "residual", "net": [{"kind": "conv2d", "filters": 3, "kernel": 3},
                                        {"kind": "gelu"}]},
           {"kind": "flatten"}, {"kind": "dense", "units": 3}]


def _spec(shape: tuple[int, ...], net: list) -> NetSpec:
    return NetSpec(shape, net, loss="ce", reduction="mean", weight_decay=0.01)


def _batch(spec: NetSpec) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    return rng.standard_normal((3, *spec.input_shape)), rng.integers(0, spec.output_dim, 3)


@pytest.mark.parametrize(("shape", "net"), [((4,), FLAT_NET), ((5, 5, 2), MAP_NET)])
def test_gradients_match_finite_differences(shape: tuple[int, ...], net: list) -> None:
    spec = _spec(shape, net)
    x, y = _batch(spec)
    params = init_params(spec, "he", seed=1)
    grads = network.gradients(spec, params, x, y).grads
    checks = gradcheck(lambda p: network.loss(spec, p, x, y), params, grads)
    worst = max(checks, key=lambda c: c.max_rel)
    assert worst.max_rel < GRADCHECK_TOLERANCE, f"{worst.name}: {worst.max_rel}"


def test_a_backward_without_the_skip_gradient_fails_the_check() -> None:
    """The check can fail: the gradient through ``f`` alone (no skip term) is caught."""
    spec = _spec((4,), FLAT_NET)
    x, y = _batch(spec)
    params = init_params(spec, "he", seed=1)
    block_free = _spec((4,), [FLAT_NET[0], FLAT_NET[1], *DENSE_BLOCK, *FLAT_NET[3:]])
    renamed = {name.replace("res2", "res1"): value for name, value in params.items()}
    wrong = {name.replace("res1", "res2"): grad  # the same tensors, no skip path in res1
             for name, grad in network.gradients(block_free, renamed, x, y).grads.items()}
    checks = gradcheck(lambda p: network.loss(spec, p, x, y), params, wrong)
    assert max(c.max_rel for c in checks) > 1e-3


def test_inner_deltas_are_the_loss_gradient_in_z() -> None:
    """``deltas['dense2']`` (inside ``res1``) is dL/dz: moving its bias moves the loss by its
    column sums."""
    spec = _spec((4,), FLAT_NET)
    x, y = _batch(spec)
    params = init_params(spec, "he", seed=2)
    result = network.gradients(spec, params, x, y)
    for name in ("dense2", "dense3", "dense4"):
        np.testing.assert_allclose(result.deltas[name].sum(axis=0), result.grads[f"{name}.b"],
                                   rtol=REORDERED_FLOAT64, atol=0)


def test_the_sub_list_continues_the_counters_and_traces_its_tensors() -> None:
    spec = _spec((4,), FLAT_NET)
    assert [layer.name for layer in spec.net] == ["dense1", "dense1", "res1", "res2", "dense5"]
    assert [layer.name for layer in spec.net[2].net] == ["dense2", "dense2", "dense3"]
    assert spec.layer_names == ["dense1", "dense2", "dense3", "dense4", "dense5"]
    assert list(spec.param_shapes())[-4:] == ["res2.W", "res2.b", "dense5.W", "dense5.b"]
    assert spec.param_shapes()["res2.W"] == (4, 3)
    assert spec.layer_activations["dense2"] == "gelu"
    x, _ = _batch(spec)
    params = init_params(spec, "he", seed=0)
    trace = network.forward(spec, params, x)
    assert list(trace.h) == ["dense1", "dense2", "dense3", "res1", "dense4", "res2", "dense5"]
    np.testing.assert_array_equal(trace.h["res1"], trace.h["dense1"] + trace.z["dense3"])
    projected = trace.h["res1"] @ params["res2.W"] + params["res2.b"]
    np.testing.assert_allclose(trace.h["res2"], projected + trace.h["dense4"],
                               rtol=SAME_OPS_FLOAT64)


def test_backward_from_a_recorded_trace_gives_the_same_gradients() -> None:
    spec = _spec((5, 5, 2), MAP_NET)
    x, y = _batch(spec)
    params = init_params(spec, "he", seed=0)
    direct = network.gradients(spec, params, x, y)
    again = network.backward(spec, params, x, network.forward(spec, params, x), y)
    for name, grad in direct.grads.items():
        np.testing.assert_allclose(again.grads[name], grad, rtol=0,
                                   atol=SAME_OPS_FLOAT64 * np.abs(grad).max())
    assert list(again.deltas) == list(direct.deltas) == ["conv1", "conv2", "dense1"]
    assert spec.param_shapes()["res1.W"] == (1, 1, 2, 3)


def test_json_round_trip() -> None:
    spec = _spec((4,), FLAT_NET)
    data = spec.to_dict()
    assert data["net"][2] == {"kind": "residual", "projection": False, "net": [
        {"kind": "dense", "units": 4, "use_bias": True}, {"kind": "gelu", "approximate": "none"},
        {"kind": "dense", "units": 4, "use_bias": True}]}
    assert NetSpec.from_dict(data) == spec


@pytest.mark.parametrize(("net", "message"), [
    ([{"kind": "residual", "net": [{"kind": "dense", "units": 3}]}, {"kind": "dense", "units": 2}],
     r"res1: the block's net maps shape \[4\] to \[3\]: set \"projection\": true"),
    ([{"kind": "residual", "net": []}], r"net entry 1: a residual needs a non-empty"),
    ([{"kind": "residual", "net": [{"kind": "relu"}]}],
     r"net entry 1.1: activation 'relu' must follow"),
    ([{"kind": "residual", "net": [{"kind": "dense", "units": 4},
                                   {"kind": "dropout", "keep_prob": 0.5}]}],
     r"res1: a residual block's net cannot hold dropout"),
    ([{"kind": "residual", "net": [{"kind": "dense", "units": 4}]},
      {"kind": "dropout", "keep_prob": 0.5}, {"kind": "relu"}],
     r"net entry 3: activation 'relu' must follow"),
])
def test_refusals_name_the_problem(net: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NetSpec((4,), [*net, {"kind": "dense", "units": 2}] if net[-1]["kind"] != "dense"
                else net)


def test_a_map_projection_refuses_a_changed_spatial_size() -> None:
    block = {"kind": "residual", "projection": True,
             "net": [{"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 2}]}
    with pytest.raises(ValueError, match=r"maps shape \[6, 6, 2\] to \[3, 3, 3\]"):
        NetSpec((6, 6, 2), [block, {"kind": "flatten"}, {"kind": "dense", "units": 2}])


def test_a_block_after_a_flattened_map_is_refused() -> None:
    with pytest.raises(ValueError, match="res1: a residual block cannot take a flattened map"):
        NetSpec((3, 3, 2), [{"kind": "conv2d", "filters": 2, "kernel": 3}, {"kind": "flatten"},
                            {"kind": "residual", "net": [{"kind": "dense", "units": 18}]},
                            {"kind": "dense", "units": 2}])


def test_memory_estimates_count_the_sub_list() -> None:
    """A block's layers hold values through a step: the estimate grows with the block."""
    with_block = _spec((4,), FLAT_NET)
    without = _spec((4,), [*FLAT_NET[:2], *FLAT_NET[3:]])
    for training in (True, False):
        assert network.working_values(with_block, 8, training=training) \
            > network.working_values(without, 8, training=training)
