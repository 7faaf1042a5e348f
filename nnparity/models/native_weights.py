"""A model's weights in its framework's own files: ``--weights`` read, ``--write-weights``
written.

torch: a ``state_dict`` as ``.safetensors`` or ``.npz`` (:mod:`nnparity.files.weights`; never a
pickle). Keras: those, by variable path, or Keras' own ``.weights.h5`` (``model.save_weights`` /
``load_weights``). Writes are atomic (:mod:`nnparity.files.atomic`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from nnparity.errors import InputError
from nnparity.files.atomic import atomic_path
from nnparity.files.outputs import output_file
from nnparity.files.weights import read_arrays, write_safetensors

KERAS_SUFFIX = ".weights.h5"
SUFFIXES = {"torch": (".safetensors", ".npz"), "keras": (KERAS_SUFFIX,)}


def read(path: str) -> dict[str, np.ndarray] | Path:
    """The arrays of ``path`` (``.npz``, ``.safetensors``), or the path of a Keras
    ``.weights.h5`` (the model loads it itself); exit 2 naming the file otherwise."""
    if path.endswith(KERAS_SUFFIX):
        if not Path(path).is_file():
            raise InputError(f"--weights {path}: no such weights file")
        return Path(path)
    try:
        return read_arrays(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"--weights {path}: {exc}") from None


def check_output(path: str, framework: str) -> None:
    """Refuse, before any work, a ``--write-weights`` path the framework's format cannot take."""
    suffixes = SUFFIXES[framework]
    if not any(path.endswith(s) for s in suffixes):
        raise InputError(f"--write-weights {path}: a {framework} model's weights are written as "
                         f"{' or '.join(suffixes)}")
    output_file(path)


def write(model: Any, path: str) -> None:
    """Write the weights ``model`` (a torch or Keras user model) holds now to ``path``."""
    if model.source.framework == "torch":
        arrays = {k: v.detach().cpu().numpy() for k, v in model.model.state_dict().items()}
        if path.endswith(".npz"):
            with atomic_path(path) as tmp, open(tmp, "wb") as out:
                np.savez(out, **arrays)
        else:
            write_safetensors(path, arrays, {})
        return
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / f"port{KERAS_SUFFIX}"
        model.model.save_weights(str(saved))
        with atomic_path(path) as tmp:
            shutil.copyfile(saved, tmp)
