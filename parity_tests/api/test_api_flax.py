"""Flax NNX models through ``nnparity.check_model``: an ``nnx.Sequential`` is traced as a chain
(Linear, Conv, activations, max pooling, a flatten), run with ``jax.value_and_grad`` and judged
like torch and Keras models; a wrong backward, a double softmax, a port with other weights fail;
what cannot be traced honestly is refused with one error."""

from __future__ import annotations

import functools

import pytest
from report_schema import validate  # parity_tests/, beside the conftest

import nnparity

nnx = pytest.importorskip("flax.nnx", reason="flax is not installed: pip install nnparity[all]")
jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
jnp = jax.numpy


class WrongBiasGradLinear(nnx.Linear):
    """A Linear whose hand-written backward doubles the bias gradient."""

    def __call__(self, x):
        @jax.custom_vjp
        def dense(x, kernel, bias):
            return x @ kernel + bias

        def forward(x, kernel, bias):
            return dense(x, kernel, bias), (x, kernel)

        def backward(saved, grad):
            x, kernel = saved
            return grad @ kernel.T, x.T @ grad, 2 * grad.sum(0)

        dense.defvjp(forward, backward)
        return dense(x, self.kernel[...], self.bias[...])


def mlp(last=nnx.Linear, *tail):
    return nnx.Sequential(nnx.Linear(4, 8, rngs=nnx.Rngs(0)), nnx.relu,
                          last(8, 3, rngs=nnx.Rngs(1)), *tail)


def flatten(x):
    return x.reshape(x.shape[0], -1)


def cnn():
    return nnx.Sequential(
        nnx.Conv(1, 2, (3, 3), padding="SAME", rngs=nnx.Rngs(0)), nnx.tanh,
        functools.partial(nnx.max_pool, window_shape=(2, 2), strides=(2, 2)), flatten,
        nnx.Linear(4 * 4 * 2, 3, rngs=nnx.Rngs(1)))


def test_a_flax_mlp_matches_the_reference_in_every_tensor():
    report = nnparity.check_model(mlp(), loss="ce")
    assert report.ok, report.table()
    stages = {c.stage for c in report.results[0].comparisons}
    assert stages == {"forward", "loss", "delta", "grad"}
    assert "loss ce (mean) from loss=; no optimiser: updates not checked" in report.table()
    validate(report.to_json())


def test_a_flax_cnn_with_pooling_and_a_flatten_function_matches():
    report = nnparity.check_model(cnn(), loss="ce", input_shape=(8, 8, 1))
    assert report.ok, report.table()
    names = {c.name for c in report.results[0].comparisons}
    assert {"z.conv1", "h.pool1", "h.flatten", "conv1.W"} <= names


@pytest.mark.parametrize("pair", [
    (optax.adam(0.01), nnparity.Optimizer("adam", lr=0.01)),
    (optax.sgd(0.1, momentum=0.9), nnparity.Optimizer("momentum", lr=0.1, momentum=0.9)),
], ids=["adam", "momentum"])
def test_an_optax_optimiser_runs_the_steps_and_its_claimed_formula_is_the_reference(pair):
    model = mlp()
    before = model.layers[0].kernel[...]
    report = nnparity.check_model(model, loss="ce", optimizer=pair)
    assert report.ok, report.table()
    assert [c.name for c in report.results[0].comparisons if c.stage == "update"][-1] == \
        "step3.loss"
    assert (model.layers[0].kernel[...] == before).all()  # its weights put back


def test_an_optax_optimiser_that_is_not_the_claimed_formula_fails_at_the_first_update():
    wrong = (optax.sgd(0.1), nnparity.Optimizer("sgd", lr=0.2))
    first = nnparity.check_model(mlp(), loss="ce", optimizer=wrong).first_divergence
    assert (first.stage, first.tensor) == ("update", "step1.W1")


def test_a_wrong_custom_backward_fails_at_the_bias_gradient():
    report = nnparity.check_model(mlp(WrongBiasGradLinear), loss="ce")
    assert not report.ok
    first = report.first_divergence
    assert (first.backend, first.stage, first.tensor) == ("flax-model", "grad", "b2")
    assert first.max_rel == pytest.approx(1.0)


def test_a_softmax_before_the_cross_entropy_is_diagnosed():
    report = nnparity.check_model(mlp(nnx.Linear, nnx.softmax), loss="ce")
    assert not report.ok
    assert [d.code for d in report.diagnoses] == ["double-softmax"]


def test_a_flax_port_of_a_torch_model_with_its_own_weights_fails_and_transferred_passes():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    original = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                   torch.nn.Linear(8, 3)).float()
    own = nnparity.check_port(original, mlp(), loss="ce")
    assert not own.ok and [d.code for d in own.diagnoses] == ["weights-conversion"]
    assert nnparity.check_port(original, mlp(), loss="ce", transfer_weights=True).ok


def test_what_cannot_be_traced_honestly_is_refused_with_one_error():
    # a module with its own __call__ is traced: parity_tests/api/test_api_flax_custom.py
    with pytest.raises(nnparity.InputError, match=r"give the pair \(tx, nnparity.Optimizer"):
        nnparity.check_model(mlp(), loss="ce", optimizer=optax.sgd(0.1))
    with pytest.raises(nnparity.InputError, match=r"unsupported layer layers\[1\] \(elu\)"):
        nnparity.check_model(nnx.Sequential(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), nnx.elu),
                             loss="ce")
    with pytest.raises(nnparity.InputError, match="loss is given by name"):
        nnparity.check_model(mlp(), loss=optax.softmax_cross_entropy)


def test_an_error_in_a_flax_models_code_is_a_model_error():
    def broken(x):
        raise ValueError("oops")

    with pytest.raises(nnparity.ModelError, match=r"raised ValueError.*oops"):
        nnparity.check_model(nnx.Sequential(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), broken),
                             loss="ce")


def test_a_model_files_builder_may_return_a_flax_model(tmp_path, capsys):
    from nnparity.cli import main

    (tmp_path / "flax_mlp.py").write_text(
        "from flax import nnx\n\n\ndef build():\n"
        "    return nnx.Sequential(nnx.Linear(4, 8, rngs=nnx.Rngs(0)), nnx.sigmoid,\n"
        "                          nnx.Linear(8, 3, rngs=nnx.Rngs(1)))\n")
    assert main(["check", "--loss", "ce", "--model-file",
                 f"{tmp_path / 'flax_mlp.py'}:build"]) == 0
    assert "1 passed, 0 failed (1 backend: flax-model)" in capsys.readouterr().out
