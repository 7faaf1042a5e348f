"""What makes the tensorflow backend an ordinary Keras model (its parity with the reference is in
``test_parity_conventions.py`` and the parity matrix, once for every backend)."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import SAME_OPS_FLOAT64, tolerance
from nnparity.reference import MLPSpec, Optimizer, init_params

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def tf_backend():
    return registry.get("tensorflow")


def test_model_is_plain_keras_with_canonical_kernels() -> None:
    import keras

    from nnparity.backends.tensorflow_backend import build_model

    spec = MLPSpec(3, (4, 2), ("sigmoid", "identity"), "ce")
    params = init_params(spec, "seed004", seed=1)
    model = build_model(spec)
    named = model.named_variables()
    assert list(named) == ["W1", "b1", "W2", "b2"]
    for name, variable in named.items():
        variable.assign(params[name].reshape(variable.shape))
    assert isinstance(model, keras.Model)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Activation"] * 2
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), params["W1"])  # [D_in, D_out]
    assert model.layers[0].kernel.dtype == "float64"


def test_training_step_is_traced_once(tf_backend) -> None:
    """``Backend.step`` in a loop over varying batch sizes builds one model and traces once."""
    from nnparity.backends import tensorflow_backend as tfb

    spec = MLPSpec(3, (4, 3), ("tanh", "identity"), "ce", "mean", dtype="float32")
    params, state = init_params(spec, seed=5), None
    optimizer = Optimizer("adam", variant="keras")
    rng = np.random.default_rng(0)
    for batch in (1, 4, 9):
        x, y = rng.standard_normal((batch, 3)), rng.integers(0, 3, batch)
        params, state, _ = tf_backend.step(spec, params, state, x, y, optimizer)
    entries = tfb._cache._entries[(spec, optimizer)]
    assert len(entries) == 1
    assert entries[0].train_step(sparse=True).experimental_get_tracing_count() == 1


def test_live_trainers_do_not_share_variables(tf_backend) -> None:
    spec = MLPSpec(2, (2,), ("identity",), "l2")
    optimizer = Optimizer("sgd", lr=0.1, variant="keras")
    a = tf_backend.trainer(spec, init_params(spec, seed=1), optimizer)
    b = tf_backend.trainer(spec, init_params(spec, seed=2), optimizer)
    a.step(np.ones((1, 2)), np.zeros((1, 2)))
    assert not np.array_equal(a.params()["W1"], b.params()["W1"])
    np.testing.assert_array_equal(b.params()["W1"], init_params(spec, seed=2)["W1"])


def test_torch_variant_is_refused(tf_backend) -> None:
    spec = MLPSpec(2, (2,), ("identity",), "l2")
    params = init_params(spec)
    for name in ("sgd", "momentum", "adam"):
        with pytest.raises(ValueError, match="'keras' variant"):
            tf_backend.trainer(spec, params, Optimizer(name, variant="torch"))
    assert tf_backend.optimizer_variant == "keras"


def test_keras_leaky_relu_layer_slope_is_float32() -> None:
    """Why the backend writes leaky relu itself: ``keras.layers.LeakyReLU``'s TF op keeps
    ``alpha`` in float32, so in float64 it is 2.2e-9 relative off the reference's 0.01 slope."""
    import keras

    from nnparity.reference.activations import leaky_relu

    z = -np.linspace(1, 5, 7)
    got = keras.layers.LeakyReLU(negative_slope=0.01, dtype="float64")(z).numpy()
    err = np.max(np.abs(got - leaky_relu(z))) / np.max(np.abs(leaky_relu(z)))
    print(f"keras LeakyReLU float64 max rel error: {err:.2e}")
    assert err > tolerance("float64")
    assert err < tolerance("float32")


def test_keras_losses_skip_a_sigmoid_output_layer() -> None:
    """Why the backend uses ``tf.nn`` losses: on the output of a Keras sigmoid, Keras'
    cross-entropy with ``from_logits=True`` uses the sigmoid's input as the logits."""
    import keras
    import tensorflow as tf

    z = tf.constant([[0.3, -1.2, 2.0]], dtype=tf.float64)
    h = keras.layers.Activation("sigmoid", dtype="float64")(z)
    with pytest.warns(UserWarning, match="from_logits=True"):
        keras_loss = keras.losses.categorical_crossentropy([[0.0, 1.0, 0.0]], h, from_logits=True)
    on_z = tf.nn.softmax_cross_entropy_with_logits([[0.0, 1.0, 0.0]], z)
    on_h = tf.nn.softmax_cross_entropy_with_logits([[0.0, 1.0, 0.0]], h)
    np.testing.assert_allclose(keras_loss.numpy(), on_z.numpy(), rtol=SAME_OPS_FLOAT64)
    assert abs(keras_loss.numpy()[0] - on_h.numpy()[0]) > 0.1


def test_determinism_profile_applied() -> None:
    import tensorflow as tf

    from nnparity.backends.determinism import active_profile, describe

    info = describe()
    assert info["TF_ENABLE_ONEDNN_OPTS"] == "0"
    threads = active_profile().threads
    assert tf.config.threading.get_intra_op_parallelism_threads() == threads
    assert info["threads"]["tensorflow_intra_op"] == threads
