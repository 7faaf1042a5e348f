"""The ``batchnorm`` layer kind in the reference: gradients through the batch statistics against
finite differences (features and NHWC channels), the running statistics by hand in both variance
conventions, evaluation on the running statistics, the reference trainer's update of them, and
the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import GRADCHECK_TOLERANCE, REORDERED_FLOAT64
from nnparity.reference import NetSpec, network
from nnparity.reference.family import init_params
from nnparity.reference.gradcheck import gradcheck
from nnparity.reference.optim import Optimizer
from nnparity.reference.train import NumpyTrainer

FEATURES = [{"kind": "dense", "units": 5}, {"kind": "batchnorm"}, {"kind": "tanh"},
            {"kind": "dense", "units": 3}]
CHANNELS = [{"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
            {"kind": "batchnorm", "momentum": 0.9, "epsilon": 1e-3}, {"kind": "tanh"},
            {"kind": "flatten"}, {"kind": "dense", "units": 3}]


def _spec(layers: list[dict], variance: str = "biased") -> NetSpec:
    layers = [{**entry, "variance": variance} if entry["kind"] == "batchnorm" else entry
              for entry in layers]
    shape = (4,) if layers[0]["kind"] == "dense" else (4, 4, 2)
    return NetSpec(shape, layers, loss="ce", reduction="mean", weight_decay=0.01)


def _params(spec: NetSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """He weights; gamma, beta and the running statistics away from their start."""
    rng = np.random.default_rng(seed)
    params = init_params(spec, "he", seed=seed)
    for name, value in params.items():
        if not spec.is_weight(name):
            params[name] = rng.uniform(0.5, 1.5, value.shape)
    return params


def _batch(spec: NetSpec, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, *spec.input_shape)) * 2 + 1, rng.integers(0, 3, n)


@pytest.mark.parametrize("layers", [FEATURES, CHANNELS], ids=["features", "channels"])
def test_gradients_through_batch_statistics_match_finite_differences(layers: list) -> None:
    spec = _spec(layers)
    params = _params(spec)
    x, y = _batch(spec)
    result = network.gradients(spec, params, x, y)
    assert set(result.grads) == {k for k in params if not spec.is_state(k)}
    assert "batchnorm1.gamma" in result.grads and "batchnorm1.mean" not in result.grads
    checks = gradcheck(lambda p: network.loss(spec, p, x, y), params, result.grads)
    worst = max(checks, key=lambda c: c.max_rel)
    assert worst.max_rel < GRADCHECK_TOLERANCE, f"{worst.name} max rel {worst.max_rel}"


def test_deltas_at_the_batchnorm_output_are_the_loss_gradient_in_it() -> None:
    """``deltas['batchnorm1']`` is dL/dy of the normalisation: beta's gradient is its sum."""
    spec = _spec(FEATURES)
    params = _params(spec)
    x, y = _batch(spec)
    result = network.gradients(spec, params, x, y)
    np.testing.assert_allclose(result.deltas["batchnorm1"].sum(axis=0),
                               result.grads["batchnorm1.beta"], rtol=REORDERED_FLOAT64)


@pytest.mark.parametrize(("variance", "factor"), [("biased", 1.0), ("unbiased", 18 / 17)])
def test_running_statistics_by_hand(variance: str, factor: float) -> None:
    """Over channels, m = N H W = 2 * 3 * 3 = 18 values per channel; momentum weighs the old."""
    spec = NetSpec((3, 3, 2), [{"kind": "conv2d", "filters": 2, "kernel": 1, "stride": 1},
                               {"kind": "batchnorm", "momentum": 0.9, "variance": variance},
                               {"kind": "flatten"}, {"kind": "dense", "units": 3}],
                   loss="ce", reduction="mean")
    params = _params(spec)
    x, y = _batch(spec, n=2)
    z = network.gradients(spec, params, x, y).state
    conv = network.forward(spec, params, x, dropout_mask=None).z["conv1"]
    flat = conv.reshape(-1, 2)
    mean, var = flat.mean(axis=0), flat.var(axis=0) * factor
    np.testing.assert_allclose(z["batchnorm1.mean"], 0.9 * params["batchnorm1.mean"] + 0.1 * mean,
                               rtol=REORDERED_FLOAT64)
    np.testing.assert_allclose(z["batchnorm1.var"], 0.9 * params["batchnorm1.var"] + 0.1 * var,
                               rtol=REORDERED_FLOAT64)


def test_evaluation_uses_the_running_statistics_and_training_the_batch() -> None:
    spec = _spec(FEATURES)
    params = _params(spec)
    x, _ = _batch(spec)
    z = network.forward(spec, params, x).z
    gamma, beta, mean, var = (params[f"batchnorm1.{k}"] for k in ("gamma", "beta", "mean", "var"))
    expected = gamma * (z["dense1"] - mean) / np.sqrt(var + 1e-5) + beta
    np.testing.assert_allclose(z["batchnorm1"], expected, rtol=REORDERED_FLOAT64)
    training = network.gradients(spec, params, x, np.zeros(len(x), int)).output
    assert not np.allclose(training, network.forward(spec, params, x).output)


def test_reference_trainer_updates_running_statistics_and_no_optimiser_slot() -> None:
    spec = _spec(FEATURES)
    params = _params(spec)
    x, y = _batch(spec)
    trainer = NumpyTrainer(spec, params, Optimizer("adamw", lr=0.1))
    expected = network.gradients(spec, params, x, y).state
    trainer.step(x, y)
    after = trainer.params()
    for name in ("batchnorm1.mean", "batchnorm1.var"):
        np.testing.assert_array_equal(after[name], expected[name])  # not decayed, not stepped
        assert f"m.{name}" not in trainer.state()
    assert "m.batchnorm1.gamma" in trainer.state()


@pytest.mark.parametrize(("fields", "message"), [
    ({"momentum": 1.0}, "momentum"), ({"momentum": -0.1}, "momentum"),
    ({"epsilon": 0}, "epsilon"), ({"variance": "sample"}, "variance"),
    ({"momentum": "0.9"}, "momentum"),
])
def test_bad_settings_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NetSpec((4,), [{"kind": "dense", "units": 2}, {"kind": "batchnorm", **fields}])


def test_unbiased_running_variance_of_one_value_is_refused() -> None:
    spec = _spec(FEATURES, "unbiased")
    x, y = _batch(spec, n=1)
    with pytest.raises(ValueError, match="more than one value"):
        network.gradients(spec, _params(spec), x, y)


def test_json_round_trip_keeps_the_settings() -> None:
    spec = _spec(CHANNELS, "unbiased")
    entry = spec.to_dict()["net"][1]
    assert entry == {"kind": "batchnorm", "momentum": 0.9, "epsilon": 1e-3,
                     "variance": "unbiased"}
    assert NetSpec.from_dict(spec.to_dict()).net == spec.net
    assert list(init_params(spec, "he"))[2:6] == ["batchnorm1.gamma", "batchnorm1.beta",
                                                   "batchnorm1.mean", "batchnorm1.var"]
