"""The TF32 section: a GPU measurement cannot be recomputed on a CPU, so the page reads a
committed, dated report of ``nnparity check --device cuda --json`` from ``reports/gpu/`` at the
repository root, and says where and when it was measured, or that none has been committed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnparity.files.json_input import JSONInputError, read_json

REPORTS = Path(__file__).resolve().parents[2] / "reports" / "gpu"
HOW = ("On a machine with an NVIDIA GPU: nnparity check --device cuda --json "
       "reports/gpu/check-cuda-YYYY-MM-DD.json, then commit the file; the page reads the newest "
       "one.")


def latest(folder: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest report (by its ``created`` field) in ``folder`` (default :data:`REPORTS`),
    or None."""
    folder = REPORTS if folder is None else folder
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = read_json(path)
        except JSONInputError:
            continue
        if isinstance(data, dict) and "created" in data and "cases" in data:
            found.append((str(data["created"]), path, data))
    if not found:
        return None
    _, path, data = max(found, key=lambda f: f[0])
    return path, data


WHERE = ("device", "device_name", "torch_cuda_matmul_allow_tf32", "torch_cudnn_allow_tf32",
         "torch_float32_matmul_precision", "torch_cuda_version", "gpu", "torch", "tensorflow",
         "jax", "platform")


def where(data: dict[str, Any]) -> str:
    """Where a report was measured: device, its name, the TF32 switches and versions, read from
    its ``environment`` (and the ``precision`` flags ``check --device`` records there)."""
    env = data.get("environment", {})
    flat = {**env, **(env.get("precision") or {})}
    return ", ".join(f"{k} {flat[k]}" for k in WHERE if flat.get(k) is not None)


def worst_float32(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(backend, worst float32 tensor, max rel)`` per backend of a check report."""
    worst: dict[str, tuple[float, str]] = {}
    for case, entry in data.get("cases", {}).items():
        if "f32" not in case:
            continue
        for backend, result in entry.get("backends", {}).items():
            for c in result.get("comparisons", []):
                rel = c.get("max_rel")
                if rel is not None and rel >= worst.get(backend, (-1.0, ""))[0]:
                    worst[backend] = (rel, f"{case}: {c.get('stage')} {c.get('name')}")
    return [(b, where, f"{rel:.1e}") for b, (rel, where) in sorted(worst.items())]
