"""``nnparity fuzz`` end to end in this process: exit codes 0/1/2, the ``--json`` document, a
planted bug found and minimised to a spec file that ``check --spec`` replays.

The planted backend (``parity_tests/fuzz_planted.py``) is the reference with tanh's derivative
wrong, injected into the registry by the test only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fuzz_planted import register  # parity_tests/, beside the conftest

from nnparity.cli import main

PLANTED_SPECS = 30


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register ``planted`` next to the real backends."""
    register(monkeypatch.setitem, monkeypatch.setattr)


def _fuzz(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["fuzz", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_planted_bug_is_found_minimised_and_replayed(
        planted: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "fuzz.json"
    code, out, _ = _fuzz(capsys, "--specs", str(PLANTED_SPECS), "--seed", "3", "--backends",
                         "planted", "--out", str(tmp_path), "--json", str(report))
    assert code == 1, out
    doc = json.loads(report.read_text())
    findings = doc["findings"]
    assert findings and doc["summary"]["findings"] == len(findings)
    assert doc["summary"]["agreed"] == PLANTED_SPECS - len(findings)
    for finding in findings:
        kinds = [layer["kind"] for layer in finding["spec"]["net"]]
        assert finding["backend"] == "planted" and "tanh" in kinds
        assert finding["layers"] == len(kinds) <= 3
        assert finding["tensor"].startswith("grad") and finding["error"] > 0.1
        assert finding["raised"] is None
        path = Path(finding["file"])
        assert path.name == f"fuzz-3-{finding['index']}-planted.json"
        assert json.loads(path.read_text()) == finding["spec"]
        assert f"spec {finding['index']} [planted]" in out
    assert any(f["drawn_layers"] > 3 for f in findings)  # something was minimised
    replay = Path(findings[0]["file"])
    assert main(["check", "--spec", str(replay), "--backends", "planted"]) == 1
    assert main(["check", "--spec", str(replay), "--backends", "numpy"]) == 0
    capsys.readouterr()


def test_agreement_exits_0_with_the_json_schema(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "fuzz.json"
    code, out, _ = _fuzz(capsys, "--specs", "3", "--seed", "1", "--backends", "numpy",
                         "--out", str(tmp_path), "--json", str(report))
    assert code == 0, out
    doc = json.loads(report.read_text())
    assert doc["schema"] == "nnparity-fuzz/1"
    assert doc["setup"] == {"seed": 1, "specs": 3, "backends": ["numpy"], "shrink_budget": 60,
                            "scheduler": None, "workers": ["local"]}
    assert doc["summary"]["specs"] == doc["summary"]["agreed"] == 3
    assert sum(doc["summary"]["statuses"]["numpy"].values()) == 3
    assert doc["findings"] == []
    assert list(tmp_path.iterdir()) == [report]


def test_same_seed_gives_the_same_findings(
        planted: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        report = tmp_path / run / "fuzz.json"
        _fuzz(capsys, "--specs", "12", "--seed", "4", "--backends", "planted", "--out",
              str(tmp_path / run), "--json", str(report))
        doc = json.loads(report.read_text())
        docs.append([{k: v for k, v in f.items() if k != "file"} for f in doc["findings"]])
    assert docs[0] == docs[1] and docs[0]


DIVERGING = {"family": "net", "input_shape": [2, 1, 2], "loss": "mse", "reduction": "sum",
             "dtype": "float64", "init": "he",
             "net": [{"kind": "flatten"}, {"kind": "dense", "units": 1},
                     {"kind": "dense", "units": 1}, {"kind": "dense", "units": 4}]}
"""Found by ``fuzz --seed 1`` (spec 80, on JAX): plain SGD drives the reference's weights to inf
within five steps, so every backend fails on it alike."""


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_a_spec_whose_reference_diverges_is_a_skip_not_a_finding(planted: None) -> None:
    from nnparity.fuzz.run import check

    result = check(DIVERGING, "fuzz-1-80-jax", "sgd", "planted")
    assert result.status == "skip" and "reference itself is not finite" in result.skipped
    assert result.comparisons and not all(c.passed for c in result.comparisons)


@pytest.mark.parametrize("args, message", [
    (["--specs", "0"], "--specs must be from 1"),
    (["--backends", "nosuch"], "unknown backend 'nosuch'"),
    (["--shrink-budget", "-1"], "--shrink-budget must be >= 0"),
    (["--scheduler", "nosuch://127.0.0.1:1"], "cannot reach a Dask scheduler there"),
])
def test_bad_usage_exits_2(args: list[str], message: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    if "--scheduler" in args:
        pytest.importorskip("distributed", reason="Dask distributed is not installed")
    code, _, err = _fuzz(capsys, "--backends", "numpy", *args, "--out", str(tmp_path / "out"))
    assert code == 2 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no output folder made


def test_bad_seed_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["fuzz", "--seed", "-1"])
    assert stop.value.code == 2
    assert "a seed is" in capsys.readouterr().err


def test_reproduce_takes_a_scheduler_or_jobs_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reproduce", "--quick", "-k", "iris", "--jobs", "2", "--scheduler",
                 "tcp://127.0.0.1:1"])
    assert code == 2 and "give one of them" in capsys.readouterr().err
