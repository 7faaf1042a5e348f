"""Grader mode: a folder of submissions, in parallel, one line per student, one report."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from nnparity.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"
SUBMISSIONS = {"alice.py": "correct_layers", "bob.py": "faulty_layers_bias_axis",
               "carol.py": "faulty_adam_epsilon"}


def test_a_folder_is_graded_one_line_per_student(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    for name, example in SUBMISSIONS.items():
        shutil.copy(EXAMPLES / f"{example}.py", folder / name)
    (folder / "dave.py").write_text("x = 1\n")
    report, junit = tmp_path / "grades.json", tmp_path / "grades.xml"
    code = main(["verify", str(folder), "--jobs", "2", "--json", str(report),
                 "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [
        ["PASS", "alice.py:"], ["FAIL", "bob.py:"], ["FAIL", "carol.py:"], ["ERROR", "dave.py:"]]
    assert lines[1].endswith("[bias-axis]") and lines[2].endswith("[adam-epsilon]")
    assert "graded 4 files: 1 passed, 2 failed, 1 error(s)" in out
    assert "Framework backends" not in out  # grading shows no backends unless asked
    cases = json.loads(report.read_text())["cases"]
    yours = {name: case["backends"]["yours"] for name, case in cases.items()}
    assert {n: y["status"] for n, y in yours.items()} == {
        "alice.py": "pass", "bob.py": "fail", "carol.py": "fail", "dave.py": "fail"}
    assert yours["bob.py"]["diagnosis"][0]["code"] == "bias-axis"
    assert yours["alice.py"]["diagnosis"] == []
    assert "no NNPARITY declaration" in yours["dave.py"]["reason"]
    names = {tc.get("name") for tc in ET.parse(junit).getroot().iter("testcase")}
    assert names == set(yours)


def test_a_teachers_adapter_applies_to_every_file(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    source = (EXAMPLES / "correct_layers.py").read_text()
    start, end = source.index("NNPARITY = {"), source.index("}\n\n\nclass SGD")
    declaration = source[start + len("NNPARITY = "):end + 1]
    bare = source[:start] + source[end + 2:]
    (folder / "erin.py").write_text(bare)
    (folder / "frank.py").write_text(bare.replace("axis=0)", "axis=1)"))
    adapter = tmp_path / "adapter.json"
    import ast

    adapter.write_text(json.dumps(ast.literal_eval(declaration)))
    code = main(["verify", str(folder / "erin.py"), str(folder / "frank.py"),
                 "--adapter", str(adapter)])
    out = capsys.readouterr().out
    assert code == 1
    assert "PASS   erin.py" in out and "FAIL   frank.py" in out and "[bias-axis]" in out
