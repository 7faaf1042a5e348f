"""Keras residual blocks in the functional API: ``layers.Add()([h, body(h)])``, and
``Add()([body(h), Dense(h)])`` with a projection where the widths differ (float64, Adam).
``cnn``: a convolutional block on 6x6x2 inputs. Expected: every tensor matches the reference's
``residual`` layers."""

import keras

L = keras.layers


def model() -> dict:
    keras.utils.set_random_seed(0)
    x = keras.Input((6,), dtype="float64")
    h = L.Dense(5, activation="tanh", dtype="float64")(x)
    body = L.Dense(5, activation="sigmoid", dtype="float64")(h)
    body = L.Dense(5, dtype="float64")(body)
    h = L.Add(dtype="float64")([h, body])
    body = L.Dense(4, activation="tanh", dtype="float64")(h)
    h = L.Add(dtype="float64")([body, L.Dense(4, dtype="float64")(h)])  # projected skip
    out = L.Dense(3, dtype="float64")(h)
    return {"model": keras.Model(x, out),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64"),
            "optimizer": lambda: keras.optimizers.Adam(learning_rate=0.01)}


def cnn() -> dict:
    keras.utils.set_random_seed(0)
    x = keras.Input((6, 6, 2), dtype="float64")
    h = L.Conv2D(3, 3, padding="same", activation="relu", dtype="float64")(x)
    body = L.Conv2D(3, 3, padding="same", activation="relu", dtype="float64")(h)
    body = L.Conv2D(3, 3, padding="same", dtype="float64")(body)
    h = L.Add(dtype="float64")([h, body])
    out = L.Dense(4, dtype="float64")(L.Flatten(dtype="float64")(h))
    return {"model": keras.Model(x, out),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")}
