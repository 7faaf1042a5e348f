"""A learner's folder that other processes write while it is copied (``/tmp`` itself, where
CI's parallel tests create and remove files): an entry that vanishes between the listing and
its copy is left out, not an error (every run in such a folder failed with ``cannot be copied
... No such file or directory``); the learner's own file vanishing is a one-line error."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from nnparity.errors import InputError
from nnparity.verify import scratch


def _remove_when_listed(monkeypatch: pytest.MonkeyPatch, folder: Path, *gone: str) -> None:
    """Remove ``gone`` (files or folders of ``folder``) once the copy has listed ``folder``:
    the copy's check of each listed entry's kind runs after the listing, before the copying."""
    kind = scratch.special_kind

    def vanishing(mode: int) -> str | None:
        for name in gone:
            entry = folder / name
            if entry.is_dir():
                for inner in entry.iterdir():
                    inner.unlink()
                entry.rmdir()
            elif entry.exists():
                entry.unlink()
        return kind(mode)

    monkeypatch.setattr(scratch, "special_kind", vanishing)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    (folder / "sub").mkdir(parents=True)
    (folder / "learner.py").write_text("print('hi')\n")
    (folder / "other.txt").write_text("another process's file\n")
    (folder / "sub" / "inner.txt").write_text("x\n")
    (folder / "data.csv").write_text("1,2\n")
    return folder


@pytest.mark.parametrize("shared", [False, True], ids=["one run", "a grading run's copy"])
def test_entries_vanishing_during_the_copy_are_left_out(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        shared: bool) -> None:
    folder = _folder(tmp_path)
    _remove_when_listed(monkeypatch, folder, "other.txt", "sub")
    if shared:
        with scratch.SharedCopies() as copies:
            pristine = copies.pristine(folder / "learner.py")
            assert pristine is not None
            copied, left_out = pristine.copy, list(pristine.left_out)
            names = sorted(p.name for p in copied.iterdir())
    else:
        with scratch.scratch(folder / "learner.py") as made:
            names, left_out = sorted(p.name for p in made.copy.iterdir()), made.left_out
    assert names == ["data.csv", "learner.py"]
    assert left_out == []  # gone, not a special file


def test_an_unreadable_entry_is_still_an_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _folder(tmp_path)
    copy2 = shutil.copy2

    def refusing(source: str, target: str) -> object:
        if source.endswith("data.csv"):
            raise PermissionError(13, "Permission denied", source)
        return copy2(source, target)

    copytree = shutil.copytree

    def copying_with_refusals(src: str, dst: str, symlinks: bool = False, ignore: object = None,
                              _copy: object = None, *rest: object, **kwargs: object) -> object:
        return copytree(src, dst, symlinks, ignore, refusing, *rest, **kwargs)

    monkeypatch.setattr(shutil, "copytree", copying_with_refusals)
    match = r"data\.csv: cannot be copied .*Permission denied"
    with pytest.raises(InputError, match=match), scratch.scratch(folder / "learner.py"):
        pass


def test_the_learners_own_file_vanishing_is_a_one_line_error(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    folder = _folder(tmp_path)
    _remove_when_listed(monkeypatch, folder, "learner.py")
    match = r"learner\.py: removed while it was being copied"
    with pytest.raises(InputError, match=match), scratch.scratch(folder / "learner.py"):
        pass


def test_a_folder_churned_by_another_process_copies_every_time(tmp_path: Path) -> None:
    """The race itself, as CI's parallel workers make it in ``/tmp``: folders created and
    removed beside the learner's file while its folder is measured and copied, 20 times."""
    folder = _folder(tmp_path)
    stop = threading.Event()

    def churn() -> None:
        count = 0
        while not stop.is_set():
            made = folder / f"d{count}"
            made.mkdir()
            for inner in range(20):
                (made / f"f{inner}").write_text("x")
            shutil.rmtree(folder / f"d{count - 1}", ignore_errors=True)
            count += 1

    churning = threading.Thread(target=churn)
    churning.start()
    try:
        for _ in range(20):
            assert not scratch._too_large(folder)
            with scratch.scratch(folder / "learner.py") as made:
                assert (made.copy / "learner.py").read_text() == "print('hi')\n"
                assert made.left_out == []
    finally:
        stop.set()
        churning.join()


def test_a_learner_in_the_temporary_folder_gets_no_scratch_folders_copied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another verify's scratch folder beside a learner's file in ``/tmp`` (a whole class's
    copies, under ``--jobs``) is not the learner's: not copied, and not raced with."""
    folder = _folder(tmp_path)
    (folder / "nnparity-verify-another").mkdir()
    (folder / "nnparity-verify-another" / "copy.py").write_text("someone else's\n")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    with scratch.scratch(folder / "learner.py") as made:
        assert made.root.parent == folder
        names = sorted(p.name for p in made.copy.iterdir())
    assert names == ["data.csv", "learner.py", "other.txt", "sub"]
