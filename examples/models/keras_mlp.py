"""A plain Keras MLP on iris-shaped inputs (float64): Dense(16, relu) -> Dense(8, tanh) ->
Dense(3) logits, sparse cross-entropy from logits, Keras' Adam. Expected: every tensor matches
the reference (Keras' epsilon-hat Adam is the reference's ``keras`` variant)."""

import keras


def model() -> dict:
    keras.utils.set_random_seed(0)
    net = keras.Sequential([
        keras.Input((4,), dtype="float64"),
        keras.layers.Dense(16, activation="relu", dtype="float64"),
        keras.layers.Dense(8, activation="tanh", dtype="float64"),
        keras.layers.Dense(3, dtype="float64"),
    ])
    return {"model": net,
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64"),
            "optimizer": lambda: keras.optimizers.Adam(learning_rate=0.01)}
