"""Flax NNX modules with their own ``__call__`` through ``nnparity.check_model``: the calls
``__call__`` makes are traced in order (Linear, Conv, activations, max pooling, a flattening
reshape, Dropout), the chain checked, the user's ``__call__`` run forward and backward; what is
not a chain is refused naming it."""

from __future__ import annotations

import pytest

import nnparity

nnx = pytest.importorskip("flax.nnx", reason="flax is not installed: pip install nnparity[all]")
jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
jnp = jax.numpy


class MLP(nnx.Module):
    def __init__(self, rngs, dropout=0.0):
        self.fc1 = nnx.Linear(4, 8, rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout else None
        self.fc2 = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.fc1(x))
        return self.fc2(self.drop(h) if self.drop else h)


class CNN(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 2, (3, 3), padding="SAME", rngs=rngs)
        self.dense = nnx.Linear(4 * 4 * 2, 3, rngs=rngs)

    def __call__(self, x):
        h = nnx.max_pool(jax.nn.relu(self.conv(x)), window_shape=(2, 2), strides=(2, 2))
        return self.dense(h.reshape(h.shape[0], -1))


@jax.custom_vjp
def wrong_relu(x):
    return nnx.relu(x)


wrong_relu.defvjp(lambda x: (wrong_relu(x), x), lambda x, g: (g,))  # forgets relu's 0 for x < 0


class WrongBackward(MLP):
    def __call__(self, x):
        return self.fc2(wrong_relu(self.fc1(x)))


class Shifted(MLP):
    def __call__(self, x):
        h = nnx.relu(self.fc1(x))
        return self.fc2(h + 1.0)  # a shift outside a layer: no residual block


PAIR = (optax.adam(0.01), nnparity.Optimizer("adam", lr=0.01))


@pytest.mark.parametrize("build, shape", [(MLP, None), (CNN, (8, 8, 1))], ids=["mlp", "cnn"])
def test_a_module_with_its_own_call_matches_the_reference_and_its_optax_steps_too(build, shape):
    model = build(nnx.Rngs(0))
    before = model.fc1.kernel[...] if build is MLP else model.conv.kernel[...]
    report = nnparity.check_model(model, loss="ce", optimizer=PAIR, input_shape=shape)
    assert report.ok, report.table()
    comparisons = report.results[0].comparisons
    assert {c.stage for c in comparisons} == {"forward", "loss", "delta", "grad", "update"}
    names = {c.name for c in comparisons}
    expected = {"z.layer1", "h.layer1", "W2", "step3.loss"} if build is MLP else \
        {"z.conv1", "h.pool1", "h.flatten", "conv1.W", "step3.loss"}
    assert expected <= names
    after = model.fc1.kernel[...] if build is MLP else model.conv.kernel[...]
    assert (after == before).all()  # the user's weights put back


def test_a_wrong_custom_vjp_activation_fails_at_the_delta_before_it():
    report = nnparity.check_model(WrongBackward(nnx.Rngs(0)), loss="ce")
    first = report.first_divergence
    assert not report.ok
    assert (first.backend, first.stage, first.tensor) == ("flax-model", "delta", "layer1")


def test_an_add_that_is_no_residual_is_refused_naming_it_and_every_patch_is_restored():
    relu, reshape, linear_call, own_call = (nnx.relu, jax.Array.reshape, nnx.Linear.__call__,
                                            Shifted.__call__)
    with pytest.raises(nnparity.InputError, match=r"an addition \(\+\) in __call__ \(a residual "
                                                  r"add"):
        nnparity.check_model(Shifted(nnx.Rngs(0)), loss="ce")
    assert (nnx.relu, jax.Array.reshape, nnx.Linear.__call__) == (relu, reshape, linear_call)
    assert Shifted.__call__ is own_call  # the user's own class as it was


def test_a_branch_and_an_unknown_layer_are_refused_naming_where():
    class Branch(MLP):
        def __call__(self, x):
            self.fc1(x)
            return self.fc2(nnx.relu(jnp.ones((len(x), 8))))

    with pytest.raises(nnparity.InputError,
                       match=r"relu\(\) in __call__ is not given the output of fc1 \(Linear\)"):
        nnparity.check_model(Branch(nnx.Rngs(0)), loss="ce")

    class Normed(MLP):
        def __init__(self, rngs):
            super().__init__(rngs)
            self.norm = nnx.RMSNorm(8, rngs=rngs)

        def __call__(self, x):
            return self.fc2(self.norm(self.fc1(x)))

    with pytest.raises(nnparity.InputError, match=r"unsupported layer norm \(RMSNorm\)"):
        nnparity.check_model(Normed(nnx.Rngs(0)), loss="ce")


def test_an_error_in_call_is_a_model_error_and_the_patches_are_restored():
    class Broken(MLP):
        def __call__(self, x):
            self.fc1(x)
            raise ValueError("oops")

    relu, linear_call = jax.nn.relu, vars(nnx.Linear)["__call__"]
    with pytest.raises(nnparity.ModelError, match=r"raised ValueError.*oops"):
        nnparity.check_model(Broken(nnx.Rngs(0)), loss="ce")
    assert jax.nn.relu is relu and vars(nnx.Linear)["__call__"] is linear_call


def test_dropout_in_a_module_passes_with_the_mask_read_from_its_output():
    model = MLP(nnx.Rngs(0, dropout=1), dropout=0.5)
    report = nnparity.check_model(model, loss="ce", optimizer=PAIR)
    assert report.ok, report.table()
    names = {c.name for c in report.results[0].comparisons}
    assert {"h.dropout1", "eval.output", "step3.loss"} <= names
    assert report.results[0].spec["keep_prob"] == 0.5


def test_a_model_files_builder_may_return_a_module_with_its_own_call(tmp_path, capsys):
    from nnparity.cli import main

    (tmp_path / "flax_custom.py").write_text(
        "from flax import nnx\n\n\nclass Net(nnx.Module):\n"
        "    def __init__(self, rngs):\n"
        "        self.fc1 = nnx.Linear(4, 8, rngs=rngs)\n"
        "        self.fc2 = nnx.Linear(8, 3, rngs=rngs)\n\n"
        "    def __call__(self, x):\n"
        "        return self.fc2(nnx.tanh(self.fc1(x)))\n\n\n"
        "def build():\n    return Net(nnx.Rngs(0))\n")
    assert main(["check", "--loss", "ce", "--model-file",
                 f"{tmp_path / 'flax_custom.py'}:build"]) == 0
    assert "1 passed, 0 failed (1 backend: flax-model)" in capsys.readouterr().out
