"""Weight files: params (plus optional optimiser state and metadata) and the spec, as ``.npz`` or
``.safetensors`` (by the file's suffix).

Layout inside the archive: ``spec`` (the spec as JSON text), ``meta`` (JSON text: anything the
caller adds, e.g. the epoch), ``param/<name>`` and ``state/<name>`` arrays in the canonical layout.
In a ``.safetensors`` file ``spec`` and ``meta`` are the header's metadata strings and the
arrays its tensors, under the same names. :func:`read_arrays` reads any named arrays (a user's
``state_dict``) from either format.
Nothing is ever unpickled; loading checks names, shapes, dtypes (the spec's own) and finiteness
against the spec (in an ``.npz``, from each member's header before its data is read:
:mod:`nnparity.files.npz`) and refuses anything else with a one-line ``ValueError`` naming the file.
Writes are atomic (:mod:`nnparity.files.atomic`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nnparity.files.atomic import atomic_path
from nnparity.files.json_input import parse_json
from nnparity.files.npz import open_npz, read_npz
from nnparity.reference.family import Spec, spec_from_dict


@dataclass
class WeightsFile:
    """What a weights file holds."""

    spec: Spec
    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def save_weights(
    path: str | os.PathLike[str],
    spec: Spec,
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
    if Path(path).suffix == ".safetensors":
        header = {key: str(arrays.pop(key)) for key in ("spec", "meta")}
        write_safetensors(path, arrays, header)
        return
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, allow_pickle=False, **arrays)


def write_safetensors(path: str | os.PathLike[str], arrays: dict[str, np.ndarray],
                      header: dict[str, str]) -> None:
    """``arrays`` (numeric) with the string ``header`` as a ``.safetensors`` file, atomically."""
    save_file = _safetensors(Path(path)).save_file
    tensors = {k: np.array(v, order="C") for k, v in arrays.items()}  # keeps 0-d arrays 0-d
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)


def _safetensors(path: Path) -> Any:
    """``safetensors.numpy``, or a ``ValueError`` naming the file when it is not installed."""
    try:
        import safetensors.numpy
    except ImportError:
        raise ValueError(f"{path}: .safetensors needs the safetensors package "
                         "(pip install nnparity[all])") from None
    return safetensors.numpy


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(tensors, header metadata)`` of a ``.safetensors`` file."""
    _safetensors(path)
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            names = handle.keys()  # a safe_open handle has no __iter__
            return {k: handle.get_tensor(k) for k in names}, handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable .safetensors file ({exc})") from None


TEXT_ENTRY_BYTES = 2**20
"""The most a ``spec`` or ``meta`` entry may hold (a spec's JSON is well under 1 kB)."""


def load_weights(path: str | os.PathLike[str]) -> WeightsFile:
    """Read and validate a file written by :func:`save_weights`; in an ``.npz`` every member's
    header is checked against the spec before its data is read (:mod:`nnparity.files.npz`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        arrays, header = read_safetensors(path)
        arrays.update({k: np.array(header[k]) for k in ("spec", "meta") if k in header})
        spec, meta = _spec_and_meta(path, arrays)
        _check_entries(path, spec, arrays)
    else:
        with open_npz(path) as archive:
            text = {k: m for k, m in archive.members.items() if k in ("spec", "meta")
                    and m.dtype.kind == "U" and m.nbytes <= TEXT_ENTRY_BYTES}
            spec, meta = _spec_and_meta(path, {k: archive.read(k) for k in text})
            arrays = {k: m for k, m in archive.members.items() if k not in ("spec", "meta")}
            _check_entries(path, spec, arrays)
            arrays = {k: archive.read(k) for k in arrays}
    params = {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}
    state = {k.removeprefix("state/"): v for k, v in arrays.items() if k.startswith("state/")}
    _check_finite(path, params)
    return WeightsFile(spec, params, state, meta)


def _spec_and_meta(path: Path, arrays: dict[str, np.ndarray]) -> tuple[Spec, dict[str, Any]]:
    """The spec and meta of the text entries ``spec`` and ``meta`` (popped from ``arrays``)."""
    for key in ("spec", "meta"):
        if key not in arrays or arrays[key].dtype.kind != "U" or arrays[key].shape != ():
            raise ValueError(f"{path}: missing or malformed '{key}' entry")
    spec_data = parse_json(str(arrays.pop("spec")), f"{path}: entry 'spec'")
    meta = parse_json(str(arrays.pop("meta")), f"{path}: entry 'meta'")
    try:
        spec = spec_from_dict(spec_data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: invalid spec: {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the meta entry must be a JSON object, got "
                         f"{type(meta).__name__}")
    return spec, meta


class _Shaped(Protocol):
    shape: tuple[int, ...]
    dtype: np.dtype


def _check_entries(path: Path, spec: Spec, entries: Mapping[str, _Shaped]) -> None:
    """Names, shapes and dtypes of the ``param/`` and ``state/`` entries (arrays, or members
    whose headers describe them): parameters as the spec declares them, optimiser state no larger
    than the largest parameter (:mod:`nnparity.training.resume` checks it further); others are
    refused."""
    shapes = spec.param_shapes()
    stray = [k for k in entries if not k.startswith(("param/", "state/"))]
    if stray:
        raise ValueError(f"{path}: unexpected entries {stray}")
    params = {k.removeprefix("param/"): v for k, v in entries.items() if k.startswith("param/")}
    check_names(path, "parameter names do not match the spec", shapes, params)
    for name, shape in shapes.items():
        if tuple(params[name].shape) != tuple(shape):
            raise ValueError(f"{path}: {name} has shape {tuple(params[name].shape)}, the spec "
                             f"needs {tuple(shape)}")
        if params[name].dtype != np.dtype(spec.dtype):
            raise ValueError(f"{path}: {name} has dtype {params[name].dtype}, the spec's dtype "
                             f"is {spec.dtype}")
    largest = max(math.prod(shape) for shape in shapes.values())
    for key, entry in entries.items():
        if key.startswith("state/") and math.prod(entry.shape) > largest:
            raise ValueError(f"{path}: optimiser state {key.removeprefix('state/')} has shape "
                             f"{tuple(entry.shape)}, larger than any parameter")


def check_names(path: str | os.PathLike[str], what: str, expected: Any, got: Any) -> None:
    """``ValueError`` naming the file, ``what`` and the missing and unexpected names when the
    keys of ``got`` are not those of ``expected``."""
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    if missing or extra:
        raise ValueError(f"{path}: {what} (missing {missing or 'none'}, unexpected "
                         f"{extra or 'none'})")


def _check_finite(path: Path, params: dict[str, np.ndarray]) -> None:
    for name, value in params.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{path}: {name} holds non-finite values (nan or inf)")


def read_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` (never unpickled) or ``.safetensors`` file, e.g. a
    ``state_dict`` saved by ``safetensors.torch.save_file`` or ``np.savez``; ``ValueError``
    naming the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        return read_safetensors(path)[0]
    if path.suffix != ".npz":
        raise ValueError(f"{path}: weights must be .npz or .safetensors")
    return read_npz(path)
