"""The rounding judge (:mod:`nnparity.parity.rounding_judge`): a bias right before a batch
normalisation has gradient zero in exact arithmetic, so every side holds rounding noise there;
such tensors pass against the size of what rounding acts on, and a real error in them still
fails."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import FLOAT64_WATCH, compare_all, tolerance_for
from nnparity.backends.numpy_backend import NumpyBackend
from nnparity.backends.protocol import Params
from nnparity.parity.rounding_judge import NOTE
from nnparity.parity.runner import compare_backend
from nnparity.reference import NetSpec, network
from nnparity.reference.family import init_params
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients
from nnparity.reference.train import NumpyTrainer

OPTIMIZERS = {"sgd": dict(name="sgd", lr=0.1), "momentum": dict(name="momentum", lr=0.1),
              "adam": dict(name="adam", lr=0.01)}


def dense_bn(dtype: str = "float64") -> NetSpec:
    """dense (with its bias) -> batchnorm -> relu -> dense: ``dense1.b`` cancels."""
    return NetSpec(input_shape=(6,), loss="ce", dtype=dtype, net=[
        {"kind": "dense", "units": 5}, {"kind": "batchnorm"}, {"kind": "relu"},
        {"kind": "dense", "units": 3}])


def conv_bn(dtype: str = "float64") -> NetSpec:
    """conv (with its bias) -> batchnorm over channels -> relu -> global pool -> dense."""
    return NetSpec(input_shape=(5, 5, 2), loss="ce", dtype=dtype, net=[
        {"kind": "conv2d", "filters": 3, "kernel": 3, "padding": "same"}, {"kind": "batchnorm"},
        {"kind": "relu"}, {"kind": "global_avgpool"}, {"kind": "dense", "units": 3}])


def batches(spec: NetSpec, steps: int = 4, n: int = 4, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, *spec.input_shape)).astype(spec.dtype),
             rng.integers(0, 3, size=n)) for _ in range(steps)]


class Planted(NumpyBackend):
    """The reference with ``offset`` times the terms' size added to one gradient (or, with
    ``state``, to its optimiser state after each step)."""

    name = "planted"

    def __init__(self, param: str, offset: float, state: bool = False) -> None:
        self.param, self.offset, self.state = param, offset, state

    def _planted(self, spec: NetSpec, params: Params, x: np.ndarray,
                 result: Gradients, mask: np.ndarray | None = None) -> Gradients:
        if not self.state:
            scales = network.gradient_scales(spec, params, x, result, dropout_mask=mask)
            result.grads[self.param] = result.grads[self.param] + self.offset * np.max(
                scales[self.param])
        return result

    def gradients(self, spec, params, x, y, *, dropout_mask=None):
        result = super().gradients(spec, params, x, y, dropout_mask=dropout_mask)
        return self._planted(spec, params, x, result, dropout_mask)

    def trainer(self, spec, params, optimizer, state=None, dropout_seed=0):
        backend = self

        class Trainer(NumpyTrainer):
            def _gradients(self, x, y, mask):
                return backend._planted(self.spec, self._params, x,
                                        super()._gradients(x, y, mask), mask)

            def step(self, x, y, dropout_mask=None):
                loss = super().step(x, y, dropout_mask)
                if backend.state:
                    for key in self._state:
                        if key.endswith(f".{backend.param}"):
                            self._state[key] = self._state[key] + backend.offset
                return loss

        return Trainer(spec, params, optimizer, state, dropout_seed)


def judged(backend, spec: NetSpec, optimizer: str, steps: int = 4):
    params = init_params(spec, seed=0)
    return compare_backend(backend, spec, params, batches(spec, steps),
                           lambda variant: Optimizer(**OPTIMIZERS[optimizer], variant=variant),
                           steps=steps)


def test_gradient_scales_bound_each_gradient_and_equal_it_where_nothing_cancels():
    spec = NetSpec(input_shape=(4,), loss="l2", weight_decay=0.01, net=[
        {"kind": "dense", "units": 3}, {"kind": "tanh"}, {"kind": "dense", "units": 2}])
    params = init_params(spec, seed=1)
    x, y = np.abs(np.random.default_rng(1).normal(size=(1, 4))), np.zeros((1, 2))
    grads = network.gradients(spec, params, x, y)
    scales = network.gradient_scales(spec, params, x, grads)
    assert set(scales) == set(grads.grads)
    for name, scale in scales.items():
        assert np.all(scale >= np.abs(grads.grads[name]) * (1 - 1e-15)), name
    # one sample, non-negative inputs: the bias gradient is one term, nothing cancels
    np.testing.assert_array_equal(scales["dense2.b"], np.abs(grads.grads["dense2.b"]))


def test_the_bias_before_a_batchnorm_cancels_to_noise_that_fails_the_plain_comparison():
    spec = dense_bn()
    params, data = init_params(spec, seed=0), batches(dense_bn(), 1)
    x, y = data[0]
    grads = network.gradients(spec, params, x, y)
    terms = network.gradient_scales(spec, params, x, grads)["dense1.b"]
    assert np.max(np.abs(grads.grads["dense1.b"])) < 1e-15 * np.max(terms)
    # the plain comparison cannot judge noise against noise: the judge below is needed
    noisy = {**grads.grads, "dense1.b": grads.grads["dense1.b"] + 1e-17}
    plain = compare_all({("grad", k): v for k, v in noisy.items()},
                        {("grad", k): v for k, v in grads.grads.items()}, tolerance_for(spec))
    assert not next(c for c in plain if c.name == "dense1.b").passed


@pytest.mark.parametrize("make_spec", [dense_bn, conv_bn])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_rounding_noise_in_a_cancelling_bias_and_its_steps_passes(make_spec, optimizer):
    noise = Planted("dense1.b" if make_spec is dense_bn else "conv1.b", 1e-16)
    comparisons = judged(noise, make_spec(), optimizer)
    assert all(c.passed for c in comparisons), [c for c in comparisons if not c.passed]
    assert any(c.note.startswith(NOTE) and c.stage == "grad" for c in comparisons)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_real_error_in_a_cancelling_bias_still_fails(optimizer):
    spec = dense_bn()
    wrong = judged(Planted("dense1.b", 1e-6), spec, optimizer)
    failing = [c for c in wrong if not c.passed]
    assert failing and failing[0].stage == "grad" and failing[0].name == "dense1.b"
    # an error in its optimiser state (not in its gradient) fails too
    if optimizer != "sgd":
        state = judged(Planted("dense1.b", 1e-6, state=True), spec, optimizer)
        assert any(not c.passed and c.stage == "update" for c in state)


def test_a_tensor_that_does_not_cancel_is_judged_against_its_own_size():
    wrong = judged(Planted("dense2.W", 1e-8), dense_bn(), "sgd")
    failing = [c for c in wrong if not c.passed]
    assert failing and failing[0].name == "dense2.W" and not failing[0].note


@pytest.mark.parametrize("backend_name", ["tensorflow", "jax"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_frameworks_pass_a_bias_before_batchnorm(backend_name, dtype):
    if registry.reason(backend_name):
        pytest.skip(registry.reason(backend_name))
    backend = registry.get(backend_name)
    for make_spec, optimizer in ((dense_bn, "adam"), (conv_bn, "momentum")):
        comparisons = judged(backend, make_spec(dtype), optimizer, steps=3)
        assert all(c.passed for c in comparisons), [c for c in comparisons if not c.passed]
        if dtype == "float64":
            assert max(c.max_rel for c in comparisons) <= FLOAT64_WATCH


def test_a_torch_model_with_a_bias_before_batchnorm_passes():
    torch = pytest.importorskip("torch")
    import nnparity

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5),
                                torch.nn.ReLU(), torch.nn.Linear(5, 3))
    report = nnparity.check_model(model, loss="ce", dtype="float64",
                                  optimizer=torch.optim.Adam(model.parameters(), lr=0.01))
    assert report.ok, report.table()
    assert any(c.note.startswith(NOTE) for r in report.results for c in r.comparisons)

