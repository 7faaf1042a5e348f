"""``nnparity verify`` on examples/verify: every correct file passes, every faulty file fails at
its exact first divergence with its diagnosis (one learner subprocess per file)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.verify.edges import ROBUSTNESS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"
CORRECT = ("correct_function_row", "correct_class_row", "correct_class_gradient",
           "correct_column", "correct_layers", "correct_layers_adam", "correct_momentum",
           "correct_adam", "correct_cnn_loops", "correct_cnn_im2col")
# file -> (stage, tensor) of the first divergence, diagnosis code
FAULTY = {
    # functions (the BP lecture's style)
    "faulty_sign": (("delta", "layer3"), "sign"),
    "faulty_softmax_overflow": (("loss", "loss"), "softmax-overflow"),
    "faulty_last_derivative": (("delta", "layer3"), "last-derivative"),
    "faulty_stale_weights": (("delta", "layer2"), "stale-weights"),
    "faulty_factor_two": (("loss", "loss"), "factor-two"),
    "faulty_derivative_on_h": (("delta", "layer2"), "derivative-on-h"),
    # classes with attributes (the NumPy blog, the three-framework notes)
    "faulty_sum_vs_mean": (("grad", "b2"), "sum-vs-mean"),
    "faulty_transposed": (("grad", "W2"), "transposed"),
    "faulty_bias_update": (("update", "step1.b2"), "bias-with-bias"),
    "faulty_relu_zero": (("delta", "layer1"), "relu-at-zero"),
    "faulty_l2_factor": (("grad", "W2"), "l2-factor"),
    "faulty_weight_decay_bias": (("grad", "b2"), "weight-decay-on-bias"),
    "faulty_weight_decay_missing": (("grad", "W2"), "weight-decay-missing"),
    # classes with layer objects (the DLFS book)
    "faulty_layers_bias_axis": (("grad", "b2"), "bias-axis"),
    "faulty_layers_derivative_on_z": (("grad", "b1"), "derivative-on-z"),
    "faulty_layers_transposed": (("grad", "W2"), "transposed"),
    # column layout (the Fashion-MNIST report)
    "faulty_column_bias_axis": (("grad", "b2"), "bias-axis"),
    "faulty_column_off_by_n": (("delta", "layer2"), "off-by-n"),
    # momentum
    "faulty_momentum_order": (("update", "step1.W1"), "momentum-order"),
    "faulty_momentum_average": (("update", "step1.W1"), "momentum-average"),
    "faulty_no_update": (("update", "step1.W1"), "no-update"),
    # Adam
    "faulty_adam_bias_correction": (("update", "step1.W1"), "adam-bias-correction"),
    "faulty_adam_epsilon": (("update", "step1.W1"), "adam-epsilon"),
}
CRASHING = {"faulty_layers_bias_axis": "ValueError",  # caught before the update crashes
            "faulty_layers_transposed": "ValueError"}


def verify(name: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / f"{name}.json"
    code = main(["verify", str(EXAMPLES / f"{name}.py"), "--backends", "none",
                 "--json", str(report), *extra])
    return code, json.loads(report.read_text())["cases"][f"{name}.py"]["backends"]["yours"]


@pytest.mark.parametrize("name", CORRECT)
def test_correct_examples_pass(name, tmp_path, capsys):
    code, result = verify(name, tmp_path)
    out = capsys.readouterr().out
    assert code == 0, out
    assert result["status"] == "pass" and result["diagnosis"] == []
    assert len(result["comparisons"]) >= 5
    assert "tensors you expose match the reference" in out


@pytest.mark.parametrize("name", sorted(FAULTY))
def test_faulty_examples_name_first_divergence_and_diagnosis(name, tmp_path, capsys):
    (stage, tensor), diagnosis = FAULTY[name]
    # an edge-case finding fails only when asked (test_grading_edges.py: a warning by default)
    strict = ("--edge-cases", "fail") if diagnosis in ROBUSTNESS else ()
    code, result = verify(name, tmp_path, *strict)
    out = capsys.readouterr().out
    assert code == 1, out
    first = next(c for c in result["comparisons"] if not c["passed"])
    assert (first["stage"], first["name"]) == (stage, tensor)
    what = "the loss" if stage == "loss" else f"{stage} of {tensor}"
    assert f"{what} differs" in result["first_divergence"]
    [found] = result["diagnosis"]
    assert found["code"] == diagnosis, out
    assert "first divergence: " in out and f"diagnosis: {found['title']}" in out
    assert "checked: " in out
    if name in CRASHING:
        assert f"then your code failed: {name}.py:" in out and CRASHING[name] in out
        assert f"then your code failed: {name}.py:" in result["first_divergence"]
        assert CRASHING[name] in result["reason"]


def test_every_diagnosis_has_a_faulty_example():
    from exercise_bugs import BUGS  # planted into the teaching page's exercises
    from planted_bugs import CNN, MLP  # the diagnoses shown by a bug planted into an example

    from nnparity.teach import residual_exercise
    from nnparity.teach.cnn_exercises import EXERCISES
    from nnparity.verify.diagnose import CODES, DESCRIPTIVE

    planted = {bug.code for bug in (*CNN.values(), *MLP.values(), *BUGS.values())} \
        | {exercise.diagnosis for exercise in (*EXERCISES, *residual_exercise.EXERCISES)}
    assert set(CODES) - set(DESCRIPTIVE) - {"probabilities"} == \
        {d for _, d in FAULTY.values()} | planted
    assert {p.stem for p in EXAMPLES.glob("*.py")} == set(CORRECT) | set(FAULTY)


def test_the_dlfs_loss_epsilon_is_a_note(tmp_path, capsys):
    code, result = verify("correct_layers", tmp_path)
    out = capsys.readouterr().out
    assert code == 0, out
    loss = next(c for c in result["comparisons"] if c["stage"] == "loss")
    assert loss["passed"] and loss["max_abs"] > 0
    assert "note: your loss computes log(p + 1e-07)" in out


def test_the_keras_rule_in_float64_is_a_note(tmp_path, capsys):
    code, result = verify("correct_layers_adam", tmp_path)
    out = capsys.readouterr().out
    assert code == 0, out
    notes = [c["note"] for c in result["comparisons"] if c["stage"] == "update"]
    assert len(notes) == 12 and "float64 hyperparameters" in notes
    assert "note: your update is the Keras rule with float64 hyperparameters" in out


def test_junit_report_carries_the_diagnosis(tmp_path, capsys):
    junit = tmp_path / "out.xml"
    code = main(["verify", str(EXAMPLES / "faulty_bias_update.py"), "--backends", "none",
                 "--junit", str(junit)])
    capsys.readouterr()
    assert code == 1
    failure = ET.parse(junit).getroot().find(".//testcase/failure")
    assert failure is not None and "update of step1.b2 differs" in failure.get("message", "")
    assert "diagnosis: bias updated with the bias instead of its gradient" in failure.text


@pytest.mark.torch
def test_framework_backends_are_shown_alongside(tmp_path, capsys):
    pytest.importorskip("torch")
    code, _ = verify("correct_class_gradient", tmp_path, "--backends", "torch")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Framework backends against the reference" in out and " torch " in out


def test_a_disagreeing_backend_is_noted_but_does_not_fail_the_learner(tmp_path, capsys,
                                                                      monkeypatch):
    from nnparity.backends import registry
    from nnparity.backends.numpy_backend import NumpyBackend

    class Skewed(NumpyBackend):
        name = "torch"

        def gradients(self, spec, params, x, y, *, dropout_mask=None):
            result = super().gradients(spec, params, x, y)
            result.grads = {k: 2 * v for k, v in result.grads.items()}
            return result

    monkeypatch.setattr(registry, "reason", lambda name: None)
    monkeypatch.setattr(registry, "get", lambda name: Skewed())
    code, result = verify("correct_class_gradient", tmp_path, "--backends", "torch")
    out = capsys.readouterr().out
    assert code == 0 and result["status"] == "pass"
    assert "note: torch disagrees with the reference" in out
