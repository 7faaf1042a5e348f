"""The page's figures (SVG, written beside the page): activation curves with their derivatives,
and training curves of runs made while generating or given as metrics files.

matplotlib is optional: without it :func:`pyplot` returns None and the page says so.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

import numpy as np

from nnparity.errors import InputError
from nnparity.files.atomic import atomic_path
from nnparity.files.escape import plot_text
from nnparity.reference import activations

CURVES = ("sigmoid", "tanh", "relu", "relu3", "identity", "leaky_relu")


def pyplot() -> ModuleType | None:
    """``matplotlib.pyplot`` on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "nnparity"  # identical files for identical figures
    return plt


def _save(plt: ModuleType, fig: object, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="svg", metadata={"Date": None})
    plt.close(fig)


def activation_curves(plt: ModuleType, path: Path) -> None:
    """f(z) and f'(z) of every activation on [-3, 3], from the reference's functions."""
    z = np.linspace(-3, 3, 601)
    fig, axes = plt.subplots(2, 3, figsize=(9, 5), sharex=True)
    for ax, name in zip(axes.flat, CURVES, strict=True):
        act = activations.get_activation(name)
        h = act.f(z)
        ax.plot(z, np.clip(h, -3, 3), label="f(z)")
        ax.plot(z, np.clip(act.df(z, h), -3, 3), label="f'(z)", linestyle="--")
        ax.set_title(name)
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_ylim(-1.5, 3.2)
    axes.flat[0].legend(loc="upper left")
    fig.tight_layout()
    _save(plt, fig, path)


METRICS = ("epoch", "loss", "train_error", "test_error")
"""The columns a training curve needs from a ``nnparity train --metrics FILE.csv`` file."""


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """The :data:`METRICS` columns of a ``nnparity train --metrics FILE.csv`` file as arrays;
    an :class:`InputError` naming the file, and the column or line, when one is missing or not
    a number (read before the page's work starts)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the metrics CSV ({exc})") from None
    missing = [k for k in METRICS if not rows or k not in rows[0]]
    if missing:
        raise InputError(f"{path}: not a metrics CSV of nnparity train (no "
                         f"{', '.join(missing)} column{'s' if len(missing) > 1 else ''})")
    columns: dict[str, list[float]] = {k: [] for k in METRICS}
    for line, row in enumerate(rows, start=2):
        for key in METRICS:
            try:
                columns[key].append(float(row[key]))
            except (TypeError, ValueError):
                raise InputError(f"{path}: line {line}: {key} {row[key]!r} is not a "
                                 "number") from None
    return {k: np.array(v) for k, v in columns.items()}


def training_curves(plt: ModuleType, metrics: dict[str, np.ndarray], title: str,
                    path: Path) -> None:
    """Mean training loss and train/test error per epoch."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(metrics["epoch"], metrics["loss"])
    left.set_xlabel("epoch")
    left.set_ylabel("mean batch loss")
    right.plot(metrics["epoch"], 100 * metrics["train_error"], label="train")
    right.plot(metrics["epoch"], 100 * metrics["test_error"], label="test")
    right.set_xlabel("epoch")
    right.set_ylabel("error (%)")
    right.legend()
    fig.suptitle(plot_text(title))
    fig.tight_layout()
    _save(plt, fig, path)
