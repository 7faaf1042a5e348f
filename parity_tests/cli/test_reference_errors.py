"""Bad input gets a clear, one-line error: specs, labels, weight files, the command line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from nnparity.cli import main
from nnparity.files.weights import load_weights, save_weights
from nnparity.reference import MLPSpec, Optimizer, gradients, init_params
from nnparity.reference.losses import as_targets


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(activations=("sigmoid", "swish")), "unknown activation 'swish'"),
        (dict(layers=(), activations=()), "layers is empty"),
        (dict(layers=(4, 0), activations=("relu", "identity")), "layer 2 width must be"),
        (dict(layers=(4, -3), activations=("relu", "identity")), "layer 2 width must be"),
        (dict(input_dim=0), "input_dim must be a positive integer"),
        (dict(layers=(4, 1), loss="ce"), "'ce' needs an output width >= 2"),
        (dict(loss="bce"), "'bce' needs an output width of 1"),
        (dict(loss="hinge"), "unknown loss 'hinge'"),
        (dict(reduction="max"), "unknown reduction 'max'"),
        (dict(activations=("relu",)), "2 layers but 1 activations"),
        (dict(weight_decay=-1.0), "weight_decay must be >= 0"),
        (dict(dtype="float16"), "unknown dtype 'float16'"),
    ],
)
def test_spec_validation(kwargs, message):
    base = dict(input_dim=3, layers=(4, 2), activations=("relu", "identity"))
    with pytest.raises(ValueError, match=message):
        MLPSpec(**{**base, **kwargs})


def test_spec_json_round_trip_and_unknown_field():
    spec = MLPSpec(3, (4, 2), ("relu", "identity"), reduction="mean", weight_decay=1e-3)
    assert MLPSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="unknown spec field"):
        MLPSpec.from_dict({**spec.to_dict(), "momentum": 0.9})


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, 1, 3]), "class index 3 is outside 0..2"),
        (np.array([0, -1, 2]), "class index -1 is outside 0..2"),
        (np.zeros((3, 4)), r"labels of shape \(3, 4\) do not fit the output width 3"),
        (np.array([0, 1]), "labels have 2 rows but the batch has 3"),
        (np.array(["a", "b", "c"]), "labels must be numeric"),
    ],
)
def test_label_errors(labels, message):
    with pytest.raises(ValueError, match=message):
        as_targets("ce", labels, 3, 3, np.dtype("float64"))


def test_indices_and_one_hot_give_the_same_gradients():
    spec = MLPSpec(3, (4, 3), ("tanh", "identity"))
    p = init_params(spec, "xavier")
    x, y = np.random.default_rng(0).standard_normal((4, 3)), np.array([2, 0, 1, 2])
    a, b = gradients(spec, p, x, y), gradients(spec, p, x, np.eye(3)[y])
    assert a.loss == b.loss
    for k in a.grads:
        np.testing.assert_array_equal(a.grads[k], b.grads[k])


def test_input_and_param_shape_errors():
    spec = MLPSpec(3, (4, 2), ("relu", "identity"))
    p = init_params(spec)
    with pytest.raises(ValueError, match=r"input of shape \(2, 5\) does not fit input_dim 3"):
        gradients(spec, p, np.ones((2, 5)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"parameter W2 has shape \(2, 4\)"):
        gradients(spec, {**p, "W2": np.ones((2, 4))}, np.ones((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"missing \['b2'\]"):
        gradients(spec, {k: v for k, v in p.items() if k != "b2"}, np.ones((2, 3)), [0, 1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(name="rmsprop"), "unknown optimizer 'rmsprop'"),
        (dict(lr=0.0), "learning rate must be > 0"),
        (dict(variant="jax"), "unknown variant 'jax'"),
        (dict(momentum=1.5), "momentum must be in"),
    ],
)
def test_optimizer_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Optimizer(**kwargs)


def _spec_and_params():
    spec = MLPSpec(3, (4, 2), ("relu", "identity"))
    return spec, init_params(spec)


@pytest.mark.parametrize("name", ["w.npz", "w.safetensors"])
def test_weights_round_trip_with_state_and_meta(tmp_path, name):
    if name.endswith(".safetensors"):
        pytest.importorskip("safetensors", reason="safetensors is not installed")
    spec, params = _spec_and_params()
    path = tmp_path / name
    save_weights(path, spec, params, {"t": np.array(3)}, {"epoch": 3})
    loaded = load_weights(path)
    assert loaded.spec == spec and loaded.meta == {"epoch": 3}
    assert int(loaded.state["t"]) == 3
    for k in params:
        np.testing.assert_array_equal(loaded.params[k], params[k])
        assert loaded.params[k].dtype == params[k].dtype
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_safetensors_weights_are_refused_with_a_one_line_error_when_unreadable(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"broken\.safetensors: not a readable \.safetensors file"):
        load_weights(path)


def _write_raw(path, spec, arrays):
    np.savez(path, spec=np.array(spec.to_json()), meta=np.array("{}"), **arrays)


def test_weights_refuse_object_arrays(tmp_path):
    spec, params = _spec_and_params()
    path = tmp_path / "evil.npz"
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays["param/W1"] = np.array([{"payload": 1}], dtype=object)
    _write_raw(path, spec, arrays)
    with pytest.raises(ValueError, match="param/W1' holds Python objects; refusing to unpickle"):
        load_weights(path)


def test_weights_refuse_wrong_names_and_shapes(tmp_path):
    spec, params = _spec_and_params()
    path = tmp_path / "names.npz"
    _write_raw(path, spec, {f"param/{k.lower()}": v for k, v in params.items()})
    with pytest.raises(ValueError, match="parameter names do not match the spec"):
        load_weights(path)
    path = tmp_path / "shape.npz"
    _write_raw(path, spec, {**{f"param/{k}": v for k, v in params.items()},
                            "param/W2": np.ones((2, 4))})
    with pytest.raises(ValueError, match=r"W2 has shape \(2, 4\), the spec needs \(4, 2\)"):
        load_weights(path)


def test_weights_refuse_non_npz_and_missing_files(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz"):
        load_weights(path)
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        load_weights(tmp_path / "absent.npz")


def test_failed_save_leaves_nothing_behind(tmp_path):
    spec, params = _spec_and_params()
    with pytest.raises(TypeError):
        save_weights(tmp_path / "w.npz", spec, params, meta={"bad": object()})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["train", "--layers", "3,x"], 2, "expected comma-separated integers"),
        (["train", "--dataset", "cifar"], 2, "unknown dataset 'cifar'"),
        (["train", "--layers", "5,3", "--activations", "relu"], 2, "2 layers but 1 activations"),
        (["train", "--epochs", "0"], 2, "--epochs must be positive"),
        (["train", "--backend", "mxnet"], 2, "unknown backend 'mxnet'"),
        (["train", "--resume", "/nonexistent/x.npz"], 2, "no such weights file"),
        (["gradcheck", "--activations", "swish,identity"], 2, "unknown activation 'swish'"),
        (["gradcheck", "--loss", "ce", "--layers", "4,1"], 2, "needs an output width >= 2"),
        (["nosuchcommand"], 2, "invalid choice"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, code, message, capsys):
    try:
        result = main(argv)
    except SystemExit as exc:  # argparse usage errors
        result = exc.code
    err = capsys.readouterr().err
    assert result == code
    assert message in err
    assert "Traceback" not in err


def test_diverging_training_stops_with_exit_1_and_one_line():
    # A subprocess, so that Python's own warning output reaches stderr (pytest captures it).
    proc = subprocess.run(
        [sys.executable, "-m", "nnparity", "train", "--preset", "seed000-iris", "--lr", "1e4",
         "--loss", "l2", "--activations", "relu,relu,identity", "--init", "he"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "warning: epoch 1: loss 3.30906e+304 is over 1000x the starting loss 77.2057: diverging "
        "(lower --lr)",
        "nnparity train: error: loss became inf at epoch 2, step 1: lower the learning rate "
        "or change the initialisation"]


def test_cli_gradcheck_passes_and_train_writes_files(tmp_path, capsys):
    assert main(["gradcheck", "--layers", "6,3", "--activations", "sigmoid,identity"]) == 0
    assert "6 passed, 0 failed" not in capsys.readouterr().out  # 2 layers -> 4 tensors
    metrics, weights = tmp_path / "m.csv", tmp_path / "w.npz"
    argv = ["train", "--preset", "seed000-iris", "--epochs", "3", "--metrics", str(metrics),
            "--save", str(weights)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "epoch     3/3" in out and "final test accuracy" in out
    assert metrics.read_text().splitlines()[0] == "epoch,loss,train_error,test_error,seconds"
    assert load_weights(weights).spec.layers == (20, 20, 3)


def test_python_dash_m_and_json_metrics(tmp_path):
    metrics = tmp_path / "m.json"
    proc = subprocess.run(
        [sys.executable, "-m", "nnparity", "train", "--dataset", "xor", "--layers", "6,2",
         "--activations", "relu,identity", "--init", "seed003", "--epochs", "2", "--batch", "4",
         "--metrics", str(metrics)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(metrics.read_text())["epochs"]) == 2
