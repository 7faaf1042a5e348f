"""``--input-scale``: image pixels divided by D, recorded in presets and checkpoints."""

import numpy as np
import pytest

from nnparity.cli import main
from nnparity.datasets.split import Split
from nnparity.errors import InputError
from nnparity.files.weights import load_weights, save_weights
from nnparity.reference import MLPSpec
from nnparity.training.presets import preset
from nnparity.training.run import TrainConfig, batch_preparer, run_training


def _images() -> Split:
    x = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3) * 20
    return Split(x, np.array([0, 1]), x, np.array([0, 1]))


@pytest.mark.parametrize("scale", [255.0, 1.0, 127.5])
def test_pixels_are_divided_by_the_input_scale(scale):
    spec = MLPSpec(6, (2,), ("identity",), dtype="float32")
    out = batch_preparer(_images(), spec, scale)(_images().x_train)
    assert out.shape == (2, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out, _images().x_train.reshape(2, 6).astype(np.float32)
                                  / np.float32(scale))


def test_default_scale_is_255_and_the_blog_preset_feeds_raw_pixels():
    assert TrainConfig().input_scale == 255.0
    assert preset("seed003-mnist")["input_scale"] == 1.0
    assert "input_scale" not in preset("seed000-mnist-sigmoid")


def test_non_positive_scale_is_refused(capsys):
    assert main(["train", "--preset", "seed000-iris", "--epochs", "1", "--input-scale", "0"]) == 2
    assert "--input-scale must be positive, got 0" in capsys.readouterr().err


def _iris(epochs: int, scale: float) -> TrainConfig:
    return TrainConfig.from_dict({**preset("seed000-iris"), "epochs": epochs,
                                  "input_scale": scale})


def test_checkpoint_records_the_scale_and_resume_refuses_another(tmp_path):
    ckpt = str(tmp_path / "ckpt.npz")
    run_training(_iris(1, 1.0), checkpoint=ckpt)
    assert load_weights(ckpt).meta["config"]["input_scale"] == 1.0
    with pytest.raises(InputError, match="--input-scale 1, this run uses 255"):
        run_training(_iris(2, 255.0), resume=ckpt)
    assert [r.epoch for r in run_training(_iris(2, 1.0), resume=ckpt).history.epochs] == [2]


def test_checkpoint_without_a_scale_loads_as_255(tmp_path):
    ckpt = str(tmp_path / "old.npz")
    run_training(_iris(1, 255.0), checkpoint=ckpt)
    saved = load_weights(ckpt)
    del saved.meta["config"]["input_scale"]  # as written before the setting existed
    save_weights(ckpt, saved.spec, saved.params, saved.state, meta=saved.meta)
    assert len(run_training(_iris(2, 255.0), resume=ckpt).history.epochs) == 1
    with pytest.raises(InputError, match="--input-scale 255, this run uses 1"):
        run_training(_iris(2, 1.0), resume=ckpt)
