"""Report JSON schema version 2: shipped in the package, followed by the reports of check (model
files and ports), verify and the API, and enforced on every report the tests write (the conftest
validates each one as it is written: a report breaking the schema fails the test that wrote
it)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from report_schema import schema, validate  # parity_tests/, beside the conftest

from nnparity.backends.compare import Comparison
from nnparity.cli import main
from nnparity.parity import report
from nnparity.parity.report import CaseResult, Diagnosis

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _failing() -> CaseResult:
    result = CaseResult("case", "torch", spec=None)
    result.comparisons = [Comparison("delta", "layer1", (2, 3), 0.5, 0.25, 1e-10, False)]
    result.diagnoses.append(Diagnosis("activation-backward", "the backward is wrong", "re-run"))
    return result


def test_the_schema_ships_in_the_package_and_is_a_valid_json_schema():
    text = resources.files("nnparity").joinpath("schemas/report-2.json").read_text()
    data = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(data)
    assert data["properties"]["schema_version"] == {"const": report.SCHEMA_VERSION} == {
        "const": 2}
    assert schema() == data


def test_diagnosis_is_a_list_of_code_message_evidence_objects():
    data = report.to_json([_failing()])
    validate(data)
    entry = data["cases"]["case"]["backends"]["torch"]
    assert entry["diagnosis"] == [{"code": "activation-backward",
                                   "message": "the backward is wrong", "evidence": "re-run"}]
    assert entry["comparisons"][0]["tensor"] == entry["comparisons"][0]["name"] == "layer1"


@pytest.mark.parametrize("old", ["free text, as check wrote in version 1", None,
                                 {"code": "sign", "title": "t", "detail": "d", "evidence": "e"}])
def test_version_1_diagnoses_do_not_validate(old):
    data = report.to_json([_failing()])
    data["cases"]["case"]["backends"]["torch"]["diagnosis"] = old
    with pytest.raises(jsonschema.ValidationError):
        validate(data)


def test_a_report_breaking_the_schema_fails_when_a_test_writes_it(tmp_path, monkeypatch):
    broken = report.to_json([_failing()])
    broken["schema_version"] = 1
    monkeypatch.setattr(report, "to_json", lambda *args, **kwargs: broken)
    with pytest.raises(jsonschema.ValidationError):
        report.write_json(tmp_path / "r.json", [_failing()])
    assert not (tmp_path / "r.json").exists()


@pytest.mark.torch
def test_a_failing_model_files_report_follows_the_schema(tmp_path, capsys):
    out = tmp_path / "r.json"
    target = str(EXAMPLES / "models" / "torch_double_softmax.py") + ":model"
    assert main(["check", "--loss", "ce", "--model-file", target, "--json", str(out)]) == 1
    data = json.loads(out.read_text())
    validate(data)
    [entry] = data["cases"][target]["backends"].values()
    assert [d["code"] for d in entry["diagnosis"]] == ["double-softmax"]
    capsys.readouterr()


def test_a_verify_report_follows_the_schema(tmp_path, capsys):
    out = tmp_path / "r.json"
    learner = EXAMPLES / "verify" / "faulty_sign.py"
    assert main(["verify", str(learner), "--backends", "none", "--sandbox", "off",
                 "--json", str(out)]) == 1
    data = json.loads(out.read_text())
    validate(data)
    [found] = data["cases"]["faulty_sign.py"]["backends"]["yours"]["diagnosis"]
    assert found["code"] == "sign" and found["message"].startswith(found["title"] + ": ")
    capsys.readouterr()
