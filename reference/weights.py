"""Weight files: params (plus optional optimiser state and metadata) and the spec, as ``.npz``.

Layout inside the archive: ``spec`` (the spec as JSON text), ``meta`` (JSON text: anything the
caller adds, e.g. the epoch), ``param/<name>`` and ``state/<name>`` arrays in the canonical layout.
Nothing is ever unpickled (``allow_pickle=False``); loading checks names, shapes and dtypes
against the spec and refuses anything else with a one-line ``ValueError`` naming the file.
Writes are atomic: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .spec import MLPSpec


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, else delete it.

    Every file nnparity writes (weights, checkpoints, reports, metrics, plots) goes through
    this, so an interrupted write never leaves a partial file under the final name.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def spec_from_dict(data: dict[str, Any]) -> Any:
    """An ``MLPSpec`` or ``CNNSpec`` from its dict, chosen by ``family``."""
    family = data.get("family", "mlp")
    if family == "mlp":
        return MLPSpec.from_dict(data)
    if family == "cnn":
        from .cnn import CNNSpec

        return CNNSpec.from_dict(data)
    raise ValueError(f"unknown model family {family!r}")


@dataclass
class WeightsFile:
    """What a weights file holds."""

    spec: Any
    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def save_weights(
    path: str | os.PathLike[str],
    spec: Any,
    params: dict[str, np.ndarray],
    state: dict[str, np.ndarray] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write ``params`` (and optimiser ``state``, ``meta``) with ``spec`` to ``path`` atomically."""
    arrays: dict[str, np.ndarray] = {
        "spec": np.array(spec.to_json()),
        "meta": np.array(json.dumps(meta or {}, sort_keys=True)),
    }
    arrays.update({f"param/{k}": np.asarray(v) for k, v in params.items()})
    arrays.update({f"state/{k}": np.asarray(v) for k, v in (state or {}).items()})
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, allow_pickle=False, **arrays)


def load_weights(path: str | os.PathLike[str]) -> WeightsFile:
    """Read and validate a file written by :func:`save_weights`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            raise ValueError(f"{path}: not an .npz weights file (no zip header)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: _read(archive, key, path) for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz weights file ({exc})") from None
    for key in ("spec", "meta"):
        if key not in arrays or arrays[key].dtype.kind != "U" or arrays[key].shape != ():
            raise ValueError(f"{path}: missing or malformed '{key}' entry")
    try:
        spec = spec_from_dict(json.loads(str(arrays.pop("spec"))))
        meta = json.loads(str(arrays.pop("meta")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path}: the spec or meta entry is not valid JSON ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: invalid spec: {exc}") from None
    params = {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}
    state = {k.removeprefix("state/"): v for k, v in arrays.items() if k.startswith("state/")}
    stray = [k for k in arrays if not k.startswith(("param/", "state/"))]
    if stray:
        raise ValueError(f"{path}: unexpected entries {stray}")
    _check(path, spec, params)
    return WeightsFile(spec, params, state, meta)


def _read(archive: Any, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError:
        raise ValueError(f"{path}: entry '{key}' holds Python objects; refusing to unpickle") \
            from None


def _check(path: Path, spec: Any, params: dict[str, np.ndarray]) -> None:
    shapes = spec.param_shapes()
    missing = [k for k in shapes if k not in params]
    extra = [k for k in params if k not in shapes]
    if missing or extra:
        raise ValueError(f"{path}: parameter names do not match the spec "
                         f"(missing {missing or 'none'}, unexpected {extra or 'none'})")
    for name, shape in shapes.items():
        value = params[name]
        if value.shape != tuple(shape):
            raise ValueError(
                f"{path}: {name} has shape {value.shape}, the spec needs {tuple(shape)}")
        if value.dtype.kind != "f":
            raise ValueError(f"{path}: {name} has dtype {value.dtype}, expected floating point")
