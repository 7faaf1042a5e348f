"""``nnparity check`` end to end: exit codes 0/1/2, the divergence sentence, JSON and JUnit files.

A deliberately broken backend (the reference with its last-layer delta scaled by 1.3) is injected
into the registry, so failures are exercised without any framework.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.numpy_backend import NumpyBackend
from nnparity.cli import main
from nnparity.reference.results import Gradients

QUICK_XOR = ["--quick", "-k", "relu-ce-mean-wd0-adam-f64-b4-xor"]


class BrokenBackend(NumpyBackend):
    """The reference with a wrong last-layer delta (as if an activation derivative were off)."""

    name = "broken"

    def gradients(self, spec: Any, params: Any, x: np.ndarray, y: np.ndarray,
                  **kwargs: Any) -> Gradients:
        result = super().gradients(spec, params, x, y, **kwargs)
        last = list(result.deltas)[-1]
        result.deltas[last] = result.deltas[last] * 1.3
        return result


@pytest.fixture
def fake_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register ``broken`` (installed) and ``ghost`` (not installed) next to the real ones."""
    monkeypatch.setitem(registry.MODULES, "broken", ("tests.broken", None, ()))
    monkeypatch.setitem(registry.MODULES, "ghost", ("tests.ghost", "ghost", ("ghost",)))
    monkeypatch.setattr(registry, "NAMES", (*registry.NAMES, "broken", "ghost"))
    monkeypatch.setitem(registry._loaded, "broken", BrokenBackend())
    monkeypatch.setitem(registry._missing, "ghost", "not installed: pip install nnparity[ghost]")


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``nnparity check ARGS`` in this process (``--jobs 1``: the injected backends exist only
    here, not in a worker process)."""
    code = main(["check", "--jobs", "1", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_all_pass_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _check(capsys, "--backends", "numpy", *QUICK_XOR)
    assert code == 0
    assert "PASS" in out and "1 passed, 0 failed" in out


def test_failure_exits_1_and_names_the_first_divergence(
        fake_backends: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _check(capsys, "--backends", "broken,numpy", *QUICK_XOR)
    assert code == 1
    assert ("broken, case relu-ce-mean-wd0-adam-f64-b4-xor: forward and loss match; "
            "delta of layer2 differs (max rel 3.0e-01)") in out
    assert "1 passed, 1 failed" in out and "FAIL" in out


def test_implicit_missing_backend_is_skipped_with_its_reason(
        fake_backends: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Only numpy and the two fakes, so no framework import is needed here.
    monkeypatch.setattr(registry, "NAMES", ("numpy", "broken", "ghost"))
    code, out, _ = _check(capsys, *QUICK_XOR)
    assert code == 1
    assert "ghost skipped: not installed: pip install nnparity[ghost]" in out


@pytest.mark.parametrize("args, message", [
    (["--backends", "nosuch"], "unknown backend 'nosuch'"),
    (["--backends", "ghost"], "backend 'ghost' is unavailable: not installed"),
    (["--backends", ","], "--backends is empty"),
    (["-k", "("], "bad -k regex"),
    (["-k", "no-case-has-this-name"], "no default case matches"),
    (["--json", "/nonexistent-folder/report.json"], "does not exist"),
    (["--junit", "/"], "is a directory"),
])
def test_bad_usage_exits_2_with_one_line(
        fake_backends: None, capsys: pytest.CaptureFixture[str], args: list[str],
        message: str) -> None:
    code, out, err = _check(capsys, *args)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_json_and_junit_reports(fake_backends: None, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    json_path, junit_path = tmp_path / "r.json", tmp_path / "r.xml"
    code, _, _ = _check(capsys, "--backends", "numpy,broken", "--quick", "-k", "xor", "--dtype",
                        "float64", "--json", str(json_path), "--junit", str(junit_path))
    assert code == 1
    data = json.loads(json_path.read_text())
    assert data["schema_version"] == 2 and data["nnparity_version"]
    assert data["command"]["backends"] == ["numpy", "broken"]
    assert data["command"]["selection"] == "quick" and data["command"]["dtype"] == "float64"
    assert "numpy" in data["environment"]
    assert data["summary"]["failed"] == data["summary"]["total"] // 2 > 0
    for name, case in data["cases"].items():
        assert "xor" in name and case["spec"]["dtype"] == "float64"
        broken = case["backends"]["broken"]
        assert broken["status"] == "fail"
        assert "delta of layer2 differs" in broken["first_divergence"]
        assert case["backends"]["numpy"]["status"] == "pass"
        row = broken["comparisons"][0]
        assert set(row) == {"stage", "name", "tensor", "shape", "max_abs", "max_rel", "tol",
                            "passed", "note"}
    suite = ET.parse(junit_path).getroot().find("testsuite")
    assert suite is not None
    testcases = suite.findall("testcase")
    assert len(testcases) == data["summary"]["total"]
    assert sum(tc.find("failure") is not None for tc in testcases) == data["summary"]["failed"]


def test_list_prints_selected_case_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _check(capsys, "--list", "--full", "-k", "threenet", "--dtype", "float32")
    names = out.split()
    assert code == 0 and names and all("threenet" in n and "-f32-" in n for n in names)


def test_verbose_shows_every_tensor(capsys: pytest.CaptureFixture[str]) -> None:
    _, short, _ = _check(capsys, "--backends", "numpy", *QUICK_XOR)
    _, verbose, _ = _check(capsys, "--backends", "numpy", "--verbose", *QUICK_XOR)
    assert len(verbose.splitlines()) > len(short.splitlines())


def test_every_installed_backend_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _check(capsys, *QUICK_XOR)
    assert code == 0
    summary = out.strip().splitlines()[-1]
    for name, why in registry.status().items():
        assert (name in summary) if why is None else (f"{name} skipped: {why}" in summary)
