"""A learner's file directly in ``/tmp`` runs under bubblewrap: the child script is mounted
outside ``/tmp`` (the learner's folder, bound over it, would hide it: every such file failed
with ``can't open file '/tmp/.nnparity/child.py'``)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.verify.sandbox import bwrap_works

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "verify" / "correct_class_gradient.py"


def test_a_file_directly_in_tmp_runs_under_bubblewrap(capsys) -> None:
    why = bwrap_works()
    if why is not None:
        if os.environ.get("NNPARITY_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"NNPARITY_REQUIRE_SANDBOX=1 but {why}")
        pytest.skip(why)
    path = Path("/tmp") / f"nnparity_tmp_root_{uuid.uuid4().hex}.py"
    shutil.copyfile(EXAMPLE, path)
    try:
        code = main(["verify", str(path), "--backends", "none", "--sandbox", "require"])
    finally:
        path.unlink()
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "1 passed, 0 failed" in out
