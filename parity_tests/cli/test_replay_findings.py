"""Bad inputs a hostile replay of the CLI found after the first round of fixes: each is one line
and exit 2, never a traceback."""

from __future__ import annotations

import pytest

from nnparity.cli import main


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1, err
    return errors[0]


def test_bench_rows_below_one_batch_is_refused(capsys):
    line = _one_line_error(capsys, ["bench", "--backends", "numpy", "--rows", "200"])
    assert "--rows 200" in line and "256" in line


@pytest.mark.parametrize("value", ["3", "[1, 2]", "'text'", "None"])
def test_a_declaration_that_is_not_a_dict_is_refused(tmp_path, capsys, value):
    learner = tmp_path / "learner.py"
    learner.write_text(f"NNPARITY = {value}\n")
    line = _one_line_error(capsys, ["verify", "--backends", "none", str(learner)])
    assert f"{learner}:1: NNPARITY must be a literal dict" in line


KERAS_NAN = """
import numpy as np
import keras


def build():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dense(3)])
    kernel, bias = model.layers[0].get_weights()
    model.layers[0].set_weights([np.full_like(kernel, np.nan), bias])
    return {"model": model, "loss": "ce"}
"""


def test_a_keras_model_with_nan_weights_fails_as_non_finite(tmp_path, capsys):
    pytest.importorskip("tensorflow", reason="needs TensorFlow/Keras")
    model = tmp_path / "keras_nan.py"
    model.write_text(KERAS_NAN)
    assert main(["check", "--model-file", f"{model}:build"]) == 1
    out = capsys.readouterr().out
    assert "non-finite: NaN in z.layer1 on both sides" in out


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path, capsys):
    assert main(["--debug", "export", "--framework", "numpy", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("nnparity export: error: ")
