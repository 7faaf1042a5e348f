"""Checkpoints of training runs: what they record, and the checks before a run resumes from one.

A checkpoint (``train --checkpoint``) is a weights file (:mod:`nnparity.files.weights`) whose
``meta`` holds ``epoch`` (the last finished one), ``optimizer`` (``{"name", "variant"}``),
``backend``, ``first_loss`` (the run's starting loss, for the divergence warning) and the
run's ``config`` (its ``input_scale`` included: a checkpoint without one counts as 255).
Resuming refuses, with one line naming the file: another input scale, a checkpoint without an
epoch, one at or past ``--epochs``, another optimiser or variant or backend than the run's (unless
``--reset-optimizer``, which keeps the parameters and starts the optimiser state afresh), and
optimiser state whose names, shapes or dtypes are not the ones the optimiser keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnparity.errors import InputError
from nnparity.files.weights import check_names, load_weights
from nnparity.reference import Optimizer, Spec
from nnparity.reference.optim import init_state
from nnparity.reference.params import trainable


@dataclass
class Resumed:
    """Where a resumed run starts: parameters, optimiser state (None: fresh), the last finished
    epoch and the run's starting loss when recorded."""

    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray] | None
    epoch: int
    first_loss: float | None


def checkpoint_meta(epoch: int, optimizer: Optimizer, backend: str, first_loss: float | None,
                    config: dict[str, Any]) -> dict[str, Any]:
    """The ``meta`` of a checkpoint written after ``epoch``."""
    return {"epoch": epoch, "optimizer": {"name": optimizer.name, "variant": optimizer.variant},
            "backend": backend, "first_loss": first_loss, "config": config}


def _recorded(meta: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(optimizer, variant, backend) a checkpoint records; older files keep them in ``config``,
    with variant None for the backend's own (then only the optimiser and backend are compared)."""
    opt = meta.get("optimizer")
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    name = opt.get("name") if isinstance(opt, dict) else config.get("optimizer")
    variant = opt.get("variant") if isinstance(opt, dict) else config.get("variant")
    return name, variant, meta.get("backend", config.get("backend"))


def _describe(name: str | None, variant: str | None, backend: str | None) -> str:
    return (f"optimizer {name or '(not recorded)'} ({variant or 'variant not recorded'}) "
            f"on backend {backend or '(not recorded)'}")


def checkpoint_input_scale(meta: dict[str, Any]) -> float:
    """The input scale a checkpoint's run used (255 for checkpoints that predate the setting)."""
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    return float(config.get("input_scale", 255.0))


def load_checkpoint(path: str, spec: Spec, optimizer: Optimizer, backend: str, epochs: int,
                    *, reset_optimizer: bool = False, input_scale: float = 255.0) -> Resumed:
    """Read ``path`` and check it can continue this run (module docstring); ``InputError``
    naming the file and the problem otherwise."""
    saved = load_weights(path)
    if saved.spec != spec:
        raise InputError(f"{path}: checkpoint spec does not match this run's configuration")
    scale = checkpoint_input_scale(saved.meta)
    if scale != input_scale:
        raise InputError(f"{path}: checkpoint was trained with --input-scale {scale:g}, "
                         f"this run uses {input_scale:g}")
    epoch = saved.meta.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise InputError(f"{path}: no epoch recorded (epoch {epoch!r}); not a checkpoint "
                         "written by train --checkpoint (a --save file holds weights only)")
    if epoch >= epochs:
        raise InputError(f"{path}: checkpoint is at epoch {epoch}, at or past --epochs {epochs}: "
                         "nothing left to train; raise --epochs")
    first = saved.meta.get("first_loss")
    first_loss = float(first) if isinstance(first, int | float) and np.isfinite(first) else None
    if reset_optimizer:
        return Resumed(saved.params, None, epoch, first_loss)
    recorded = _recorded(saved.meta)
    wanted = (optimizer.name, optimizer.variant if recorded[1] else None, backend)
    if recorded != wanted:
        raise InputError(f"{path}: checkpoint was written with {_describe(*recorded)}; this run "
                         f"uses {_describe(*wanted)}: resume with the same --optimizer, "
                         "--variant and --backend, or add --reset-optimizer")
    _check_state(Path(path), saved.state, init_state(optimizer, trainable(spec, saved.params)))
    return Resumed(saved.params, saved.state, epoch, first_loss)


def _check_state(path: Path, state: dict[str, np.ndarray], fresh: dict[str, np.ndarray]) -> None:
    check_names(path, "optimiser state does not match the optimiser", fresh, state)
    for name, expected in fresh.items():
        value = state[name]
        floating = expected.dtype.kind == "f"
        if value.shape != expected.shape or (
                value.dtype != expected.dtype if floating else value.dtype.kind not in "iu"):
            raise InputError(f"{path}: optimiser state {name} is {value.dtype}{list(value.shape)}, "
                             f"expected {expected.dtype}{list(expected.shape)}")
        if floating and not np.all(np.isfinite(value)):
            raise InputError(f"{path}: optimiser state {name} holds non-finite values")
        if not floating and int(value) < 0:
            raise InputError(f"{path}: optimiser step count {name} is negative ({int(value)})")
