"""What makes the torch backend an ordinary torch model (its parity with the reference is in
``test_parity_conventions.py`` and the parity matrix, once for every backend)."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.determinism import describe
from nnparity.reference import MLPSpec, Optimizer, init_params

pytestmark = pytest.mark.torch

SPEC = MLPSpec(3, (4, 2), ("tanh", "identity"), "ce", "mean", 1e-3)


@pytest.fixture(scope="module")
def torch_backend():
    return registry.get("torch")


def test_model_is_plain_torch_with_transposed_weights() -> None:
    import torch
    from torch import nn

    from nnparity.backends.torch_backend import build_model

    spec = MLPSpec(3, (4, 4, 2), ("sigmoid", "leaky_relu", "identity"), "ce")
    params = init_params(spec, "seed004", seed=1)
    model, named = build_model(spec, params)
    kinds = [type(m) for m in model.layers]
    assert kinds == [nn.Linear, nn.Sigmoid, nn.Linear, nn.LeakyReLU, nn.Linear, nn.Identity]
    first, _, second, _, third, _ = model.layers
    assert first.weight.shape == (4, 3)  # [D_out, D_in]
    np.testing.assert_array_equal(first.weight.detach().numpy(), params["W1"].T)
    np.testing.assert_array_equal(third.bias.detach().numpy(), params["b3"][0])
    assert named["W2"] is second.weight
    assert first.weight.dtype == torch.float64


def test_float32_results_are_float32(torch_backend) -> None:
    spec = SPEC.with_(dtype="float32")
    params = init_params(spec, seed=0)
    x, y = np.ones((2, 3), np.float32), np.array([0, 1])
    result = torch_backend.gradients(spec, params, x, y)
    assert all(g.dtype == np.float32 for g in result.grads.values())
    assert all(d.dtype == np.float32 for d in result.deltas.values())
    assert torch_backend.forward(spec, params, x).output.dtype == np.float32


def test_keras_variant_is_refused(torch_backend) -> None:
    params = init_params(SPEC)
    for name in ("sgd", "momentum", "adam"):
        with pytest.raises(ValueError, match="'torch' variant"):
            torch_backend.trainer(SPEC, params, Optimizer(name, variant="keras"))
    assert torch_backend.optimizer_variant == "torch"


def test_determinism_profile_applied() -> None:
    import torch

    assert torch.are_deterministic_algorithms_enabled()
    info = describe()
    assert info["torch"] == torch.__version__.split("+")[0] or info["torch"] == torch.__version__
    assert info["threads"]["torch_intra_op"] == torch.get_num_threads()
    assert info["cpu"]
