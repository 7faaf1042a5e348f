"""A learner's file is read as Python reads it: UTF-8 with a byte-order mark (what Windows
Notepad saves), another encoding declared by a coding line (PEP 263), Windows line ends. The BOM
was read as a character ("syntax error: invalid non-printable character U+FEFF") and a declared
Latin-1 file refused as not UTF-8, while Python runs both."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnparity.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "verify" / "correct_class_gradient.py"
SOURCE = EXAMPLE.read_text(encoding="utf-8")
FILES = {
    "bom": b"\xef\xbb\xbf" + SOURCE.encode(),
    "latin-1 declared": ("# -*- coding: latin-1 -*-\n# café, naïve\n" + SOURCE).encode("latin-1"),
    "cp1252 declared": ("# coding: cp1252\n# “quoted” – dash\n" + SOURCE).encode("cp1252"),
    "windows line ends": SOURCE.replace("\n", "\r\n").encode(),
}
UNREADABLE = {
    "latin-1 undeclared": (b"# caf\xe9\n" + SOURCE.encode(), "invalid or missing encoding"),
    "bad byte later": (SOURCE.encode() + b"\n# caf\xe9\n", "invalid continuation byte"),
    "unknown encoding": (b"# -*- coding: klingon -*-\n" + SOURCE.encode(), "unknown encoding"),
}


@pytest.mark.parametrize("kind", sorted(FILES))
def test_a_file_python_runs_is_read_as_python_reads_it(tmp_path, capsys, kind):
    path = tmp_path / "learner.py"
    path.write_bytes(FILES[kind])
    code = main(["verify", str(path), "--backends", "none", "--sandbox", "off"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "1 passed, 0 failed" in out


@pytest.mark.parametrize("kind", sorted(UNREADABLE))
def test_a_file_python_cannot_decode_is_one_line_exit_2(tmp_path, capsys, kind):
    data, reason = UNREADABLE[kind]
    path = tmp_path / "learner.py"
    path.write_bytes(data)
    code = main(["verify", str(path), "--backends", "none", "--sandbox", "off"])
    err = capsys.readouterr().err
    line = [line for line in err.splitlines() if line.startswith("nnparity verify: error")]
    assert code == 2 and len(line) == 1, err
    assert f"{path}: not Python source in UTF-8 or the encoding its coding line declares" \
        in line[0] and reason in line[0] and "Traceback" not in err
