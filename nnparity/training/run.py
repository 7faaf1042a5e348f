"""Training runs for ``nnparity train``: configuration, data, backend trainer, metrics, checkpoints.

A run is deterministic for its configuration: parameters from ``init_params(spec, init, seed)``,
epoch ``e``'s batches from ``default_rng([seed, e])``. A checkpoint (params, optimiser state,
epoch, configuration) is written atomically after every epoch, so ``--resume`` continues exactly.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from nnparity.allocator import pin_allocator
from nnparity.backends import registry
from nnparity.datasets import catalog
from nnparity.datasets.load import load_idx_dataset
from nnparity.datasets.named import load_embedded
from nnparity.datasets.split import Split
from nnparity.errors import CheckFailed, InputError
from nnparity.files.atomic import atomic_path
from nnparity.files.weights import save_weights
from nnparity.memory import EVAL_ROWS, check_memory, estimate_bytes
from nnparity.progress import Progress
from nnparity.reference import Optimizer, Spec, init_params, network
from nnparity.reference.family import FAMILIES, spec_from_dict
from nnparity.reference.train import EpochRecord, History, Trainer, predict_all, train
from nnparity.stopping import check_stop
from nnparity.training.resume import checkpoint_meta, load_checkpoint


@dataclass
class TrainConfig:
    """Everything that defines a training run (presets fill these; the CLI overrides them).

    ``model`` names the family whose spec class builds the network from these options
    (``from_training``: the MLP from ``layers``/``activations``; the three-framework notes' CNN
    from the image shape, ``conv``, ``kernel``, ``layers`` and ``keep_prob``); ``spec`` (a spec
    file's JSON, ``train --spec``) gives the network instead, any family or a ``net`` list.
    ``steps`` ends the run after that many optimiser steps (within ``epochs``).
    ``input_scale`` divides uint8 image pixels (255: ``[0, 1]``; 1: the raw 0-255 values).
    ``variance`` sets every batchnorm layer's running-variance estimator: ``biased``,
    ``unbiased`` or ``native`` (the backend's own: torch's unbiased, the others' biased);
    None keeps the spec's.
    """

    dataset: str = "iris"
    n_train: int | None = None
    layers: tuple[int, ...] = (20, 20, 3)
    activations: tuple[str, ...] = ("sigmoid", "sigmoid", "identity")
    loss: str = "ce"
    reduction: str = "sum"
    weight_decay: float = 0.0
    bias: bool = True
    dtype: str = "float64"
    init: str = "seed000-sigmoid"
    epochs: int = 200
    steps: int | None = None
    batch: int = 4
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    variant: str | None = None
    eps: float | None = None
    sampling: str = "epoch"
    seed: int = 0
    backend: str = "numpy"
    model: str = "mlp"
    spec: dict[str, Any] | None = None
    conv: tuple[int, ...] = (32, 64)
    kernel: int = 5
    keep_prob: float = 0.5
    input_scale: float = 255.0
    variance: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring ``None`` values (unset options)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in data.items() if v is not None})


@dataclass
class TrainResult:
    """A finished run."""

    spec: Spec
    params: dict[str, np.ndarray]
    history: History
    split: Split
    trainer: Trainer


def load_split(config: TrainConfig, data_dir: str | None = None) -> Split:
    """The dataset named by the configuration: embedded, or an IDX set of the catalog (found in
    ``data_dir``, ``$NNPARITY_DATA`` or the cache; never downloaded here). For image sets,
    ``n_train`` keeps that many training rows of a seeded permutation (for short runs)."""
    if config.dataset not in catalog.DATASETS:
        return load_embedded(config.dataset, seed=config.seed, n_train=config.n_train)
    x_train, y_train = load_idx_dataset(config.dataset, "train", data_dir=data_dir)
    x_test, y_test = load_idx_dataset(config.dataset, "test", data_dir=data_dir)
    if config.n_train and config.n_train > len(x_train):
        raise InputError(f"--n-train {config.n_train} is more than the {len(x_train)} training "
                         f"rows of {config.dataset}")
    if config.n_train:
        keep = np.sort(np.random.default_rng(config.seed).permutation(len(x_train))[
            :config.n_train])
        x_train, y_train = x_train[keep], y_train[keep]
    dataset = catalog.get_dataset(config.dataset)
    return Split(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64),
                 list(dataset.classes), note=dataset.note)


def input_width(split: Split) -> int:
    """Features per row once a batch is prepared (images are flattened)."""
    return int(np.prod(split.x_train.shape[1:]))


def batch_preparer(
    split: Split, spec: Spec, input_scale: float = 255.0
) -> Callable[[np.ndarray], np.ndarray]:
    """Per-batch conversion of stored rows to model input ``[N, *spec.input_shape]`` in the
    spec's dtype: uint8 images are divided by ``input_scale`` (255: ``[0, 1]``; 1: raw pixels)
    and flattened for the MLP, NHWC for the CNN; other data is only cast."""
    if not input_scale > 0:
        raise InputError(f"--input-scale must be positive, got {input_scale}")
    if split.x_train.dtype != np.uint8:
        return lambda a: a.astype(spec.dtype, copy=False)
    scale = np.asarray(input_scale, spec.dtype)

    def prepare(a: np.ndarray) -> np.ndarray:
        x = a.reshape(len(a), *spec.input_shape).astype(spec.dtype)
        x /= scale  # in place: one array per batch, not two
        return x

    return prepare


TRAINABLE = tuple(name for name, family in FAMILIES.items() if family.train_defaults is not None)
"""The families ``--model`` names: each spec class builds a run's spec by ``from_training``."""


def make_spec(config: TrainConfig, split: Split) -> Spec:
    """The spec of the run: ``config.spec`` (a spec file's, whose input must take the data's
    rows), else the family ``config.model`` names, built from the options and the rows' shape
    (an MLP flattens them; a CNN reads them as images)."""
    rows = tuple(split.x_train.shape[1:])
    try:
        if config.spec is not None:
            spec = spec_from_dict(with_variance(config.spec, config.variance, config.backend))
            if math.prod(spec.input_shape) != math.prod(rows):
                raise InputError(f"the spec's input_shape {list(spec.input_shape)} does not fit "
                                 f"the rows of {config.dataset}, of shape {list(rows)}")
            return spec
        if config.model not in TRAINABLE:
            raise InputError(f"unknown model {config.model!r}; known: {', '.join(TRAINABLE)}")
        return FAMILIES[config.model].spec_class.from_training(rows, **asdict(config))
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None


VARIANCE_CHOICES = ("biased", "unbiased", "native")
"""``TrainConfig.variance``'s values (``native``: the backend's ``batchnorm_variance``)."""


def with_variance(spec: dict[str, Any], variance: str | None, backend: str) -> dict[str, Any]:
    """``spec`` (a spec's JSON form) with every batchnorm layer's ``variance`` set to
    ``variance`` (``native``: ``backend``'s own estimator), residual blocks' layers included;
    unchanged when ``variance`` is None."""
    if variance is None:
        return spec
    if variance not in VARIANCE_CHOICES:
        raise InputError(f"unknown variance {variance!r}; known: {', '.join(VARIANCE_CHOICES)}")
    chosen = registry.get(backend).batchnorm_variance if variance == "native" else variance

    def walk(entry: Any) -> Any:  # the spec, then each layer; a residual's holds a "net" too
        if not isinstance(entry, dict):
            return entry  # the spec's own validation names what is wrong
        if entry.get("kind") == "batchnorm":
            return {**entry, "variance": chosen}
        layers = entry.get("net")
        return {**entry, "net": [walk(e) for e in layers]} if isinstance(layers, list) else entry

    return walk(spec)


def run_bytes(config: TrainConfig, split: Split, spec: Spec) -> int:
    """Estimated peak bytes of the run: the dataset's arrays, each prepared batch (and
    evaluation chunk) twice (stored rows converted, then scaled), and the model's own needs
    (:func:`nnparity.memory.estimate_bytes`)."""
    arrays = (split.x_train, split.y_train, split.x_test, split.y_test)
    rows = max(len(split.x_train), len(split.x_test))
    prepared = 2 * max(config.batch, min(rows, EVAL_ROWS)) * input_width(split) \
        * np.dtype(spec.dtype).itemsize
    return estimate_bytes(spec, config.batch, optimizer=config.optimizer, eval_rows=rows,
                          data_bytes=sum(a.nbytes for a in arrays) + prepared)


def make_optimizer(config: TrainConfig) -> Optimizer:
    """The optimiser, in the backend's native variant unless one is given."""
    native = registry.get(config.backend).optimizer_variant
    return Optimizer(name=config.optimizer, lr=config.lr, momentum=config.momentum,
                     eps=config.eps, variant=config.variant or native)


DIVERGENCE_FACTOR = 1000.0
"""An epoch whose mean loss exceeds this multiple of the starting loss (the run's first batch,
before any update) is called diverging."""


class Diverged(CheckFailed):
    """Training stopped at a diverging epoch (``stop_on_divergence``): exit 1. ``history`` holds
    the epochs run, the diverging one last."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def run_training(
    config: TrainConfig,
    *,
    checkpoint: str | None = None,
    resume: str | None = None,
    data_dir: str | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_step: Callable[[Trainer, int, np.ndarray, np.ndarray], None] | None = None,
    progress: bool = False,
    force: bool = False,
    reset_optimizer: bool = False,
    stop_on_divergence: bool = False,
    warn: Callable[[str], None] = _warn,
) -> TrainResult:
    """Train as configured; continue from ``resume`` (a checkpoint, checked by
    :func:`nnparity.training.resume.load_checkpoint`; ``reset_optimizer`` starts its optimiser state
    afresh) when given. ``progress`` shows each epoch's steps (a bar on a terminal, occasional
    plain lines in logs). A run whose memory estimate exceeds what is available is refused
    (``InputError``) unless ``force``. The first epoch whose loss exceeds ``DIVERGENCE_FACTOR``
    times the starting loss (kept in checkpoints) is reported through ``warn`` (with its epoch
    and the word "diverging"); with ``stop_on_divergence`` training stops there with
    :class:`Diverged`, and the checkpoint keeps the last good epoch."""
    split = load_split(config, data_dir)
    spec = make_spec(config, split)
    if config.batch > len(split.x_train):
        raise InputError(f"--batch {config.batch} is larger than the {len(split.x_train)} "
                         f"training rows of {config.dataset}")
    prepare = batch_preparer(split, spec, config.input_scale)
    backend = registry.get(config.backend)
    optimizer = make_optimizer(config)
    check_memory(run_bytes(config, split, spec), "this training run",
                 "lower --batch, --layers or --n-train", force)
    if resume:
        resumed = load_checkpoint(resume, spec, optimizer, config.backend, config.epochs,
                                  reset_optimizer=reset_optimizer, input_scale=config.input_scale)
        params, state, start, first = (resumed.params, resumed.state, resumed.epoch,
                                       resumed.first_loss)
    else:
        params, state, start, first = init_params(spec, config.init, config.seed), None, 0, None
    pin_allocator()  # as bench does: the step's freed blocks stay for the next step
    trainer = backend.trainer(spec, params, optimizer, state)
    per_epoch = len(split.x_train) // config.batch
    bar: list[Progress] = []
    first_loss: list[float] = [] if first is None else [first]
    same_file = bool(checkpoint and resume and Path(checkpoint).resolve() == Path(resume).resolve())
    saved: list[int] = [start] if same_file else []
    warned: list[int] = []
    done = History()

    def step_started(trainer: Trainer, step: int, x: np.ndarray, y: np.ndarray) -> None:
        if progress:
            if step % per_epoch == 0:
                bar[:] = [Progress(per_epoch, f"epoch {step // per_epoch + 1}/{config.epochs}")]
            bar[0].update()
        if not first_loss:
            with np.errstate(all="ignore"):
                first_loss[:] = [network.loss(spec, trainer.params(), x, y)]
        if on_step:
            on_step(trainer, step, x, y)

    def epoch_done(record: EpochRecord) -> None:
        for b in bar:
            b.close()
        done.epochs.append(record)
        diverging = record.loss > DIVERGENCE_FACTOR * max(first_loss[0], 1e-12)
        if checkpoint and not (diverging and stop_on_divergence):
            save_weights(checkpoint, spec, trainer.params(), trainer.state(),
                         meta=checkpoint_meta(record.epoch, optimizer, config.backend,
                                              first_loss[0], _jsonable(config)))
            saved[:] = [record.epoch]
        if on_epoch:
            on_epoch(record)
        check_stop()  # a Ctrl-C or SIGTERM swallowed by a library stops here, the epoch kept
        if diverging and not warned:
            warned.append(record.epoch)
            warn(f"epoch {record.epoch}: loss {record.loss:.6g} is over "
                 f"{DIVERGENCE_FACTOR:.0f}x the starting loss {first_loss[0]:.6g}: diverging "
                 "(lower --lr)")
            if stop_on_divergence:
                kept = f"; {checkpoint} keeps epoch {saved[0]}" if saved else ""
                raise Diverged(f"stopped at epoch {record.epoch}: diverging "
                               f"(--stop-on-divergence){kept}", done)

    history = train(trainer, split.x_train, split.y_train, split.x_test, split.y_test,
                    epochs=config.epochs, steps=config.steps, batch=config.batch,
                    seed=config.seed, sampling=config.sampling, start_epoch=start,
                    prepare=prepare, on_step=step_started,
                    on_epoch=epoch_done)
    return TrainResult(spec, trainer.params(), history, split, trainer)


def _jsonable(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(config)))


def write_metrics(path: str, history: History) -> None:
    """Per-epoch metrics as CSV (``.csv``) or JSON (anything else), written atomically."""
    rows = [asdict(r) for r in history.epochs]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        if Path(path).suffix.lower() == ".csv":
            writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(EpochRecord)])
            writer.writeheader()
            writer.writerows(rows)
        else:
            json.dump({"epochs": rows}, handle, indent=2)


PLOT_FILES = ("curves.png", "misclassified.png")
"""The files :func:`write_plots` may write into its folder."""


def write_plots(result: TrainResult, config: TrainConfig, folder: Path) -> list[Path]:
    """``curves.png`` always; ``misclassified.png`` for image data with test errors."""
    from nnparity.training import plots

    note = f" ({result.split.note})" if result.split.note else ""
    title = f"{config.dataset}{note}: {list(config.layers)} on {config.backend}"
    written = [plots.plot_curves(result.history, folder / PLOT_FILES[0], title)]
    split = result.split
    if split.x_test.ndim >= 3 and len(split.x_test):
        prepare = batch_preparer(split, result.spec, config.input_scale)
        output = predict_all(result.trainer, split.x_test, prepare)
        path = plots.plot_misclassified(split.x_test, split.y_test, output.argmax(axis=1),
                                        split.classes, folder / PLOT_FILES[1])
        if path:
            written.append(path)
    return written
