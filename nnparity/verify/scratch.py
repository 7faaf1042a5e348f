"""The scratch folder of one run: a writable copy of the learner's folder, a copy of the child
script, a private temporary folder; removed afterwards whatever the learner did to it.

While a class is graded (:class:`SharedCopies`), a folder is copied once for all its runs: under
bubblewrap each run's writable folder is a tmpfs of the sandbox's own, filled from that pristine
copy by the child script before the learner's code runs (creating a class folder's files on disk
for every run was most of a run's set-up)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nnparity.errors import InputError

from .fallback import hidden_folders
from .held import PREFIX, held_folder

COPY_LIMIT = 256 * 2**20  # a learner's folder larger than this is not copied
SKIP_COPY = ("__pycache__", ".git")
CHILD_SCRIPT = Path(__file__).with_name("child.py")


@dataclass
class Scratch:
    """``copy``: the learner's folder or tree (or only its file); ``script``: the child script;
    ``tmp``: a private temporary folder; ``left_out``: special files not copied."""

    root: Path
    copy: Path
    script: Path
    tmp: Path
    left_out: list[str] = field(default_factory=list)
    shared: bool = False  # ``copy`` is a grading run's pristine copy: read it, never write it

    def note(self) -> str | None:
        """One line naming what was left out of the copy, if anything."""
        if not self.left_out:
            return None
        shown = ", ".join(self.left_out[:5]) + (" ..." if len(self.left_out) > 5 else "")
        return (f"{len(self.left_out)} special file(s) in your folder (FIFO, socket or device) "
                f"were left out of the copy your code ran in: {shown}")


def special_kind(mode: int) -> str | None:
    """``None`` for what is copied (files, folders, links), else the special file's kind."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
        return None
    return {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFCHR: "device",
            stat.S_IFBLK: "device"}.get(stat.S_IFMT(mode), "special file")


def _too_large(folder: Path) -> bool:
    """The files under ``folder`` hold more than :data:`COPY_LIMIT` bytes."""
    size = 0
    for where, _, names in os.walk(folder):  # a folder gone since it was listed is passed over
        for name in names:
            try:
                mode = os.lstat(os.path.join(where, name))
            except OSError:  # gone since it was listed: another process's file in /tmp
                continue
            if stat.S_ISREG(mode.st_mode):
                size += mode.st_size
                if size > COPY_LIMIT:
                    return True
    return False


def _copy_folder(folder: Path, target: Path, keep: Path, left_out: list[str],
                 whole: bool = False) -> None:
    """Copy ``folder`` to ``target`` without caches, special files (named in ``left_out``),
    nnparity's own folders (a learner's file in its checkout) and verify's scratch folders,
    this run's and others' (a learner's file in ``/tmp``), though the folders on the way to
    ``keep``, the learner's file, are copied whatever their names; when the folder holds more than
    :data:`COPY_LIMIT` bytes, only ``keep`` (at its place inside it), or exit 2 when the tree
    was asked for (``whole``: ``--root``). An entry that vanishes while it is copied (another
    process's file in a shared folder such as ``/tmp``) is not part of the folder any more:
    left out without a note; the learner's file itself must be copied."""
    never = {*map(str, hidden_folders())}
    scratch_top = os.path.realpath(tempfile.gettempdir())
    if _too_large(folder):
        if whole:
            raise InputError(f"--root {folder}: more than {COPY_LIMIT >> 20} MiB to "
                             "copy for your code to run in: give a smaller folder")
        place = target / keep.parent.relative_to(folder)
        place.mkdir(parents=True)
        shutil.copy2(keep, place / keep.name)
        return

    along = {os.fspath(place) for place in (keep, *keep.parents)}  # the learner's file's way

    def ignore(where: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if os.path.join(where, n) in never
                   or (os.path.join(where, n) not in along
                       and (n in SKIP_COPY or n.endswith(".pyc")
                            or (n.startswith(PREFIX) and os.path.realpath(where) == scratch_top)))}
        for name in set(names) - skipped:
            try:
                kind = special_kind(os.lstat(os.path.join(where, name)).st_mode)
            except FileNotFoundError:
                skipped.add(name)
                continue
            except OSError:
                kind = "unreadable entry"
            if kind is not None:
                skipped.add(name)
                left_out.append(f"{os.path.relpath(os.path.join(where, name), folder)} ({kind})")
        return skipped

    try:
        shutil.copytree(folder, target, symlinks=True, ignore=ignore)
    except shutil.Error as exc:
        failed = [(source, why) for source, _, why in exc.args[0] if os.path.lexists(source)]
        if failed:
            source, why = failed[0]
            raise InputError(f"{source}: cannot be copied for your code to run in ({why})"
                             ) from None
    if not os.path.lexists(keep) and not os.path.lexists(target / keep.relative_to(folder)):
        raise InputError(f"{keep}: removed while it was being copied for your code to run in")


@dataclass(frozen=True)
class Pristine:
    """A folder's copy shared by a grading run's sandboxes (never written to) and the special
    files left out of it."""

    copy: Path
    left_out: tuple[str, ...]


class SharedCopies:
    """The pristine copies of one grading run, one per learner's folder, made on first use
    (threads share them) and removed by :meth:`close`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: dict[Path, threading.Lock] = {}
        self._made: dict[Path, Pristine | None] = {}
        self._removal = ExitStack()

    def pristine(self, path: Path) -> Pristine | None:
        """The pristine copy of ``path``'s folder (``None``: the folder is over
        :data:`COPY_LIMIT`, and each run copies the file alone as before)."""
        folder = path.parent
        with self._lock:
            lock = self._folders.setdefault(folder, threading.Lock())
        with lock:
            if folder not in self._made:
                self._made[folder] = None if _too_large(folder) else self._copy(folder, path)
            return self._made[folder]

    def _copy(self, folder: Path, path: Path) -> Pristine:
        base = self._removal.enter_context(held_folder())
        copy, left_out = base / "work" / (folder.name or "root"), []
        _copy_folder(folder, copy, path, left_out)
        return Pristine(copy, tuple(left_out))

    def close(self) -> None:
        """Remove every pristine copy."""
        self._removal.close()

    def __enter__(self) -> SharedCopies:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def scratch(path: Path, root: Path | None = None,
            generated: dict[str, str] | None = None,
            pristine: Pristine | None = None) -> Iterator[Scratch]:
    """The scratch folder for the learner's file ``path``: a copy of ``root`` (``--root``: the
    submission's tree; default: the file's folder) with the ``generated`` files (name: text, a
    notebook's script) beside the file, removed on exit; with ``pristine`` (the folder's shared
    copy, no ``root``, nothing generated) no copy of its own: ``copy`` is the pristine one."""
    folder = root or path.parent
    with held_folder() as base:
        made = Scratch(base, base / "work" / (folder.name or "root"), base / "child.py",
                       base / "tmp")
        if pristine is not None and root is None and not generated:
            made.copy, made.left_out, made.shared = pristine.copy, list(pristine.left_out), True
        else:
            _copy_folder(folder, made.copy, path, made.left_out, whole=root is not None)
        beside = made.copy / path.parent.relative_to(folder)
        for name, text in (generated or {}).items():
            (beside / name).write_text(text, encoding="utf-8")
        shutil.copyfile(CHILD_SCRIPT, made.script)
        made.tmp.mkdir()
        yield made
