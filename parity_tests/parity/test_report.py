"""Report rendering from hand-made results (independent of how comparisons were produced)."""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from nnparity.backends.compare import Comparison
from nnparity.parity import report
from nnparity.parity.report import CaseResult
from nnparity.progress import Progress, track


def _c(stage: str, name: str, rel: float, tol: float = 1e-10, note: str = "") -> Comparison:
    return Comparison(stage, name, (2, 3), rel * 2, rel, tol, rel <= tol, note)


def _results() -> list[CaseResult]:
    good = CaseResult("relu-ce-sum-b4", "torch", [
        _c("forward", "z.layer1", 1e-16), _c("loss", "loss", 3e-16), _c("grad", "W1", 2e-15)])
    bad = CaseResult("relu-ce-sum-b4", "tensorflow", [
        _c("forward", "z.layer1", 1e-16), _c("loss", "loss", 1e-16),
        _c("delta", "layer2", 0.31), _c("grad", "W2", np.inf, note="non-finite values")],
        spec={"input_dim": 4})
    skipped = CaseResult("relu-ce-sum-b4", "numpy", skipped="finite differences need float64")
    raised = CaseResult("tanh-l2-mean-b1", "torch", error="RuntimeError: boom")
    return [good, bad, skipped, raised]


def test_status_and_sentence() -> None:
    good, bad, skipped, raised = _results()
    assert [r.status for r in (good, bad, skipped, raised)] == ["pass", "fail", "skip", "fail"]
    assert bad.sentence == ("tensorflow, case relu-ce-sum-b4: forward and loss match; "
                            "delta of layer2 differs (max rel 3.1e-01)")
    assert raised.sentence == "torch, case tanh-l2-mean-b1: raised RuntimeError: boom"
    assert good.worst() is not None and good.worst().name == "W1"


def test_table_shows_worst_row_and_every_failure() -> None:
    rows = report.table_rows(_results())
    good_rows = [r for r in rows if r[1] == "torch" and r[0] == "relu-ce-sum-b4"]
    assert [r[3] for r in good_rows] == ["W1"]  # only the worst tensor of a passing result
    bad_rows = [r for r in rows if r[1] == "tensorflow"]
    assert [(r[3], r[7]) for r in bad_rows] == [
        ("layer2", "FAIL"), ("W2 (non-finite values)", "FAIL")]
    assert any(r[7] == "SKIP" for r in rows) and any(r[7] == "ERROR" for r in rows)
    assert len(report.table_rows(_results(), verbose=True)) == 3 + 4 + 1 + 1


def test_rendered_table_has_header_and_aligned_columns() -> None:
    lines = report.render_table(_results()).splitlines()
    assert lines[0].split() == ["case", "backend", "stage", "tensor", "max", "abs", "max", "rel",
                                "tol", "result"]
    assert "3.1e-01" in report.render_table(_results()) and "inf" in lines[-3]


def test_summary_line() -> None:
    line = report.summary_line(_results(), {"jax": "not installed"}, seconds=1.25)
    assert line.startswith("1 passed, 2 failed, 1 skipped (numpy: finite differences need float64)")
    assert "(3 backends: numpy, tensorflow, torch) in 1.2s" in line
    assert line.endswith("; jax skipped: not installed")
    assert report.divergences(_results())[0].startswith("tensorflow, case relu-ce-sum-b4")


def test_json_schema() -> None:
    data = report.to_json(_results(), skipped_backends={"jax": "not installed"},
                          environment={"cpu": "x"}, command={"seed": 0})
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN/Infinity
    data = json.loads(text)
    assert data["schema"] == "nnparity.report" and data["schema_version"] == 2
    assert set(data) >= {"nnparity_version", "created", "environment", "command", "summary",
                         "skipped_backends", "cases"}
    assert data["summary"] == {"passed": 1, "failed": 2, "skipped": 1, "total": 4}
    case = data["cases"]["relu-ce-sum-b4"]
    assert case["spec"] == {"input_dim": 4}
    tf = case["backends"]["tensorflow"]
    assert tf["status"] == "fail" and tf["passed"] is False
    assert tf["first_divergence"].startswith("forward and loss match; delta of layer2")
    row = tf["comparisons"][2]
    assert row == {"stage": "delta", "name": "layer2", "tensor": "layer2", "shape": [2, 3],
                   "max_abs": 0.62,
                   "max_rel": 0.31, "tol": 1e-10, "passed": False, "note": ""}
    assert tf["comparisons"][3]["max_rel"] is None  # non-finite -> null
    assert case["backends"]["torch"]["first_divergence"] is None
    assert case["backends"]["numpy"]["reason"] == "finite differences need float64"


def test_junit_xml() -> None:
    root = ET.fromstring(report.to_junit(_results(), skipped_backends={"jax": "not installed"}))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("4", "1", "1", "1")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases][:2] == [
        ("nnparity.check.torch", "relu-ce-sum-b4"), ("nnparity.check.tensorflow", "relu-ce-sum-b4")]
    failure = cases[1].find("failure")
    assert failure is not None and "delta of layer2 differs" in failure.get("message", "")
    assert cases[2].find("skipped") is not None and cases[3].find("error") is not None
    prop = suite.find("properties/property")
    assert prop is not None and prop.get("name") == "skipped_backend.jax"


def test_atomic_write(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    report.write_json(target, _results())
    assert json.loads(target.read_text())["schema_version"] == 2
    report.write_junit(tmp_path / "junit.xml", _results())
    ET.parse(tmp_path / "junit.xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "report.json"]


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        report.atomic_write(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_unwritable_targets(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="does not exist"):
        report.check_writable(tmp_path / "missing" / "x.json")
    with pytest.raises(OSError, match="is a directory"):
        report.check_writable(tmp_path)


def test_progress_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    with Progress(3, "check", stream=out, interval=0.0, bar=False) as progress:
        for name in "abc":
            progress.update(postfix=name)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("check: 1/3 (a)") and lines[-1].startswith("check: 3/3 done")


def test_progress_disabled_is_silent_and_track_yields_everything() -> None:
    out = io.StringIO()
    assert list(track(range(4), desc="x", enabled=False, stream=out)) == [0, 1, 2, 3]
    assert list(track(iter("ab"), stream=out, interval=1e9, bar=False)) == ["a", "b"]
    assert out.getvalue() == ""


def test_float64_watch_line() -> None:
    assert report.watch_line(_results()) is None
    close = CaseResult("c", "torch", [_c("update", "step1.W1", 3.4e-12), _c("grad", "W1", 1e-14)])
    assert report.watch_line([close]) == (
        "float64 watch: 1 tensor passed above 1e-12 (worst: torch, case c, update step1.W1, "
        "3.4e-12)")
