"""``nnparity reproduce``: train the source documents' configurations and set our figures beside
theirs.

Each row trains one preset for several seeds and reports the final test accuracy as mean and
spread (min-max), with the seed's reported figure and the wall time per run. ``quick`` runs a
shortened version (one seed, at most ``QUICK_EPOCHS`` epochs, long full-batch runs cut to a
tenth, image sets cut to ``QUICK_ROWS`` training rows): a smoke test of the pipeline, not a
reproduction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nnparity.datasets import catalog
from nnparity.presets import preset
from nnparity.reference.train import Trainer, error_rate
from nnparity.training import TrainConfig, run_training

QUICK_EPOCHS = 2
QUICK_ROWS = 2000


@dataclass(frozen=True)
class Row:
    """One configuration to reproduce: a preset and what the source document reported for it."""

    label: str
    preset: str
    reported: str
    seeds: int | None = None  # fewer seeds than the command's for expensive rows
    probe_step: int | None = None  # also report accuracy on the batch about to train at this step


ROWS = (
    Row("BP lecture MNIST sigmoid [30,20,10], SGD 0.03", "seed000-mnist-sigmoid", "96.17 %"),
    Row("BP lecture MNIST relu [30,5,10], SGD 0.001", "seed000-mnist-relu", "96.18 %"),
    Row("BP lecture iris [20,20,3] sigmoid", "seed000-iris", "(no figure)"),
    Row("Notes' TwoLayerNet 784-50-10", "seed002-twolayer", "(no figure)"),
    Row("Notes' FC 784-256-PReLU-10, SGD 0.1", "seed002-fc-prelu-lr0.1", "97.39 %"),
    Row("Notes' FC 784-256-PReLU-10, SGD 0.01", "seed002-fc-prelu-lr0.01", "92.61 %"),
    Row("NumPy blog iris ThreeNet 20/20", "seed003-iris", "100 %"),
    Row("NumPy blog MNIST ThreeNet 200/80", "seed003-mnist", "97.92 %"),
    Row("Fashion-MNIST softmax MLP 256/128 (the report: 32.15 % by regression)",
        "fashion-mlp",
        "> 88 % expected"),
    Row("Notes' CNN, Adam 1e-4, batch 50, 5 epochs", "seed002-cnn",
        "98 % batch accuracy at step 700", seeds=1, probe_step=700),
    Row("Fashion-MNIST, the notes' CNN, 5 epochs", "fashion-cnn", "> 91 % expected",
        seeds=1),
)


@dataclass
class Outcome:
    """Accuracies (%) over seeds, and seconds per run."""

    row: Row
    backend: str
    accuracies: list[float] = field(default_factory=list)
    first_epoch: list[float] = field(default_factory=list)
    probe: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    dataset_note: str = ""

    @property
    def summary(self) -> str:
        """Final test accuracy (mean and spread), with the step probe and epoch 1 when known."""
        acc = np.array(self.accuracies)
        text = f"{acc[0]:.2f} %" if len(acc) == 1 else (
            f"{acc.mean():.2f} % ({acc.min():.2f}-{acc.max():.2f}, {len(acc)} seeds)")
        if self.probe:
            text += (f"; batch accuracy at step {self.row.probe_step}: "
                     f"{np.mean(self.probe):.0f} %; "
                     f"after epoch 1: {np.mean(self.first_epoch):.2f} %")
        return text


def quick_config(config: TrainConfig) -> TrainConfig:
    """The shortened run of ``--quick``."""
    epochs = config.epochs // 10 if config.epochs > 1000 else min(config.epochs, QUICK_EPOCHS)
    rows = QUICK_ROWS if config.dataset in catalog.DATASETS else config.n_train
    return TrainConfig.from_dict({**config.__dict__, "epochs": max(epochs, 1), "n_train": rows})


def reproduce(
    rows: list[Row], *, backend: str, seeds: int, quick: bool, data_dir: str | None,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Train every row for ``seeds`` seeds (1 when ``quick``)."""
    outcomes = []
    for row in rows:
        outcome = Outcome(row, backend)
        for seed in range(1 if quick else min(seeds, row.seeds or seeds)):
            config = TrainConfig.from_dict({**preset(row.preset), "seed": seed,
                                            "backend": backend})
            if quick:
                config = quick_config(config)
            started = time.perf_counter()
            result = run_training(config, data_dir=data_dir, force=True,
                                  on_step=_probe(row, outcome) if row.probe_step else None)
            outcome.seconds.append(time.perf_counter() - started)
            epochs = result.history.epochs
            outcome.accuracies.append(100 * (1 - epochs[-1].test_error))
            outcome.first_epoch.append(100 * (1 - epochs[0].test_error))
            outcome.dataset_note = result.split.note
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return outcomes


def _probe(row: Row, outcome: Outcome) -> Callable[[Trainer, int, np.ndarray, np.ndarray], None]:
    """The three-framework notes' measurement: accuracy on the batch about to be trained at
    ``probe_step`` (evaluated without dropout, before the update)."""

    def on_step(trainer: Trainer, step: int, x: np.ndarray, y: np.ndarray) -> None:
        if step == row.probe_step:
            outcome.probe.append(100 * (1 - error_rate(trainer.predict(x), y)))

    return on_step


def markdown_table(outcomes: list[Outcome], quick: bool) -> str:
    """The README's results table."""
    head = "| configuration | preset | reported | ours (test accuracy) | backend | s / run |"
    lines = [head, "|---|---|---|---|---|---:|"]
    for o in outcomes:
        note = f" [{o.dataset_note}]" if o.dataset_note else ""
        lines.append(f"| {o.row.label}{note} | `{o.row.preset}` | {o.row.reported} | "
                     f"{o.summary} | {o.backend} | {np.mean(o.seconds):.1f} |")
    if quick:
        lines.append("\n(--quick: shortened runs, not reproductions)")
    return "\n".join(lines)

