"""For instructors: --points (partial credit by stage), --gradescope (results.json, validated
against Gradescope's documented fields), --feedback (no number of the reference below full) and
--summary (the class at a glance)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from nnparity.cli import main
from nnparity.reference import MLPSpec
from nnparity.verify.adapters import read_declaration
from nnparity.verify.problem import make_problem, reference_tensors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"

# Gradescope's autograder specification: the fields results.json may hold (top level, per test).
TOP_LEVEL = {"score", "execution_time", "output", "output_format", "test_output_format",
             "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests",
             "leaderboard"}
TEST_FIELDS = {"score", "max_score", "status", "name", "name_format", "number", "output",
               "output_format", "tags", "visibility", "extra_data"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def validate_gradescope(data: dict) -> None:
    """Gradescope's documented fields and types; ``score`` is the sum of the tests'."""
    assert set(data) <= TOP_LEVEL, set(data) - TOP_LEVEL
    assert isinstance(data["score"], int | float) and isinstance(data["tests"], list)
    assert data.get("visibility", "visible") in VISIBILITIES
    assert isinstance(data.get("output", ""), str)
    for test in data["tests"]:
        assert set(test) <= TEST_FIELDS, set(test) - TEST_FIELDS
        assert {"name", "score", "max_score", "output", "visibility"} <= set(test)
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], int | float) and isinstance(test["max_score"], int | float)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] in VISIBILITIES
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))


def odd_gradient(folder: Path) -> Path:
    """A wrong dW2 no known pattern explains (the report then shows reference values)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = (EXAMPLES / "correct_class_gradient.py").read_text()
    path = folder / "odd.py"
    path.write_text(source.replace("grads['w2'] = np.dot(z1.T, dy)",
                                   "grads['w2'] = np.dot(z1.T, dy) + 0.01 * np.cos(z1.T @ dy)"))
    return path


def run(args: list[str], tmp_path: Path, capsys) -> tuple[int, str, str, str]:
    """stdout, the JSON and the JUnit of one run."""
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    for stale in (report, junit):
        stale.unlink(missing_ok=True)
    code = main(["verify", *args, "--backends", "none", "--json", str(report), "--junit",
                 str(junit)])
    return code, capsys.readouterr().out, report.read_text(), junit.read_text()


def test_points_score_each_stage(tmp_path, capsys):
    points = "forward=1,loss=1,delta=2,grad=2,update=1"
    code, _, text, _ = run([str(EXAMPLES / "faulty_sign.py"), "--points", points], tmp_path,
                           capsys)
    assert code == 1
    scored = json.loads(text)["cases"]["faulty_sign.py"]["backends"]["yours"]["points"]
    assert {s: (v["score"], v["status"]) for s, v in scored["stages"].items()} == {
        "forward": (1.0, "pass"), "loss": (1.0, "pass"), "delta": (0.0, "fail"),
        "grad": (0.0, "not exposed"), "update": (0.0, "fail")}
    assert (scored["score"], scored["max_score"]) == (2.0, 7.0)


@pytest.mark.parametrize("points, message", [
    ("forward=1,gradient=2", "'gradient=2' is not STAGE=POINTS"),
    ("forward=-1", "points must be a number >= 0"),
    ("loss=x", "points must be a number >= 0"),
    ("loss=1,loss=2", "loss is given twice"),
])
def test_bad_points_are_exit_2(points, message, capsys):
    assert main(["verify", str(EXAMPLES / "faulty_sign.py"), "--points", points]) == 2
    assert message in capsys.readouterr().err


def test_gradescope_results_for_one_submission(tmp_path, capsys):
    target = tmp_path / "results.json"
    code = main(["verify", str(EXAMPLES / "faulty_sign.py"), "--backends", "none",
                 "--gradescope", str(target), "--points", "forward=1,loss=1,delta=2,update=1"])
    capsys.readouterr()
    assert code == 1
    data = json.loads(target.read_text())
    validate_gradescope(data)
    assert data["score"] == 2.0 and len(data["tests"]) == 4
    assert "diagnosis: opposite sign" in data["output"]
    assert [t["max_score"] for t in data["tests"]] == [1.0, 1.0, 2.0, 1.0]


def test_gradescope_one_file_per_submission(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("correct_layers", "faulty_sign"):
        (folder / f"{name}.py").write_text((EXAMPLES / f"{name}.py").read_text())
    (folder / "empty.py").write_text("x = 1\n")
    out = tmp_path / "gradescope"
    assert main(["verify", str(folder), "--gradescope", str(out)]) == 1
    capsys.readouterr()
    files = {p.name: json.loads(p.read_text()) for p in out.iterdir()}
    assert set(files) == {"correct_layers.py.json", "faulty_sign.py.json", "empty.py.json"}
    for data in files.values():
        validate_gradescope(data)
    assert files["correct_layers.py.json"]["score"] == 4.0  # no deltas exposed: 4 of 5
    assert files["empty.py.json"]["score"] == 0 and "no NNPARITY declaration" in \
        files["empty.py.json"]["output"]


def test_gradescope_never_writes_two_submissions_into_one_file(tmp_path, capsys):
    """Names that differ only in the characters the file name replaces (every CJK name of the
    same length), or only in letter case, each get a results file of their own."""
    folder = tmp_path / "class"
    folder.mkdir()
    passing = {"李明.py", "a b.py", "Hw.py", "solo.py"}
    for name in (*passing, "王芳.py", "a_b.py", "hw.py"):
        example = "correct_layers" if name in passing else "faulty_sign"
        (folder / name).write_text((EXAMPLES / f"{example}.py").read_text())
    out = tmp_path / "gradescope"
    assert main(["verify", str(folder), "--gradescope", str(out)]) == 1
    capsys.readouterr()
    files = {p.name: json.loads(p.read_text()) for p in out.iterdir()}
    assert len(files) == 7 and "solo.py.json" in files
    assert len({name.casefold() for name in files}) == 7
    scores = sorted(data["score"] for data in files.values())
    assert scores == [2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0]  # faulty_sign: forward and loss
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+\.json", name) for name in files)


def test_gradescope_targets_are_checked_first(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a.py").write_text("x = 1\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["verify", str(folder), "--gradescope", str(blocker)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["verify", str(EXAMPLES / "faulty_sign.py"), "--gradescope",
                 str(tmp_path / "results.txt")]) == 2
    assert "must end in .json" in capsys.readouterr().err


def _reference_strings(path: Path) -> set[str]:
    """Every value of the reference for ``path``'s declaration (both batches), as the reports
    would print it (6 significant digits, JSON's repr, 4 decimals)."""
    spec = MLPSpec.from_dict(read_declaration(path)["spec"])
    values: set[str] = set()
    for edges in (False, True):
        for tensor in reference_tensors(make_problem(spec, edges=edges)).values():
            for v in np.asarray(tensor, dtype=np.float64).ravel():
                if abs(v) > 1e-3:
                    values |= {f"{v:.6g}", repr(float(v)), f"{v:.4f}"}
    return values


def _leaks(text: str, values: set[str]) -> list[str]:
    """Reference values printed in ``text``; the JSON report's run times (``"seconds": 0.4443``,
    4 decimals) are left out: one equal to a value's 4-decimal form is a coincidence."""
    text = re.sub(r'"seconds": -?\d+\.\d+', "", text)
    numbers = set(re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", text))
    return sorted(n for n in numbers if n in values and len(n.strip("-0.")) >= 4)


@pytest.mark.parametrize("level", ["diagnosis", "pass-fail"])
def test_restricted_feedback_shows_no_reference_value(level, tmp_path, capsys):
    path = odd_gradient(tmp_path / "sub")
    values = _reference_strings(path)
    code, out, text, junit = run([str(path)], tmp_path, capsys)
    assert code == 1
    assert _leaks(out, values) and _leaks(text, values)  # full feedback shows them
    code, out, text, junit = run([str(path), "--feedback", level], tmp_path, capsys)
    assert code == 1
    for shown in (out, text, junit):
        assert not _leaks(shown, values), _leaks(shown, values)
        assert "worst_elements" not in shown and "max_abs" not in shown
    ET.fromstring(junit)
    yours = json.loads(text)["cases"]["odd.py"]["backends"]["yours"]
    assert yours["status"] == "fail" and "max_rel" not in yours["comparisons"][0]
    assert "grad" in out and "FAIL" in out


def test_restricted_feedback_drops_the_evidence(tmp_path, capsys):
    overflow = str(EXAMPLES / "faulty_softmax_overflow.py")
    code, out, text, _ = run([overflow, "--edge-cases", "fail"], tmp_path, capsys)
    assert code == 1 and "the logits reach" in out and "the logits reach" in text
    code, out, text, junit = run([overflow, "--edge-cases", "fail", "--feedback", "diagnosis"],
                                 tmp_path, capsys)
    assert code == 1
    assert "softmax without the max shift" in out
    for shown in (out, text, junit):
        assert "the logits reach" not in shown and "checked:" not in shown


def test_the_class_summary(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("correct_layers", "faulty_sign", "faulty_relu_zero"):
        (folder / f"{name}.py").write_text((EXAMPLES / f"{name}.py").read_text())
    (folder / "<b>odd.py").write_text((EXAMPLES / "faulty_layers_bias_axis.py").read_text())
    md, page = tmp_path / "class.md", tmp_path / "class.html"
    assert main(["verify", str(folder), "--summary", str(md)]) == 1
    assert main(["verify", str(folder), "--summary", str(page)]) == 1
    capsys.readouterr()
    text = md.read_text()
    assert "| forward | 4/4 | 100% |" in text and "| delta | 1/2 | 50% |" in text
    assert "| update | 2/4 | 50% |" in text  # odd.py crashed in its update: not run
    assert "| sign | 1 | faulty_sign.py |" in text
    assert "| edge case: relu-at-zero | 1 | faulty_relu_zero.py |" in text
    assert "## Slowest submissions" in text
    html = page.read_text()
    assert "&lt;b&gt;odd.py" in html and "<b>odd" not in html
    assert main(["verify", str(folder), "--summary", str(tmp_path / "class.txt")]) == 2
    assert "must end in .md or .html" in capsys.readouterr().err


def test_gradescope_is_for_submissions_not_results_files(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text("{}")
    assert main(["verify", "--results", str(results), "--vectors", str(tmp_path),
                 "--gradescope", str(tmp_path / "gs.json")]) == 2
    assert "--gradescope grades Python files or notebooks" in capsys.readouterr().err
