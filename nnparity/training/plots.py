"""PNG figures for training runs: loss/error curves and a grid of misclassified test images.

matplotlib is optional (``pip install nnparity[plot]``) and imported only here, with the
non-interactive Agg backend; every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnparity.errors import InputError
from nnparity.files.atomic import atomic_path
from nnparity.files.escape import plot_text
from nnparity.reference.train import History

if TYPE_CHECKING:
    from nnparity.bench.sweep import Point


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install nnparity[plot]") from None
    return plt


def plot_curves(history: History, path: Path, title: str) -> Path:
    """Two panels: mean training loss, and train/test error (%) per epoch."""
    plt = _pyplot()
    epochs = [r.epoch for r in history.epochs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r.loss for r in history.epochs])
    left.set(xlabel="epoch", ylabel="mean batch loss", title="loss")
    right.plot(epochs, [100 * r.train_error for r in history.epochs], label="train")
    right.plot(epochs, [100 * r.test_error for r in history.epochs], label="test")
    right.set(xlabel="epoch", ylabel="error (%)", title="error rate")
    right.legend()
    fig.suptitle(plot_text(title))
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def plot_misclassified(
    images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, classes: list[str],
    path: Path, limit: int = 36,
) -> Path | None:
    """Grid of up to ``limit`` misclassified test images ``[N, H, W]`` (or ``[N, H, W, 1]``),
    titled ``true -> predicted``; ``None`` when nothing is misclassified."""
    wrong = np.flatnonzero(truth != predicted)[:limit]
    if wrong.size == 0:
        return None
    plt = _pyplot()
    cols = min(6, wrong.size)
    rows = -(-wrong.size // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    name = (lambda i: classes[i]) if classes else str
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(images[i].reshape(images.shape[1], images.shape[2]), cmap="gray")
        ax.set_title(plot_text(f"{name(int(truth[i]))} -> {name(int(predicted[i]))}"),
                     fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def plot_sweep(points: list[Point], rows: list[str], path: Path) -> Path:
    """Two log-log panels of ``nnparity bench --sweep``: microseconds per step against batch
    size and against width, one line per row."""
    from nnparity.bench.sweep import WIDTH_BATCH

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = ("batch size ([784-200-80-10])", f"hidden width W ([784-W-10], batch {WIDTH_BATCH})")
    for ax, axis, label in zip(axes, ("batch", "width"), labels, strict=True):
        mine = [p for p in points if p.axis == axis]
        for row in rows:
            ax.plot([p.value for p in mine], [p.micros[row] for p in mine], marker="o", label=row)
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="microseconds per SGD step")
        ax.legend()
    fig.suptitle("One float32 SGD step: time against batch size and width")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
