"""What ``nnparity bench`` times beside the backends: the floor and the plain framework loops.

Each maker takes the benchmark's net (``weights``/``biases`` in the canonical layout, float32,
``hidden`` activation, identity output, softmax cross-entropy ``mean``, plain SGD at ``lr``) and
the epoch's batches, and returns ``epoch(limit=None)``, which trains one pass over the batches
(the first ``limit`` only, for a warm-up) and returns when the work is done. Batches are
converted to the framework's tensors once, before timing.

- ``numpy floor``: :func:`nnparity.bench.floor.floor_trainer`, the least a NumPy implementation
  does;
- ``torch plain``: ``nn.Sequential`` + ``torch.optim.SGD``, what a PyTorch user writes;
- ``keras tape``: a ``keras.Sequential`` stepped by a ``tf.function`` with ``GradientTape`` and
  ``keras.optimizers.SGD`` (no ``fit``);
- ``jax jit``: one ``jax.jit``-compiled step (``value_and_grad`` and the SGD update).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import numpy as np

from nnparity.bench.floor import floor_trainer

Batches = list[tuple[np.ndarray, np.ndarray]]
Epoch = Callable[[int | None], None]
Maker = Callable[[list[np.ndarray], list[np.ndarray], str, Batches, float], Epoch]


def numpy_floor(weights: list[np.ndarray], biases: list[np.ndarray], hidden: str,
                batches: Batches, lr: float) -> Epoch:
    """The floor trainer over the batches (copies of the weights, updated in place)."""
    step = floor_trainer([w.copy() for w in weights], [b.copy() for b in biases], hidden,
                         len(batches[0][0]), lr)

    def epoch(limit: int | None = None) -> None:
        for x, y in batches[:limit]:
            step(x, y)

    return epoch


def torch_plain(weights: list[np.ndarray], biases: list[np.ndarray], hidden: str,
                batches: Batches, lr: float) -> Epoch:
    """``nn.Sequential`` of ``nn.Linear`` and the activation, ``CrossEntropyLoss``, ``SGD``."""
    import torch
    from torch import nn

    from nnparity.backends.determinism import configure_torch

    configure_torch()
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        linear = nn.Linear(*w.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T))
            linear.bias.copy_(torch.from_numpy(b.reshape(-1)))
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(nn.Sigmoid() if hidden == "sigmoid" else nn.ReLU())
    model = nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    tensors = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def epoch(limit: int | None = None) -> None:
        for x, y in tensors[:limit]:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()

    return epoch


def keras_tape(weights: list[np.ndarray], biases: list[np.ndarray], hidden: str,
               batches: Batches, lr: float) -> Epoch:
    """``keras.Sequential`` of ``Dense`` layers stepped by a ``tf.function`` with a tape."""
    from nnparity.backends.determinism import import_tensorflow

    tf, keras = import_tensorflow()
    model = keras.Sequential([keras.Input((weights[0].shape[0],))] + [
        keras.layers.Dense(w.shape[1], activation=hidden if i < len(weights) - 1 else None)
        for i, w in enumerate(weights)])
    for layer, w, b in zip(model.layers, weights, biases, strict=True):
        layer.set_weights([w, b.reshape(-1)])
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    tensors = [(tf.constant(x), tf.constant(y)) for x, y in batches]

    @tf.function
    def step(x: object, y: object) -> object:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    def epoch(limit: int | None = None) -> None:
        for x, y in tensors[:limit]:
            loss = step(x, y)
        loss.numpy()

    return epoch


def jax_jit(weights: list[np.ndarray], biases: list[np.ndarray], hidden: str,
            batches: Batches, lr: float) -> Epoch:
    """A ``jax.jit`` step: ``value_and_grad`` of the mean cross-entropy, then SGD."""
    import jax
    import jax.numpy as jnp

    act = jax.nn.sigmoid if hidden == "sigmoid" else jax.nn.relu

    def loss_fn(params: list[tuple[object, object]], x: object, y: object) -> object:
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i < len(params) - 1:
                h = act(h)
        picked = jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], axis=1)
        return -jnp.mean(picked)

    @jax.jit
    def step(params: list[tuple[object, object]], x: object, y: object) -> object:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, grads,
                                                                          strict=True)], loss

    state = [[(jnp.asarray(w), jnp.asarray(b)) for w, b in zip(weights, biases, strict=True)]]
    arrays = [(jnp.asarray(x), jnp.asarray(y.astype(np.int32))) for x, y in batches]

    def epoch(limit: int | None = None) -> None:
        params = state[0]
        for x, y in arrays[:limit]:
            params, loss = step(params, x, y)
        state[0] = params
        loss.block_until_ready()

    return epoch


LOOPS: dict[str, tuple[str, Maker]] = {
    "numpy floor": ("numpy", numpy_floor),
    "torch plain": ("torch", torch_plain),
    "keras tape": ("tensorflow", keras_tape),
    "jax jit": ("jax", jax_jit),
}


def available_loops() -> list[str]:
    """The loops whose framework is importable (the floor always is)."""
    return [name for name, (module, _) in LOOPS.items()
            if importlib.util.find_spec(module) is not None]
