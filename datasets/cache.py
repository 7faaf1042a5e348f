"""Where datasets live on disk, and how a file is checked against the catalog.

Cache: ``$XDG_CACHE_HOME/nnparity/<dataset>/`` (``~/.cache/nnparity/<dataset>/`` when unset).
A user directory (``--from DIR`` or ``$NNPARITY_DATA``) may hold the files in
``DIR/<dataset>/`` or directly in ``DIR/``. Files are raw IDX or ``.gz``. Only verified files
enter the cache, always through a temporary file in the same folder and ``os.replace``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path

from nnparity.files.atomic import atomic_path

from .catalog import Dataset, FileSpec
from .idx import DataError

ENV_DATA = "NNPARITY_DATA"


class ChecksumError(DataError):
    """A file's SHA-256 differs from the catalog's (a failed verify: the CLI exits 1)."""


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/nnparity`` or ``~/.cache/nnparity``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nnparity"


def cache_dir(ds: Dataset) -> Path:
    """The cache folder of one dataset (not created)."""
    return cache_root() / ds.name


def env_dir() -> Path | None:
    """The directory named by ``$NNPARITY_DATA``, if set."""
    value = os.environ.get(ENV_DATA)
    return Path(value).expanduser() if value else None


def user_dirs(ds: Dataset, folder: str | os.PathLike) -> list[Path]:
    """The places searched in a user directory: ``DIR/<dataset>/`` then ``DIR/``."""
    folder = Path(folder).expanduser()
    return [folder / ds.name, folder]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_gunzip(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a gzip file's decompressed content."""
    h = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: truncated or corrupt gzip data: {exc}") from None
    return h.hexdigest()


def find_file(folder: Path, spec: FileSpec) -> Path | None:
    """``folder/<name>`` if present, else ``folder/<name>.gz``, else None."""
    for candidate in (folder / spec.name, folder / spec.gz_name):
        if candidate.is_file():
            return candidate
    return None


def verify_file(path: Path, spec: FileSpec) -> None:
    """Check ``path`` (raw or .gz, told apart by content) against the catalog entry.

    Raw: ``sha256``. gzip: ``gz_sha256`` if known, and the decompressed content against
    ``sha256`` if known. Raises :class:`ChecksumError` naming the file and both hashes, or
    ``DataError`` when the catalog has no hash for this form of the file.
    """
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    checks = []
    if gz:
        if spec.gz_sha256:
            checks.append((spec.gz_sha256, sha256_file, "gzip file"))
        if spec.sha256:
            checks.append((spec.sha256, sha256_gunzip, "decompressed content"))
    elif spec.sha256:
        checks.append((spec.sha256, sha256_file, "file"))
    else:
        raise DataError(
            f"{path}: no known SHA-256 for the uncompressed {spec.name}; "
            f"provide {spec.gz_name} (the canonical gzip file) instead"
        )
    if not checks:
        raise DataError(f"{path}: no known SHA-256 for {spec.gz_name}")
    for want, digest, what in checks:
        got = digest(path)
        if got != want:
            raise ChecksumError(
                f"checksum mismatch for {path} ({what}): expected sha256 {want}, got {got}"
            )




def install_file(src: Path, spec: FileSpec, folder: Path) -> Path:
    """Verify ``src`` and copy it into ``folder`` (a cache folder, created) atomically.

    A ``.gz`` whose raw hash is known is stored decompressed (so it can be memory-mapped);
    otherwise it is stored as it is. Returns the installed path.
    """
    verify_file(src, spec)
    folder.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if gz and spec.sha256:
        dest = folder / spec.name
        with atomic_path(dest) as tmp, gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    else:
        dest = folder / (spec.gz_name if gz else spec.name)
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    other = folder / (spec.name if dest.name == spec.gz_name else spec.gz_name)
    other.unlink(missing_ok=True)  # one form per file, so lookups are unambiguous
    return dest
