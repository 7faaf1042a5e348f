"""The three-framework notes' MNIST CNN in Keras: conv 5x5x32 SAME relu -> max-pool 2 SAME ->
conv 5x5x64 SAME relu -> max-pool 2 SAME -> flatten (NHWC order) -> dense 1024 relu -> dropout
0.5 -> dense 10, sparse cross-entropy from logits (mean), Adam 1e-4, float64.

Expected: every tensor matches the reference (Keras' Adam is the reference's ``keras``
variant).
"""

import keras


def model() -> dict:
    keras.utils.set_random_seed(4)
    layers, f64 = keras.layers, {"dtype": "float64"}
    net = keras.Sequential([
        keras.Input((28, 28, 1), dtype="float64"),
        layers.Conv2D(32, 5, padding="same", activation="relu", **f64),
        layers.MaxPooling2D(2, padding="same", **f64),
        layers.Conv2D(64, 5, padding="same", activation="relu", **f64),
        layers.MaxPooling2D(2, padding="same", **f64),
        layers.Flatten(**f64),
        layers.Dense(1024, activation="relu", **f64),
        layers.Dropout(0.5, **f64),
        layers.Dense(10, **f64),
    ])
    return {"model": net,
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64"),
            "optimizer": lambda: keras.optimizers.Adam(learning_rate=1e-4)}
