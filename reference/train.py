"""Minibatch training, backend-agnostic: any object with the :class:`Trainer` shape can be trained.

Batching (``sampling``):
- ``epoch``: shuffle every epoch, take ``N // batch`` minibatches, drop the last partial one
  (the BP lecture);
- ``replacement``: ``N // batch`` minibatches per epoch, each drawn with replacement (the
  three-framework notes).
Error rate = share of rows whose argmax differs from the label (the BP lecture); for a single
output (``bce``) the prediction is ``o > 0``. Training stops with ``FloatingPointError`` on a
non-finite loss, naming the epoch and step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from . import network
from .dropout import draw_dropout_mask
from .family import Spec
from .optim import Optimizer, init_state, update
from .params import trainable
from .results import Gradients

SAMPLINGS = ("epoch", "replacement")


class Trainer(Protocol):
    """A model being trained: one optimiser step at a time, NumPy in and out."""

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """Update on batch ``(x, y)``; return the loss before the update."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Network output ``o [N, K]`` for ``x``."""

    def params(self) -> dict[str, np.ndarray]:
        """Current parameters in the canonical layout."""

    def state(self) -> dict[str, np.ndarray]:
        """Current optimiser state in the reference's format."""


class NumpyTrainer:
    """The reference trainer: the family's ``gradients`` then :func:`optim.update` (in place, on
    the trainer's own copies of params and state; ``params()``/``state()`` return copies). A
    spec with ``keep_prob < 1`` draws a dropout mask per step from ``default_rng(dropout_seed)``
    unless ``step`` is given one; ``predict`` never drops out."""

    def __init__(
        self,
        spec: Spec,
        params: dict[str, np.ndarray],
        optimizer: Optimizer,
        state: dict[str, np.ndarray] | None = None,
        dropout_seed: int = 0,
    ) -> None:
        self.spec, self.optimizer = spec, optimizer
        self._model = network
        self._model.check_params(spec, params)  # once, here: every step reuses these arrays
        self._params = {k: np.array(v, dtype=spec.dtype) for k, v in params.items()}
        self._trained = trainable(spec, self._params)  # the same arrays, state left out
        self._state = init_state(optimizer, self._trained) if state is None else {
            k: np.array(v) for k, v in state.items()}
        self._dropout_rng = np.random.default_rng(dropout_seed)

    def step(
        self, x: np.ndarray, y: np.ndarray, dropout_mask: np.ndarray | None = None
    ) -> float:
        if dropout_mask is None and self.spec.keep_prob < 1:
            dropout_mask = draw_dropout_mask(self.spec, len(x), self._dropout_rng)
        result = self._gradients(x, y, dropout_mask)
        self._update(result.grads)
        for name, value in result.state.items():  # running statistics: the pass's, not a step's
            self._params[name][...] = value
        return result.loss

    def _gradients(self, x: np.ndarray, y: np.ndarray,
                   dropout_mask: np.ndarray | None) -> Gradients:
        """The training pass of one step: what :func:`optim.update` then applies."""
        return self._model.gradients(self.spec, self._params, x, y, dropout_mask=dropout_mask,
                                     checked=True)

    def _update(self, grads: dict[str, np.ndarray]) -> None:
        """The optimiser's step from ``grads``, in place on the trainer's params and state."""
        update(self.optimizer, self._trained, grads, self._state)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._model.logits(self.spec, self._params, x)  # CNN: in chunks, bounded memory

    def params(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._params.items()}

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._state.items()}


def minibatches(
    n: int, batch: int, rng: np.random.Generator, sampling: str
) -> Iterator[np.ndarray]:
    """Index arrays for one epoch over ``n`` rows: ``n // batch`` batches of ``batch`` rows."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown sampling {sampling!r}; known: {', '.join(SAMPLINGS)}")
    if not 0 < batch <= n:
        raise ValueError(f"batch size {batch} must be between 1 and the {n} training rows")
    if sampling == "epoch":
        order = rng.permutation(n)
        for i in range(n // batch):
            yield order[i * batch:(i + 1) * batch]
    else:
        for _ in range(n // batch):
            yield rng.integers(0, n, size=batch)


def error_rate(output: np.ndarray, y: np.ndarray) -> float:
    """Share of rows predicted wrong: argmax for ``K > 1`` outputs, ``o > 0`` for one output."""
    y = np.asarray(y)
    if output.shape[1] == 1:
        truth = y.reshape(-1) > 0.5
        return float(np.mean((output[:, 0] > 0) != truth))
    truth = y if y.ndim == 1 else np.argmax(y, axis=1)
    return float(np.mean(np.argmax(output, axis=1) != truth))


@dataclass
class EpochRecord:
    """Metrics of one epoch: mean batch loss, error rates, wall time."""

    epoch: int
    loss: float
    train_error: float
    test_error: float
    seconds: float


@dataclass
class History:
    """Every epoch's record, in order."""

    epochs: list[EpochRecord] = field(default_factory=list)


def predict_all(
    trainer: Trainer,
    x: np.ndarray,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    chunk: int = 2000,
) -> np.ndarray:
    """Outputs ``[N, K]`` for every row of ``x``, predicted ``chunk`` rows at a time to bound
    memory (2000 MNIST rows in float64: 12.5 MB per prepared chunk)."""
    prepare = prepare or (lambda a: a)
    return np.concatenate([trainer.predict(prepare(x[i:i + chunk]))
                           for i in range(0, len(x), chunk)])


def evaluate(
    trainer: Trainer,
    x: np.ndarray,
    y: np.ndarray,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> float:
    """Error rate of ``trainer`` on ``(x, y)``; NaN when there are no rows."""
    if len(x) == 0:
        return float("nan")
    return error_rate(predict_all(trainer, x, prepare), y)


def train(
    trainer: Trainer,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    epochs: int,
    batch: int,
    seed: int = 0,
    sampling: str = "epoch",
    start_epoch: int = 0,
    steps: int | None = None,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    on_step: Callable[[Trainer, int, np.ndarray, np.ndarray], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> History:
    """Train for epochs ``start_epoch+1 .. epochs``; deterministic for a seed.

    ``steps`` stops the run after that many optimiser steps in all (counted from the run's
    start); the epoch it stops in is recorded as it stands.

    ``prepare`` converts a stored batch (e.g. uint8 images) to model input, per batch;
    ``on_step(trainer, step, x, y)`` sees each prepared batch *before* the update (``step``
    counts from 0 over the whole run, as the three-framework notes' loop does);
    ``on_epoch(record)`` sees each
    finished epoch.
    Epoch ``e`` uses the generator ``default_rng([seed, e])``, so a resumed run draws the same
    batches.
    """
    prepare = prepare or (lambda a: a)
    history = History()
    n = len(x_train)
    last = epochs * (n // batch) if steps is None else min(steps, epochs * (n // batch))
    for epoch in range(start_epoch + 1, epochs + 1):
        first = (epoch - 1) * (n // batch)
        if first >= last:
            break
        started = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        losses = []
        for i, idx in enumerate(minibatches(n, batch, rng, sampling), 1):
            if first + i > last:
                break
            xb, yb = prepare(x_train[idx]), y_train[idx]
            if on_step:
                on_step(trainer, first + i - 1, xb, yb)
            with np.errstate(over="ignore", invalid="ignore"):  # reported just below
                loss = trainer.step(xb, yb)
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss} at epoch {epoch}, step {i}: lower the learning rate "
                    "or change the initialisation"
                )
            losses.append(loss)
        record = EpochRecord(
            epoch=epoch,
            loss=float(np.mean(losses)),
            train_error=evaluate(trainer, x_train, y_train, prepare),
            test_error=evaluate(trainer, x_test, y_test, prepare),
            seconds=time.perf_counter() - started,
        )
        history.epochs.append(record)
        if on_epoch:
            on_epoch(record)
    return history

