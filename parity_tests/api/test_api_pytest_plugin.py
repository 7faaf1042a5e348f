"""The ``parity`` fixture, registered through the ``pytest11`` entry point (nothing in the
generated test files names the plugin): a project's test file using it on a correct and a faulty
torch model, a model whose code raises, a Keras model and Flax NNX models passes and fails as
expected, with the table and the diagnosis (or the model's error) in the failure; under
``pytest -n 2`` (xdist) too."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.torch]

TORCH_MODELS = '''
import torch
from torch import nn


class WrongTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - x ** 2)  # the derivative at the input, not at the output


class FaultyTanh(nn.Module):
    def forward(self, x):
        return WrongTanh.apply(x)


def mlp(activation=None):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), activation or nn.Tanh(), nn.Linear(8, 3))


def test_correct_torch_model(parity):
    model = mlp()
    report = parity(model, loss="ce", optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert report.ok


def test_faulty_torch_model(parity):
    parity(mlp(FaultyTanh()), loss="ce", layers={"FaultyTanh": "tanh"})


class Broken(nn.Module):
    def forward(self, x):
        raise RuntimeError("a bug in the model's code")


def test_torch_model_whose_code_raises(parity):
    parity(nn.Sequential(nn.Linear(4, 3), Broken()), loss="ce", layers={"Broken": "identity"})
'''

OTHER_MODELS = '''

def test_keras_model(parity):
    from nnparity.backends.determinism import import_tensorflow

    _, keras = import_tensorflow()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(0.01))
    parity(model)


def test_flax_model(parity):
    from flax import nnx

    parity(nnx.Sequential(nnx.Linear(4, 8, rngs=nnx.Rngs(0)), nnx.tanh,
                          nnx.Linear(8, 3, rngs=nnx.Rngs(1))), loss="ce")


def test_flax_model_with_a_double_softmax(parity):
    from flax import nnx

    parity(nnx.Sequential(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), nnx.softmax), loss="ce")
'''


@pytest.mark.tensorflow
def test_the_fixture_passes_correct_models_and_fails_faulty_ones(pytester):
    pytest.importorskip("flax.nnx", reason="flax is not installed: pip install nnparity[all]")
    pytester.makepyfile(test_models=TORCH_MODELS + OTHER_MODELS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3, failed=3)
    out = result.stdout.str()
    assert "FAILED test_models.py::test_faulty_torch_model" in out
    assert "nnparity could not check the model: " in out and "a bug in the model's code" in out
    assert "FAILED test_models.py::test_flax_model_with_a_double_softmax" in out
    assert "diagnosis [activation-backward]: " in out and "diagnosis [double-softmax]: " in out
    assert re.search(r"torch-model +delta +layer1 .* FAIL", out)  # the table


@pytest.mark.slow
@pytest.mark.tensorflow
def test_the_fixture_works_under_xdist(pytester):
    pytest.importorskip("xdist")
    pytest.importorskip("flax.nnx", reason="flax is not installed: pip install nnparity[all]")
    pytester.makepyfile(test_models=TORCH_MODELS + OTHER_MODELS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-n", "2")
    result.assert_outcomes(passed=3, failed=3)
    out = result.stdout.str()
    assert "diagnosis [activation-backward]: " in out and "diagnosis [double-softmax]: " in out
