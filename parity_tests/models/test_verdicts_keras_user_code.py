"""A Keras model file's exit or exception in its layers, loss or optimiser is an error naming the
file (exit 2, no report), as for torch (test_verdicts_user_code.py)."""

from __future__ import annotations

import pytest

from nnparity.cli import main

pytestmark = pytest.mark.tensorflow

MODEL = """
import sys
import keras

class Act(keras.layers.Layer):
    calls = 0

    def call(self, x):
        Act.calls += 1
        if Act.calls > LIMIT:
            sys.exit(0)
        return keras.activations.tanh(x)

NNPARITY_LAYERS = {"Act": "tanh"}

def build():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), Act(),
                             keras.layers.Dense(2)])
"""


@pytest.mark.parametrize(("limit", "phrase"), [
    (0, "build: calling it raised SystemExit: 0"),  # Sequential calls the layer when built
    (3, "build: the model raised SystemExit on an input of shape"),
], ids=["in-the-builder", "while-checking"])
def test_an_exit_in_a_keras_layer_is_an_error_naming_the_file(tmp_path, capsys, limit, phrase):
    path = tmp_path / "keras_model.py"
    path.write_text(MODEL.replace("LIMIT", str(limit)))
    report = tmp_path / "r.json"
    assert main(["check", "--loss", "ce", "--model-file", f"{path}:build",
                 "--json", str(report)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{phrase}" in err
    assert err.count("\n") == 1 and not report.exists()
