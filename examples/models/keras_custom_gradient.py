"""A Keras activation with a hand-written gradient (``tf.custom_gradient``), passed as
``Dense(..., activation=...)`` and mapped by NNPARITY_LAYERS to the reference's tanh, so its
gradient is what the check measures.

- ``correct``: the gradient is ``1 - h^2``. Expected: every tensor matches.
- ``faulty``: the gradient is ``1 - h`` (the square forgotten). Expected: forward and loss match,
  the delta of that layer differs, diagnosed as the activation's backward.
"""

import keras
import tensorflow as tf

NNPARITY_LAYERS = {"my_tanh": "tanh", "faulty_tanh": "tanh"}


@tf.custom_gradient
def my_tanh(z):
    h = tf.tanh(z)
    return h, lambda dh: dh * (1 - h * h)


@tf.custom_gradient
def faulty_tanh(z):
    h = tf.tanh(z)
    return h, lambda dh: dh * (1 - h)  # wrong: the derivative is 1 - h^2


def _net(activation) -> keras.Model:
    keras.utils.set_random_seed(2)
    return keras.Sequential([
        keras.Input((4,), dtype="float64"),
        keras.layers.Dense(10, activation=activation, dtype="float64"),
        keras.layers.Dense(3, dtype="float64"),
    ])


def _entry(activation) -> dict:
    return {"model": _net(activation),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64"),
            "optimizer": lambda: keras.optimizers.SGD(learning_rate=0.5, momentum=0.9)}


def correct() -> dict:
    return _entry(my_tanh)


def faulty() -> dict:
    return _entry(faulty_tanh)
