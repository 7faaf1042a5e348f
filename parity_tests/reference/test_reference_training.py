"""Training with the reference reproduces the source documents' small results."""

import numpy as np
import pytest

from nnparity.reference.train import minibatches
from nnparity.training.presets import preset
from nnparity.training.run import TrainConfig, run_training


def test_seed000_iris_reaches_93_percent_for_4_of_5_seeds():
    accuracies = []
    for seed in range(5):
        config = TrainConfig.from_dict({**preset("seed000-iris"), "seed": seed})
        result = run_training(config)
        accuracies.append(1 - result.history.epochs[-1].test_error)
    assert sum(a >= 0.93 for a in accuracies) >= 4, accuracies


def test_seed003_xor_twonet_reaches_100_percent():
    result = run_training(TrainConfig.from_dict(preset("seed003-xor")))
    assert result.history.epochs[-1].train_error == 0.0


def test_seed001_linear_regression_recovers_the_coefficients():
    result = run_training(TrainConfig.from_dict(preset("seed001-linreg")))
    intercept = result.params["b1"][0, 0]
    slopes = result.params["W1"][:, 0]
    np.testing.assert_allclose([intercept, *slopes], [1.5, 2.0, 5.0], atol=0.3)


def test_training_is_deterministic_for_a_seed():
    config = TrainConfig.from_dict({**preset("seed000-iris"), "epochs": 5})
    a, b = run_training(config), run_training(config)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_epoch_sampling_drops_the_last_partial_batch():
    batches = list(minibatches(10, 3, np.random.default_rng(0), "epoch"))
    assert len(batches) == 3 and all(len(b) == 3 for b in batches)
    assert len(set(np.concatenate(batches))) == 9


def test_replacement_sampling_draws_n_over_batch_batches():
    batches = list(minibatches(10, 3, np.random.default_rng(0), "replacement"))
    assert len(batches) == 3 and all(len(b) == 3 for b in batches)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_resume_from_checkpoint_continues_exactly(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors", reason="safetensors is not installed")
    ckpt = str(tmp_path / f"ckpt{suffix}")
    config = TrainConfig.from_dict({**preset("seed000-iris"), "epochs": 6,
                                    "optimizer": "adam", "lr": 0.01})
    full = run_training(config)
    run_training(TrainConfig.from_dict({**preset("seed000-iris"), "epochs": 3,
                                        "optimizer": "adam", "lr": 0.01}), checkpoint=ckpt)
    resumed = run_training(config, resume=ckpt)
    assert [r.epoch for r in resumed.history.epochs] == [4, 5, 6]
    for k in full.params:
        np.testing.assert_array_equal(full.params[k], resumed.params[k])


def test_steps_stop_the_run_inside_an_epoch():
    seen = []
    config = TrainConfig.from_dict({**preset("seed000-iris"), "epochs": 5, "steps": 60})
    result = run_training(config, on_step=lambda trainer, step, x, y: seen.append(step))
    assert seen == list(range(60))  # 25 steps an epoch: two epochs and 10 steps of the third
    assert [r.epoch for r in result.history.epochs] == [1, 2, 3]
