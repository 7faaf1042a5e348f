"""The copy a learner's code runs in leaves out caches (``__pycache__``, ``.git``, ``*.pyc``),
but never the folders on the way to the learner's own file (``--root`` over a tree whose file
sits in such a folder failed as "verify could not set up the sandbox")."""

from __future__ import annotations

from pathlib import Path

from nnparity.verify import scratch


def test_the_way_to_the_learners_file_is_copied_and_other_caches_are_not(tmp_path: Path) -> None:
    root = tmp_path / "submission"
    way = root / "__pycache__" / ".git"
    way.mkdir(parents=True)
    (way / "learner.py").write_text("print('hi')\n")
    (way / "stale.pyc").write_bytes(b"\0")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")
    (root / "__pycache__" / "other.pyc").write_bytes(b"\0")
    (root / "data.txt").write_text("1\n")
    with scratch.scratch(way / "learner.py", root=root) as made:
        copied = sorted(str(p.relative_to(made.copy)) for p in made.copy.rglob("*"))
    assert copied == ["__pycache__", "__pycache__/.git", "__pycache__/.git/learner.py",
                      "data.txt"]
