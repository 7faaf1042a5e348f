"""A learner's result judged in the learner's own terms: a missing or misnamed tensor fails the
submission at its stage (the report written), shapes are told as declared, and the sandbox
warning is printed once per run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from nnparity.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"


def _variant(tmp_path: Path, example: str, old: str, new: str, name: str) -> Path:
    source = (EXAMPLES / f"{example}.py").read_text()
    assert old in source
    target = tmp_path / name
    target.write_text(source.replace(old, new))
    return target


def _yours(report: Path, name: str) -> dict:
    return json.loads(report.read_text())["cases"][name]["backends"]["yours"]


def test_a_missing_gradient_key_fails_at_its_stage_with_the_report(tmp_path, capsys):
    path = _variant(tmp_path, "correct_class_gradient", "grads['b1'] = np.sum(dz1, axis=0)",
                    "grads['bias1'] = np.sum(dz1, axis=0)", "misnamed.py")
    report = tmp_path / "r.json"
    code = main(["verify", str(path), "--backends", "none", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 1, out
    yours = _yours(report, "misnamed.py")
    assert yours["status"] == "fail"
    failing = [(c["stage"], c["name"], c["note"]) for c in yours["comparisons"] if not c["passed"]]
    assert failing == [("grad", "b1", "not in your result")]
    assert "grad of b1 differs (not in your result" in yours["first_divergence"]
    assert any("KeyError: 'b1'" in w for w in yours["warnings"])
    assert "diagnosis: your result has no such tensor" in out


def test_a_declaration_error_stays_exit_2(tmp_path, capsys):
    code = main(["verify", str(EXAMPLES / "correct_class_gradient.py"), "--backends", "none",
                 "--adapter", '{"layout": "diagonal"}'])
    assert code == 2 and "layout must be one of" in capsys.readouterr().err


def test_shapes_are_told_as_declared(tmp_path, capsys):
    path = _variant(tmp_path, "correct_class_gradient", "grads['b1'] = np.sum(dz1, axis=0)",
                    "grads['b1'] = 0.0", "scalar_bias.py")
    report = tmp_path / "r.json"
    code = main(["verify", str(path), "--backends", "none", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 1
    first = next(c for c in _yours(report, "scalar_bias.py")["comparisons"] if not c["passed"])
    assert (first["name"], first["note"]) == ("b1", "shape () != (5,)")
    assert "(1, 1)" not in out and "(1, 5)" not in out
    assert "has shape (); your declaration's layout asks for (5,)" in out


def test_the_sandbox_warning_is_printed_once_per_run(tmp_path):
    folder = tmp_path / "class" / "sub"
    folder.mkdir(parents=True)
    for name in ("correct_layers", "correct_momentum", "faulty_sign"):
        (folder / f"{name}.py").write_text((EXAMPLES / f"{name}.py").read_text())
    driver = ("import sys\nfrom nnparity.verify import sandbox\n"
              "sandbox.bwrap_works = lambda: 'bubblewrap set aside by the test'\n"
              "from nnparity.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    run = subprocess.run([sys.executable, "-c", driver, "verify", str(folder), "--sandbox",
                          "off"], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 1, run.stderr
    assert run.stderr.count("warning: --sandbox off") == 1, run.stderr
    assert run.stdout.count("graded 3 files") == 1 and " failed (" not in run.stdout


def test_where_they_differ_most_is_indexed_as_declared(tmp_path, capsys):
    path = _variant(tmp_path, "correct_class_gradient", "grads['b1'] = np.sum(dz1, axis=0)",
                    "grads['b1'] = np.sum(dz1, axis=0) + 0.01 * np.arange(5)", "odd_bias.py")
    report = tmp_path / "r.json"
    assert main(["verify", str(path), "--backends", "none", "--json", str(report)]) == 1
    out = capsys.readouterr().out
    worst = _yours(report, "odd_bias.py")["worst_elements"]
    assert [w["index"] for w in worst] == [[4], [3], [2]]  # the flat bias (5,), not (1, 5)
    assert "at (4,): yours" in out


def test_learner_index_for_a_column_layout_and_reshaped_biases():
    from nnparity.verify.session import learner_index

    assert learner_index([1, 2], (3, 3), (3, 3), "column") == [2, 1]  # square, transposed
    assert learner_index([1, 2], (3, 3), (3, 3), "row") == [1, 2]
    assert learner_index([0, 2], (1, 4), (4, 1), "column") == [2, 0]
    assert learner_index([0, 2], (1, 4), (4,), "row") == [2]
