"""Two verdicts: the math on a generic batch, the edge cases (exact zeros at relu's kink, the
+1000 output-bias offset) apart, as named findings counted as warnings unless asked to fail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nnparity.backends.compare import compare_all, first_divergence, tolerance
from nnparity.cli import main
from nnparity.reference import MLPSpec, network
from nnparity.verify.diagnose import Context, diagnose
from nnparity.verify.mistakes import with_spec
from nnparity.verify.problem import make_problem, reference_tensors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"
SPEC = MLPSpec(3, (6, 4, 3), ("relu", "relu", "identity"), loss="ce", reduction="mean",
               weight_decay=1e-2)


def verify(name: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / f"{name}.json"
    code = main(["verify", str(EXAMPLES / f"{name}.py"), "--backends", "none",
                 "--json", str(report), *extra])
    return code, json.loads(report.read_text())["cases"][f"{name}.py"]["backends"]["yours"]


def test_the_generic_batch_has_no_kink_and_no_offset():
    generic, edge = make_problem(SPEC, edges=False), make_problem(SPEC)
    for problem in (generic, edge):
        assert np.array_equal(problem.params["W1"], edge.params["W1"])
    z = network.forward(SPEC, generic.params, generic.x).z
    assert all(np.all(v != 0) for v in z.values())
    assert np.max(np.abs(generic.params["b2"])) < 1
    assert np.any(network.forward(SPEC, edge.params, edge.x).z["layer1"] == 0)
    assert np.min(edge.params[f"b{SPEC.depth}"]) > 999


@pytest.mark.parametrize(("name", "code"), [("faulty_relu_zero", "relu-at-zero"),
                                            ("faulty_softmax_overflow", "softmax-overflow")])
def test_a_robustness_finding_is_a_warning_by_default(name, code, tmp_path, capsys):
    exit_code, result = verify(name, tmp_path)
    out = capsys.readouterr().out
    assert exit_code == 0, out
    assert result["status"] == "pass" and result["diagnosis"] == []
    edges = result["edge_cases"]
    assert edges["mode"] == "warn" and edges["status"] == "warn"
    assert [(f["code"], f["severity"]) for f in edges["findings"]] == [(code, "warning")]
    assert f"edge cases: warning {code}:" in out
    assert "the math, on a generic batch" in out


def test_relu_at_zero_is_called_a_valid_subgradient(tmp_path, capsys):
    _, result = verify("faulty_relu_zero", tmp_path)
    capsys.readouterr()
    assert "a valid subgradient" in result["edge_cases"]["findings"][0]["detail"]


def test_edge_cases_fail_makes_a_finding_fail(tmp_path, capsys):
    exit_code, result = verify("faulty_relu_zero", tmp_path, "--edge-cases", "fail")
    out = capsys.readouterr().out
    assert exit_code == 1
    assert result["status"] == "fail" and result["diagnosis"][0]["code"] == "relu-at-zero"
    assert result["edge_cases"]["findings"][0]["severity"] == "failure"
    assert "edge cases: FAILURE relu-at-zero" in out


def test_the_declaration_can_ask_for_relu_derivative_zero(tmp_path, capsys):
    exit_code, result = verify("faulty_relu_zero", tmp_path, "--adapter", '{"relu_at_zero": 0}')
    capsys.readouterr()
    assert exit_code == 1 and result["edge_cases"]["status"] == "fail"
    # the softmax overflow is no convention: it stays a warning under the same declaration
    exit_code, result = verify("faulty_softmax_overflow", tmp_path, "--adapter",
                               '{"relu_at_zero": 0}')
    capsys.readouterr()
    assert exit_code == 0 and result["edge_cases"]["status"] == "warn"


def test_a_bad_relu_convention_is_a_declaration_error(tmp_path, capsys):
    code = main(["verify", str(EXAMPLES / "faulty_relu_zero.py"), "--backends", "none",
                 "--adapter", '{"relu_at_zero": 1}'])
    assert code == 2 and "relu_at_zero must be" in capsys.readouterr().err


def test_edge_cases_off_and_not_judged(tmp_path, capsys):
    exit_code, result = verify("faulty_relu_zero", tmp_path, "--edge-cases", "off")
    assert exit_code == 0 and result["edge_cases"]["status"] == "off"
    exit_code, result = verify("faulty_sign", tmp_path)
    out = capsys.readouterr().out
    assert exit_code == 1 and result["edge_cases"]["status"] == "not judged"
    assert "edge cases: not judged (the math did not pass" in out
    exit_code, result = verify("correct_momentum", tmp_path)
    capsys.readouterr()
    assert exit_code == 0 and result["edge_cases"]["status"] == "pass"


def test_a_folder_run_prints_one_summary_line(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("correct_layers", "faulty_relu_zero", "faulty_sign"):
        (folder / f"{name}.py").write_text((EXAMPLES / f"{name}.py").read_text())
    (folder / "empty.py").write_text("x = 1\n")
    code = main(["verify", str(folder)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert len(out) == 5 and out[-1].startswith(
        "graded 4 files: 2 passed, 1 failed, 1 error(s); 1 with edge-case warnings in ")
    assert out[2].endswith("edge cases: relu-at-zero (warning)")  # sorted: empty.py second


def test_the_l2_factor_of_the_loss_reads_well():
    problem = make_problem(SPEC, seed=3)
    reference = reference_tensors(problem)
    plain = reference_tensors(problem, with_spec(SPEC.with_(weight_decay=0)))
    user = dict(reference)
    user[("loss", "loss")] = 2 * reference[("loss", "loss")] - plain[("loss", "loss")]
    first = first_divergence(compare_all(user, reference, tolerance(SPEC.dtype)))
    found = diagnose(Context(problem, reference, user), first)
    assert found is not None and found.code == "l2-factor"
    assert found.detail.startswith("Your loss carries c/2 * sum(W^2)")
