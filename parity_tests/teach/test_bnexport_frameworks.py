"""Exports of networks with ``batchnorm`` to torch and Keras: each file passes ``nnparity check
--model-file`` (evaluation and the running statistics after three steps compared) and maps back
onto the same layer list (momentum, epsilon and estimator included); the estimator a framework
does not keep is refused with one line, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.reference import NetSpec


def _spec(variance: str) -> NetSpec:
    """A batchnorm over channels (conv -> tanh -> batchnorm -> pool) and one over features
    (dense -> tanh -> batchnorm), neither right after a bias or another normalisation (whose
    gradient it would cancel: rounding noise no comparison judges)."""
    return NetSpec(input_shape=(6, 6, 2), loss="ce", net=[
        {"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
        {"kind": "tanh"},
        {"kind": "batchnorm", "momentum": 0.9, "epsilon": 1e-3, "variance": variance},
        {"kind": "maxpool", "size": 2, "padding": "valid"}, {"kind": "flatten"},
        {"kind": "dense", "units": 4}, {"kind": "tanh"},
        {"kind": "batchnorm", "momentum": 0.8, "variance": variance},
        {"kind": "dense", "units": 3}])


VARIANCE = {"torch": "unbiased", "keras": "biased"}


@pytest.mark.parametrize("framework", [
    pytest.param("torch", marks=pytest.mark.torch),
    pytest.param("keras", marks=pytest.mark.tensorflow)])
def test_the_exported_file_passes_check_model_file(framework: str, tmp_path: Path) -> None:
    spec = _spec(VARIANCE[framework])
    spec_file, path = tmp_path / "net.json", tmp_path / f"bn_{framework}.py"
    spec_file.write_text(json.dumps(spec.to_dict()))
    assert main(["export", "--framework", framework, str(spec_file), "-o", str(path)]) == 0
    report = tmp_path / "r.json"
    assert main(["check", "--model-file", f"{path}:build", "--input-shape", "6,6,2",
                 "--json", str(report)]) == 0
    (case,) = json.loads(report.read_text())["cases"].values()
    assert NetSpec.from_dict(case["spec"]).net == spec.net
    (result,) = case["backends"].values()
    compared = {c["name"] for c in result["comparisons"] if c["passed"]}
    assert "eval.output" in compared  # evaluation on the running statistics
    for layer in ("batchnorm1", "batchnorm2"):  # the running statistics after each step
        assert {f"step{i}.{layer}.{s}" for i in (1, 2, 3) for s in ("mean", "var")} <= compared


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_the_estimator_a_framework_does_not_keep_is_refused(
        framework: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = "biased" if VARIANCE[framework] == "unbiased" else "unbiased"
    spec_file, path = tmp_path / "net.json", tmp_path / "out.py"
    spec_file.write_text(json.dumps(_spec(other).to_dict()))
    assert main(["export", "--framework", framework, str(spec_file), "-o", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "batchnorm1" in error and other in error
    assert not path.exists()
