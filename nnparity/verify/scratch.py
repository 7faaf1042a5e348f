"""The scratch folder of one run: a writable copy of the learner's folder, a copy of the child
script, a private temporary folder; removed afterwards whatever the learner did to it."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nnparity.errors import InputError

from .fallback import hidden_folders

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

    def note(self) -> str | None:
        """One line naming what was left out of the copy, if anything."""
        if not self.left_out:
            return None
        shown = ", ".join(self.left_out[:5]) + (" ..." if len(self.left_out) > 5 else "")
        return (f"{len(self.left_out)} special file(s) in your folder (FIFO, socket or device) "
                f"were left out of the copy your code ran in: {shown}")


def _kind(mode: int) -> str | None:
    """``None`` for what is copied (files, folders, links), else the special file's kind."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
        return None
    return {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFCHR: "device",
            stat.S_IFBLK: "device"}.get(stat.S_IFMT(mode), "special file")


def _copy_folder(folder: Path, target: Path, keep: Path, left_out: list[str],
                 whole: bool = False) -> None:
    """Copy ``folder`` to ``target`` without caches, special files (named in ``left_out``),
    nnparity's own folders (a learner's file in its checkout) and the scratch folder ``target``
    lies in (a learner's file in ``/tmp``); when the folder holds more than :data:`COPY_LIMIT`
    bytes, only ``keep`` (at its place inside it), or exit 2 when the tree was asked for
    (``whole``: ``--root``)."""
    never = {str(target.parent.parent), *map(str, hidden_folders())}
    size = 0
    for entry in folder.rglob("*"):
        if entry.is_file() and not entry.is_symlink():
            size += entry.stat().st_size
            if size > COPY_LIMIT:
                if whole:
                    raise InputError(f"--root {folder}: more than {COPY_LIMIT >> 20} MiB to "
                                     "copy for your code to run in: give a smaller folder")
                place = target / keep.parent.relative_to(folder)
                place.mkdir(parents=True)
                shutil.copy2(keep, place / keep.name)
                return

    def ignore(where: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in SKIP_COPY or n.endswith(".pyc")
                   or os.path.join(where, n) in never}
        for name in set(names) - skipped:
            try:
                kind = _kind(os.lstat(os.path.join(where, name)).st_mode)
            except OSError:
                kind = "unreadable entry"
            if kind is not None:
                skipped.add(name)
                left_out.append(f"{os.path.relpath(os.path.join(where, name), folder)} ({kind})")
        return skipped

    try:
        shutil.copytree(folder, target, symlinks=True, ignore=ignore)
    except shutil.Error as exc:
        source, _, why = exc.args[0][0]
        raise InputError(f"{source}: cannot be copied for your code to run in ({why})") from None


@contextmanager
def scratch(path: Path, root: Path | None = None,
            generated: dict[str, str] | None = None) -> Iterator[Scratch]:
    """The scratch folder for the learner's file ``path``: a copy of ``root`` (``--root``: the
    submission's tree; default: the file's folder) with the ``generated`` files (name: text, a
    notebook's script) beside the file, removed on exit."""
    folder = root or path.parent
    with tempfile.TemporaryDirectory(prefix="nnparity-verify-", ignore_cleanup_errors=True) as tmp:
        base = Path(tmp)
        made = Scratch(base, base / "work" / (folder.name or "root"), base / "child.py",
                       base / "tmp")
        _copy_folder(folder, made.copy, path, made.left_out, whole=root is not None)
        beside = made.copy / path.parent.relative_to(folder)
        for name, text in (generated or {}).items():
            (beside / name).write_text(text, encoding="utf-8")
        shutil.copyfile(CHILD_SCRIPT, made.script)
        made.tmp.mkdir()
        yield made
