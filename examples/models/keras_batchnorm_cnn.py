"""A Keras CNN with batch normalisation over channels (NHWC): Conv2D + ReLU ->
BatchNormalization -> MaxPooling2D -> Flatten -> Dense, cross-entropy, SGD. Expected: every
tensor matches the reference, the moving mean and variance after each step included (Keras'
momentum 0.99 weighs the old value, as the reference's; its moving variance is the biased one).
"""

import keras


def model() -> dict:
    keras.utils.set_random_seed(0)
    layers = keras.layers
    net = keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(4, 3, activation="relu"),
                            layers.BatchNormalization(momentum=0.9), layers.MaxPooling2D(2),
                            layers.Flatten(), layers.Dense(3)])
    return {"model": net,
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "optimizer": lambda: keras.optimizers.SGD(learning_rate=0.1)}
