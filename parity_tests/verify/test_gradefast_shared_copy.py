"""A graded class's folder is copied once for all its runs (``SharedCopies``); under bubblewrap
each run fills a tmpfs of its own sandbox from that copy. Every run still starts from the folder
as it was, never sees another run's writes, and never writes the shared copy or the original.

The sandboxed tests need a working bubblewrap: without it they skip with the reason, except when
``NNPARITY_REQUIRE_SANDBOX=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from learner_header import HEADER  # parity_tests/verify/, beside this file

from nnparity.cli import main
from nnparity.verify import sandbox, scratch
from nnparity.verify.sandbox import PRISTINE_AT, bwrap_works


@pytest.fixture
def sandboxed() -> None:
    why = bwrap_works()
    if why is not None:
        if os.environ.get("NNPARITY_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"NNPARITY_REQUIRE_SANDBOX=1 but {why}")
        pytest.skip(why)


def learner(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def test_one_copy_per_folder_removed_at_the_end(tmp_path: Path) -> None:
    first = learner(tmp_path / "class", "a.py", "")
    second = learner(tmp_path / "class", "b.py", "")
    other = learner(tmp_path / "other", "c.py", "")
    with scratch.SharedCopies() as copies:
        made = copies.pristine(first)
        assert made is not None and copies.pristine(second) is made
        assert sorted(p.name for p in made.copy.iterdir()) == ["a.py", "b.py"]
        assert copies.pristine(other) is not made
        with scratch.scratch(first, pristine=made) as run:
            assert run.shared and run.copy == made.copy and run.script.is_file()
        assert made.copy.is_dir()  # a run's end leaves the shared copy alone
    assert not made.copy.exists()


def test_a_folder_over_the_limit_is_not_shared(tmp_path: Path, monkeypatch) -> None:
    path = learner(tmp_path / "class", "a.py", "")
    (path.parent / "data.bin").write_bytes(b"x" * 4096)
    monkeypatch.setattr(scratch, "COPY_LIMIT", 1024)
    with scratch.SharedCopies() as copies:
        assert copies.pristine(path) is None
        with scratch.scratch(path, pristine=copies.pristine(path)) as run:  # the file alone
            assert not run.shared and [p.name for p in run.copy.iterdir()] == ["a.py"]


def test_the_bwrap_command_fills_a_tmpfs_from_the_read_only_copy(tmp_path: Path) -> None:
    folder, copy = tmp_path / "class", tmp_path / "copy"
    cmd = sandbox._bwrap_command(folder, copy, tmp_path / "child.py", ["python"], shared=True)
    assert " ".join(["--ro-bind", str(copy), PRISTINE_AT]) in " ".join(cmd)
    assert " ".join(["--size", str(sandbox.FOLDER_BYTES), "--tmpfs", str(folder)]) \
        in " ".join(cmd)
    assert "--bind" not in cmd and cmd[-2:] == ["--fill-from", PRISTINE_AT]
    private = sandbox._bwrap_command(folder, copy, tmp_path / "child.py", ["python"])
    assert " ".join(["--bind", str(copy), str(folder)]) in " ".join(private)
    assert "--fill-from" not in private


def test_each_run_starts_from_the_folder_as_it_was(tmp_path: Path, capsys, sandboxed) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "data.csv").write_text("1,2\n")
    writes = f"""
        assert open("data.csv").read() == "1,2\\n"
        assert os.path.isdir({PRISTINE_AT!r}), "not filled from the shared copy"
        assert not os.path.exists("written.txt"), "another run's write is visible"
        with open("written.txt", "w") as f:
            f.write("mine")
        with open("data.csv", "w") as f:
            f.write("changed")
        try:
            open(os.path.join({PRISTINE_AT!r}, "x.txt"), "w")
        except OSError:
            pass
        else:
            raise AssertionError("the shared copy is writable")
        """
    for name in ("a.py", "b.py", "c.py"):
        learner(folder, name, writes)
    report = tmp_path / "report.json"
    code = main(["verify", str(folder), "--backends", "none", "--sandbox", "require",
                 "--jobs", "2", "--edge-cases", "off", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    cases = json.loads(report.read_text())["cases"]
    assert sorted(cases) == ["a.py", "b.py", "c.py"]
    assert all(c["backends"]["yours"]["status"] == "pass" for c in cases.values())
    assert (folder / "data.csv").read_text() == "1,2\n"
    assert not (folder / "written.txt").exists()
