"""Golden vectors for any language: export them, and read back a program's results file.

A vector set is a folder with ``index.json``, ``README.md`` (:mod:`.vectors_doc`) and, per
vector, ``<name>.npz``, its twin ``<name>.json`` and, when ``safetensors`` is installed,
``<name>.safetensors`` (the same tensors; ``spec`` and ``meta`` in its header). Tensor names
(canonical row layout, ``W [in, out]``, layers with parameters numbered from 1, dense and conv
alike, as :mod:`nnparity.verify.netview` numbers them):

- inputs: ``x [N, D0]`` (a CNN's images ``[N, H, W, C]``), ``y [N, K]`` (dense targets),
  ``labels [N]`` (class indices, ``ce`` only), ``W<l>`` (a conv kernel HWIO ``[k, k, C, F]``;
  the first dense weight after a flatten has its rows in NHWC order), ``b<l>`` (``[1, D_l]``
  for an MLP, ``[D_l]`` otherwise);
- expected: ``z<l>``, ``h<l>`` (a conv layer's NHWC maps), ``loss`` (scalar), ``delta<l>``
  (dL/dz), ``dW<l>``, ``db<l>``, ``W<l>_new``, ``b<l>_new`` (one SGD step with the vector's
  ``lr``).

In the ``.npz``, ``spec`` and ``meta`` are JSON strings; in the ``.json`` each tensor is
``{"shape": [...], "data": [...]}`` with ``data`` flattened in row-major (C) order.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnparity.backends.compare import Tensors, nonfinite_kinds
from nnparity.errors import InputError
from nnparity.files.atomic import atomic_path, write_text
from nnparity.files.json_input import parse_json, read_json
from nnparity.files.weights import read_arrays, read_safetensors, write_safetensors
from nnparity.reference.family import Spec, spec_from_dict
from nnparity.reference.netspec import NetSpec
from nnparity.reference.spec import MLPSpec

from .layout import from_user, step_label, targets
from .netview import param_layers
from .norms import norm_layers
from .problem import Problem, make_problem, reference_tensors
from .vectors_doc import readme

FORMAT = "nnparity.vectors"
VERSION = 1
# The default set: the seeds' shapes, small enough to read by eye.
DEFAULT_SPECS: dict[str, Spec] = {
    "seed000-sigmoid-l2-sum": MLPSpec(3, (4, 2), ("sigmoid", "sigmoid"), loss="l2",
                                      reduction="sum"),
    "seed000-tanh-ce-sum": MLPSpec(4, (5, 4, 3), ("tanh", "tanh", "identity"), loss="ce",
                                   reduction="sum"),
    "seed003-relu-ce-mean-l2reg": MLPSpec(4, (6, 3), ("relu", "identity"), loss="ce",
                                          reduction="mean", weight_decay=1e-3),
    "seed001-nobias-bce-sum": MLPSpec(3, (4, 1), ("sigmoid", "identity"), loss="bce",
                                      reduction="sum", bias=False),
    "cnn-conv-pool-relu-ce-mean": NetSpec.from_dict({
        "input_shape": [4, 4, 1], "loss": "ce", "reduction": "mean",
        "net": [{"kind": "conv2d", "filters": 2, "kernel": 3, "padding": "same"},
                {"kind": "relu"}, {"kind": "maxpool", "size": 2}, {"kind": "flatten"},
                {"kind": "dense", "units": 3}]}),
}
KINDS = {"z": "act", "h": "act", "delta": "act", "dW": "weight", "db": "bias", "W_new": "weight",
         "b_new": "bias", "loss": "scalar"}


def tensor_names(spec: Spec) -> dict[tuple[str, str], str]:
    """Canonical key (``collect``'s) -> vector tensor name, for every tensor a vector of
    ``spec`` expects: ``("grad", "conv1.W") -> "dW1"``."""
    names = {("loss", "loss"): "loss"}
    for layer in param_layers(spec):
        l = layer.index  # noqa: E741 (the layer number, as in the names)
        names |= {("forward", f"z.{layer.name}"): f"z{l}", ("forward", f"h.{layer.name}"): f"h{l}",
                  ("delta", layer.name): f"delta{l}", ("grad", layer.weight): f"dW{l}",
                  ("update", f"{step_label(1)}.{layer.weight}"): f"W{l}_new"}
        if layer.bias is not None:
            names |= {("grad", layer.bias): f"db{l}",
                      ("update", f"{step_label(1)}.{layer.bias}"): f"b{l}_new"}
    return names


def input_names(spec: Spec) -> dict[str, str]:
    """Parameter name -> vector tensor name (``conv1.W -> W1``)."""
    names = {}
    for layer in param_layers(spec):
        names[layer.weight] = f"W{layer.index}"
        if layer.bias is not None:
            names[layer.bias] = f"b{layer.index}"
    return names


def kind_of_name(name: str) -> str:
    """``act``, ``weight``, ``bias`` or ``scalar`` for a vector tensor name (``KeyError`` for
    one that is none of the expected names)."""
    match = re.fullmatch(r"(z|h|delta|dW|db)(\d+)|([Wb])(\d+)_new|loss", name)
    if match is None:
        raise KeyError(name)
    role = match.group(1) or (f"{match.group(3)}_new" if match.group(3) else "loss")
    return KINDS[role]


@dataclass
class Vector:
    """One golden vector: its problem and the expected tensors (canonical keys)."""

    name: str
    problem: Problem
    expected: Tensors


def _tensors(problem: Problem, expected: Tensors) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {"x": problem.x,
                                     "y": targets(problem.spec, problem.y)}
    if problem.spec.loss == "ce":
        arrays["labels"] = problem.y
    arrays.update({name: problem.params[p] for p, name in input_names(problem.spec).items()})
    names = tensor_names(problem.spec)
    arrays.update({names[k]: np.asarray(v) for k, v in expected.items() if k in names})
    return arrays


def files_written(folder: Path, names: list[str]) -> list[Path]:
    """Every file :func:`export` may write into ``folder`` for vectors ``names``."""
    return [*(folder / f"{name}{ext}" for name in names
              for ext in (".npz", ".safetensors", ".json")),
            folder / "index.json", folder / "README.md"]


def export(folder: Path, specs: dict[str, Spec], seed: int, batch: int, lr: float) -> list[str]:
    """Write every vector (``.npz`` + ``.json``), ``index.json`` and ``README.md``; nothing
    when a vector would hold a non-finite value (:class:`InputError` naming it)."""
    for name, spec in specs.items():
        if norm_layers(spec):
            raise InputError(f"--spec {name}: a golden vector does not carry a normalisation's "
                             "gamma, beta or running statistics: a network with batchnorm or "
                             "layernorm is checked with nnparity verify FILE only")
    built = {}
    for name, spec in specs.items():
        problem = make_problem(spec, seed, batch, lr)
        problem.spec = spec  # a vector holds no dropout mask: its dropout is the identity
        with np.errstate(all="ignore"):  # an overflow is refused below, by name
            built[name] = _tensors(problem, reference_tensors(problem))
        for key, value in built[name].items():
            kinds = nonfinite_kinds(value) if value.dtype.kind == "f" else ""
            if kinds:
                raise InputError(f"vector {name}: the reference gives {kinds} in {key}; golden "
                                 "vectors hold finite values (lower --lr, or change --spec)")
    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in specs.items():
        arrays = built[name]
        meta = {"lr": lr, "seed": seed, "batch": batch, "optimizer": "sgd"}
        with atomic_path(folder / f"{name}.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, allow_pickle=False, spec=np.array(spec.to_json()),
                     meta=np.array(json.dumps(meta)), **arrays)
        if importlib.util.find_spec("safetensors") is not None:
            write_safetensors(folder / f"{name}.safetensors", arrays,
                              {"spec": spec.to_json(), "meta": json.dumps(meta)})
        twin = {"format": FORMAT, "version": VERSION, "name": name, "spec": spec.to_dict(),
                **meta, "layout": "row",
                "tensors": {k: {"shape": list(v.shape), "data": v.reshape(-1).tolist()}
                            for k, v in arrays.items()}}
        write_text(folder / f"{name}.json", json.dumps(twin, indent=1) + "\n")
    index = {"format": FORMAT, "version": VERSION, "vectors": list(specs),
             "specs": {k: s.to_dict() for k, s in specs.items()}}
    write_text(folder / "index.json", json.dumps(index, indent=2) + "\n")
    write_text(folder / "README.md", readme(specs, seed, batch, lr, str(folder)))
    return list(specs)


def load_vector(folder: Path, name: str) -> Vector:
    """Read ``<name>.npz`` from a vector folder."""
    path = folder / f"{name}.npz"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.npz"))
        raise InputError(f"{folder}: no vector named {name!r} (have: {', '.join(known) or 'none'})")
    arrays = _arrays(path)
    try:
        spec = spec_from_dict(parse_json(str(arrays.pop("spec")), f"{path}: entry 'spec'"))
        meta = parse_json(str(arrays.pop("meta")), f"{path}: entry 'meta'")
        params = {k: arrays[name] for k, name in input_names(spec).items()}
        y = arrays["labels"] if spec.loss == "ce" else arrays["y"]
        problem = Problem(spec, params, arrays["x"], y, float(meta["lr"]))
        names = tensor_names(spec)
        expected = {key: arrays[names[key]] for key in reference_tensors(problem)
                    if key in names}
    except KeyError as exc:
        raise InputError(f"{path}: not a vector file (no entry {exc}); export the vectors "
                         "again with `nnparity vectors export`") from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: damaged vector file ({exc})") from None
    return Vector(name, problem, expected)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` or ``.safetensors`` file, as an :class:`InputError` naming the
    file when it cannot be read."""
    try:
        return read_arrays(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def read_results(path: Path) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    """A results file (``.json``, ``.npz`` or ``.safetensors``: ``layout`` in its header) as
    ``{vector: {tensor name: array}}`` and layout."""
    if not path.is_file():
        raise InputError(f"{path}: no such results file")
    if path.suffix in (".npz", ".safetensors"):
        if path.suffix == ".npz":
            entries = _arrays(path)
        else:
            try:
                entries, header = read_safetensors(path)
            except ValueError as exc:
                raise InputError(str(exc)) from None
            entries["layout"] = np.array(header.get("layout", "row"))
        layout = str(entries.pop("layout", "row"))
        vectors: dict[str, dict[str, Any]] = {}
        for key, value in entries.items():
            vector, sep, tensor = key.partition("/")
            if not sep:
                raise InputError(f"{path}: entry {key!r} is not named '<vector>/<tensor>'")
            vectors.setdefault(vector, {})[tensor] = value
    else:
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("vectors"), dict):
            raise InputError(f"{path}: expected an object with a 'vectors' object (see the "
                             "README written by `nnparity vectors export`)")
        layout, vectors = data.get("layout", "row"), data["vectors"]
        for vector, tensors in vectors.items():
            if not isinstance(tensors, dict):
                raise InputError(f"{path}: vectors/{vector} must be an object of tensors "
                                 f"({{\"dW1\": ...}}), got {type(tensors).__name__}")
    if layout not in ("row", "column"):
        raise InputError(f"{path}: layout must be 'row' or 'column', got {layout!r}")
    return {v: {k: _array(path, v, k, t) for k, t in tensors.items()}
            for v, tensors in vectors.items()}, layout


def _array(path: Path, vector: str, name: str, value: Any) -> np.ndarray:
    if isinstance(value, dict):
        if set(value) != {"shape", "data"}:
            raise InputError(f"{path}: {vector}/{name} must be {{\"shape\", \"data\"}}, a "
                             "nested list or a number")
        shape = value["shape"]
        if not (isinstance(shape, list)
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                        for n in shape)):
            raise InputError(f"{path}: {vector}/{name}: shape must be a list of non-negative "
                             f"integers, got {shape!r}")
        try:
            data = np.asarray(value["data"], dtype=np.float64).reshape(-1)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}: {vector}/{name}: data is not a flat list of numbers "
                             f"({exc})") from None
        if data.size != math.prod(shape):
            raise InputError(f"{path}: {vector}/{name}: shape {shape} needs "
                             f"{math.prod(shape)} numbers, data has {data.size}")
        return data.reshape(shape)
    try:
        return np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: {vector}/{name} is not numeric ({exc})") from None


def user_tensors(path: Path, vector: Vector, tensors: dict[str, np.ndarray],
                 layout: str) -> Tensors:
    """A program's tensors for one vector, in canonical layout and comparison order."""
    found: Tensors = {}
    keys = {name: key for key, name in tensor_names(vector.problem.spec).items()}
    for name, value in tensors.items():
        try:
            kind = kind_of_name(name)
        except KeyError:
            raise InputError(f"{path}: {vector.name}/{name}: unknown tensor name (use z1, h1, "
                             "loss, delta1, dW1, db1, W1_new, b1_new, ...)") from None
        key = keys.get(name)
        if key not in vector.expected:
            raise InputError(f"{path}: {vector.name}/{name}: vector {vector.name!r} has no "
                             "such tensor")
        found[key] = value.reshape(()) if kind == "scalar" and value.size == 1 else \
            from_user(value, kind, layout, np.shape(vector.expected[key]))
    if not found:
        raise InputError(f"{path}: vector {vector.name!r} lists no tensors")
    return {k: found[k] for k in vector.expected if k in found}
