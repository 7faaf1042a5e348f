"""The learner's code fails in every way a learner's code can: each gives a clear message that
points at the user's file (and line), the right exit code, and never a tool traceback."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from nnparity.cli import main

GOOD = """\
import numpy as np

NNPARITY = {
    "spec": {"input_dim": 3, "layers": [4, 2], "activations": ["tanh", "identity"],
             "loss": "l2", "reduction": "sum"},
    "forward": "forward(x, W1, b1, W2, b2)",
    "z": "out[{i}]",
    "backward": "backward(x, y, W1, b1, W2, b2)",
    "dW": "back['dW{l}']",
    ADAPTER_EXTRA
}


def forward(x, W1, b1, W2, b2):
    z1 = x @ W1 + b1
    z2 = np.tanh(z1) @ W2 + b2
    return [z1, z2]


def backward(x, y, W1, b1, W2, b2):
    z1 = x @ W1 + b1
    z2 = np.tanh(z1) @ W2 + b2
    d2 = z2 - y
    d1 = (d2 @ W2.T) * (1 - np.tanh(z1) ** 2)
    return {"dW2": np.tanh(z1).T @ d2, "dW1": x.T @ d1}
"""


def write(tmp_path: Path, source: str, extra: str = "", **replace: str) -> Path:
    text = GOOD.replace("ADAPTER_EXTRA", extra)
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "my_net.py"
    path.write_text(text + textwrap.dedent(source))
    return path


def run(path: Path, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["verify", str(path), "--backends", "none", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_the_base_file_passes(tmp_path, capsys):
    code, out, _ = run(write(tmp_path, ""), capsys)
    assert code == 0, out


def test_exception_points_at_the_users_line(tmp_path, capsys):
    path = write(tmp_path, "", **{"    d2 = z2 - y": "    d2 = z2 - y[:, :1] @ np.ones((3, 2))"})
    code, out, _ = run(path, capsys)
    assert code == 1
    assert f"my_net.py:{line_of(path, 'd2 = z2')} in backward" in out
    assert "ValueError" in out and "Traceback" not in out


def test_endless_loop_times_out(tmp_path, capsys):
    path = write(tmp_path, "", **{"    return [z1, z2]": "    while True:\n        pass"})
    code, out, _ = run(path, capsys, "--timeout", "1")
    assert code == 1
    assert "did not finish within 1 s" in out


def test_nan_is_reported_as_a_failed_check(tmp_path, capsys):
    path = write(tmp_path, "", **{"    return [z1, z2]": "    return [z1 * np.nan, z2]"})
    code, out, _ = run(path, capsys)
    assert code == 1
    assert ("forward of z.layer1 differs (non-finite: NaN in z.layer1 in your result "
            "only)") in out
    assert "diagnosis: NaN or inf in your result" in out


def test_wrong_shape_is_reported_with_both_shapes(tmp_path, capsys):
    path = write(tmp_path, "", **{"    return [z1, z2]": "    return [z1.ravel(), z2]"})
    code, out, _ = run(path, capsys)
    assert code == 1
    assert "shape (20,) != (5, 4)" in out and "diagnosis: wrong shape" in out


def test_missing_name_fails_the_submission_at_its_stage(tmp_path, capsys):
    """A tensor the learner's result lacks is the submission's failure there, not exit 2
    (test_grading_results.py has the JSON side)."""
    path = write(tmp_path, "", **{'"dW": "back[\'dW{l}\']",': '"dW": "back[\'grad{l}\']",'})
    code, out, err = run(path, capsys)
    assert code == 1 and "Traceback" not in err
    assert "differs (not in your result)" in out
    assert "NNPARITY['dW'] for layer 1" in out and "KeyError" in out


def test_missing_function_is_an_adapter_error(tmp_path, capsys):
    path = write(tmp_path, "", **{'"forward": "forward(': '"forward": "fead_forward('})
    code, _, err = run(path, capsys)
    assert code == 2 and "NameError" in err and "fead_forward" in err


@pytest.mark.parametrize("source, message", [
    ("raise RuntimeError('boom')\n", "importing the file raised RuntimeError: boom"),
    ("import sys\nsys.exit(3)\n", "called exit(3) while being imported"),
])
def test_failures_on_import(tmp_path, capsys, source, message):
    code, out, _ = run(write(tmp_path, source), capsys)
    assert code == 1 and message in out


def test_a_crash_of_the_process_is_reported(tmp_path, capsys):
    path = write(tmp_path, "", **{"    return [z1, z2]": "    import os; os._exit(7)"})
    code, out, _ = run(path, capsys)
    assert code == 1 and "ended with status 7" in out


@pytest.mark.parametrize("extra, replace, message", [
    ('"colour": "red",', {}, "unknown NNPARITY key(s) 'colour'"),
    ('"layout": "diagonal",', {}, "layout must be one of row, column"),
    ('"delta": "out",', {}, "names one thing for 2 layers"),
    ('"h": ["out[0]"],', {}, "lists 1 expressions for 2 layers"),
    ("", {'"z": "out[{i}]",': '"z": "out[{i}",'}, "is not a Python expression"),
    ("", {'"loss": "l2"': '"loss": "hinge"'}, "invalid spec: unknown loss 'hinge'"),
    ("", {"NNPARITY = {": "NNPARITY = {'lr': 0.1 * 2, "}, "must be a literal dict"),
    ('"optimizer": {"name": "nesterov"},', {}, "optimizer: unknown optimizer 'nesterov'"),
    ('"optimizer": {"name": "adam", "gamma": 1},', {}, "unknown optimizer key(s) 'gamma'"),
    ('"optimizer": {"name": "adam", "lr": 0.01}, "lr": 0.1,', {}, "differ: give one"),
    ('"steps": 0,', {}, "steps must be a whole number from 1 to 100"),
])
def test_bad_declarations_exit_2_without_running_the_code(tmp_path, capsys, extra, replace,
                                                          message):
    path = write(tmp_path, "raise SystemExit('must not run')\n", extra, **replace)
    code, _, err = run(path, capsys)
    assert code == 2 and message in err, err


def test_no_declaration_and_not_python(tmp_path, capsys):
    plain = tmp_path / "plain.py"
    plain.write_text("x = 1\n")
    code, _, err = run(plain, capsys)
    assert code == 2 and "no NNPARITY declaration" in err
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    code, _, err = run(broken, capsys)
    assert code == 2 and "broken.py:1: syntax error" in err


def test_adapter_and_spec_from_the_command_line(tmp_path, capsys):
    path = write(tmp_path, "")
    text = path.read_text()
    start, end = text.index("NNPARITY = {"), text.index("}\n\n\ndef forward")
    declaration = text[start + len("NNPARITY = "):end + 1]
    path.write_text(text[:start] + text[end + 2:])
    import ast

    adapter = ast.literal_eval(declaration)
    spec = adapter.pop("spec")
    code, out, err = run(path, capsys, "--adapter", json.dumps(adapter),
                         "--spec", json.dumps(spec))
    assert code == 0, out + err


@pytest.mark.parametrize("where", ["model.params['{key}{l}']", "model.layers['Affine{l}'].{key}"])
def test_layer_objects_take_the_weights_through_either_name(tmp_path, capsys, where):
    """The DLFS book's net keeps its weights in params, shared with its Affine layers: loading
    through either name reaches both (in place)."""
    examples = Path(__file__).resolve().parents[2] / "examples" / "verify"
    adapter = {"W": where.format(key="W", l="{l}"), "b": where.format(key="b", l="{l}")}
    code = main(["verify", str(examples / "correct_layers.py"), "--backends", "none",
                 "--adapter", json.dumps(adapter)])
    out = capsys.readouterr().out
    assert code == 0, out
