"""Users' Keras models from files: the examples' expected outcomes and diagnoses, chains only,
refusals with exit 2."""

from __future__ import annotations

import pytest

from nnparity.errors import InputError
from nnparity.models import check
from nnparity.models.source import load

pytestmark = pytest.mark.tensorflow


def test_keras_mlp_matches_every_tensor_and_three_adam_steps(check_file):
    result = check_file("keras_mlp.py:model")
    assert result.passed, result.divergence
    assert result.backend == "keras-model"
    assert {c.stage for c in result.comparisons} == {"forward", "loss", "delta", "grad", "update"}
    assert max(c.max_rel for c in result.comparisons) < 1e-13


def test_keras_mlp_dropout_masks_are_read_and_every_tensor_matches(check_file):
    result = check_file("keras_mlp.py:dropout")
    assert result.passed, result.divergence
    assert {"forward h.dropout1", "forward h.dropout2", "update step3.W2"} <= {
        c.label for c in result.comparisons}


def test_custom_gradient_activation_correct_passes(check_file):
    result = check_file("keras_custom_gradient.py:correct")
    assert result.passed, result.divergence


def test_custom_gradient_activation_faulty_fails_at_its_delta_and_is_diagnosed(check_file):
    result = check_file("keras_custom_gradient.py:faulty")
    assert result.divergence.startswith("forward and loss match; delta of layer1 differs")
    assert "the backward of dense" in result.diagnosis and "faulty_tanh" in result.diagnosis


def test_keras_adamw_maps_to_the_references_decoupled_decay(tmp_path):
    target = _write(tmp_path, """
def model():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,), dtype="float64"),
                            L.Dense(4, activation="relu", dtype="float64"),
                            L.Dense(2, dtype="float64")])
    return {"model": net, "loss": keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, dtype="float64"),
            "optimizer": lambda: keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1)}
""")
    model = check.adapt(load(target, loss="ce"))
    assert (model.optimizer.name, model.optimizer.variant) == ("adamw", "keras")
    result = check.check(model, target)
    assert result.passed, result.divergence


def test_keras_default_prelu_has_a_slope_per_unit_and_passes(tmp_path):
    target = _write(tmp_path, """
def model():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,), dtype="float64"), L.Dense(4, dtype="float64"),
                            L.PReLU(dtype="float64"), L.Dense(2, dtype="float64")])
    return {"model": net, "loss": keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, dtype="float64"),
            "optimizer": lambda: keras.optimizers.SGD(learning_rate=0.1)}
""")
    model = check.adapt(load(target, loss="ce"))
    assert model.spec.prelu_slopes == "unit" and model.spec.param_shapes()["a1"] == (1, 4)
    result = check.check(model, target)
    assert result.passed, result.divergence


def _write(tmp_path, body: str) -> str:
    path = tmp_path / "user_keras.py"
    path.write_text("import keras\nL = keras.layers\n" + body)
    return str(path) + ":model"


def test_a_float32_loss_object_on_a_float64_model_is_diagnosed(tmp_path):
    target = _write(tmp_path, """
def model():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,), dtype="float64"),
                            L.Dense(2, dtype="float64")])
    return {"model": net,
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
""")
    result = check.check(check.adapt(load(target, loss="ce")), target)
    assert not result.passed
    assert result.diagnosis.startswith("the loss object computes in float32 while the model "
                                       "is float64")


@pytest.mark.parametrize(("body", "message"), [
    ("def model():\n    return keras.Sequential([keras.Input((3,)), L.Dense(4), "
     "L.UnitNormalization(), L.Dense(2)])\n", "unsupported layer unit_normalization"),
    ("def model():\n    return {'model': keras.Sequential([keras.Input((3,)), L.Dense(2)]), "
     "'optimizer': keras.optimizers.SGD(weight_decay=0.1)}\n", "optimiser SGD"),
    ("def model():\n    x = keras.Input((3,))\n    a = L.Dense(2)(L.Dense(2)(x))\n"
     "    b = L.Dense(2)(L.Dense(2)(x))\n"
     "    return keras.Model(x, L.Add()([a, b]))\n", r"a sum that is not x \+ f\(x\)"),
])
def test_what_has_no_exact_counterpart_is_refused(tmp_path, body, message):
    with pytest.raises(InputError, match=message):
        check.adapt(load(_write(tmp_path, body), loss="ce"))


def test_a_keras_dropout_layer_without_inverted_scaling_is_diagnosed(tmp_path):
    target = _write(tmp_path, """
import tensorflow as tf
NNPARITY_LAYERS = {"PlainDropout": "dropout"}
class PlainDropout(L.Layer):
    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
    def call(self, h, training=False):
        if not training:
            return h * (1 - self.rate)
        return h * tf.cast(tf.random.uniform(tf.shape(h)) >= self.rate, h.dtype)
def model():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((4,), dtype="float64"),
                            L.Dense(8, activation="tanh", dtype="float64"),
                            PlainDropout(0.4, dtype="float64"), L.Dense(3, dtype="float64")])
    return {"model": net, "loss": "ce"}
""")
    model = check.adapt(load(target, loss="ce"))
    assert model.spec.dropout_after == (1,) and model.spec.keep_prob == 0.6
    result = check.check(model, target)
    assert result.divergence.startswith("forward of h.dropout1 differs")
    assert result.diagnosis.startswith("dropout is not inverted")
