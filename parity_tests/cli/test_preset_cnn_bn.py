"""The ``seed002-cnn-bn`` preset (beyond the source documents: the notes' CNN with a batchnorm
after each convolution) and ``variance: native``, which lets every backend train it: each
batchnorm keeps its framework's running-variance estimator (torch's unbiased, the others'
biased). The slow test trains the preset's 1000 steps on MNIST on all four backends and holds
their test accuracies within 0.2 pp of each other."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnparity.backends import registry
from nnparity.cli import main
from nnparity.commands.train import add_arguments, config_from_args
from nnparity.reference.family import spec_from_dict
from nnparity.training.presets import preset
from nnparity.training.run import with_variance

IRIS_BN = {"input_shape": [4], "loss": "ce", "reduction": "mean", "init": "he",
           "net": [{"kind": "dense", "units": 8, "use_bias": False},
                   {"kind": "batchnorm", "momentum": 0.9}, {"kind": "relu"},
                   {"kind": "residual", "net": [
                       {"kind": "dense", "units": 8, "use_bias": False},
                       {"kind": "batchnorm"}, {"kind": "tanh"}]},
                   {"kind": "dense", "units": 3}]}


def _variances(spec: dict) -> list[str]:
    """Every batchnorm's estimator in the built spec, residual blocks' included."""
    def walk(layers) -> list[str]:
        return [v for layer in layers for v in (
            [layer.variance] if layer.kind == "batchnorm"
            else walk(layer.net) if layer.kind == "residual" else [])]
    return walk(spec_from_dict(spec).net)


def test_the_preset_is_the_notes_cnn_with_a_batchnorm_before_each_conv_relu() -> None:
    net = spec_from_dict(preset("seed002-cnn-bn")["spec"]).net
    kinds = [layer.kind for layer in net]
    assert kinds == ["conv2d", "batchnorm", "relu", "maxpool"] * 2 + [
        "flatten", "dense", "relu", "dropout", "dense"]
    assert [layer.filters for layer in net if layer.kind == "conv2d"] == [32, 64]


def test_dtype_reaches_the_presets_spec_and_leaves_the_preset_as_it_was() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(["--preset", "seed002-cnn-bn",
                                                 "--dtype", "float64"]))
    assert config.spec["dtype"] == "float64"
    assert preset("seed002-cnn-bn")["spec"]["dtype"] == "float32"


@pytest.mark.parametrize(("backend", "expected"), [
    ("numpy", "biased"), ("torch", "unbiased"), ("tensorflow", "biased"), ("jax", "biased")])
def test_native_variance_is_the_backends_own(backend: str, expected: str) -> None:
    if registry.reason(backend):
        pytest.skip(registry.reason(backend))
    assert _variances(with_variance(IRIS_BN, "native", backend)) == [expected, expected]
    assert _variances(with_variance(IRIS_BN, "unbiased", backend)) == ["unbiased"] * 2
    assert with_variance(IRIS_BN, None, backend) is IRIS_BN


@pytest.mark.parametrize("backend", [pytest.param("torch", marks=pytest.mark.torch),
                                     pytest.param("tensorflow", marks=pytest.mark.tensorflow)])
def test_train_with_native_variance_on_a_one_estimator_framework(backend: str, tmp_path: Path,
                                                                 capsys) -> None:
    """torch keeps only the unbiased running variance, Keras only the biased one: ``native``
    trains on both; the other estimator is refused in one line, exit 2."""
    if registry.reason(backend):
        pytest.skip(registry.reason(backend))
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps(IRIS_BN))
    common = ["train", "--spec", str(spec), "--dataset", "iris", "--optimizer", "adam",
              "--lr", "0.01", "--batch", "10", "--epochs", "1", "--backend", backend]
    assert main([*common, "--variance", "native"]) == 0, capsys.readouterr().err
    other = "biased" if backend == "torch" else "unbiased"
    capsys.readouterr()
    assert main([*common, "--variance", other]) == 2
    err = capsys.readouterr().err
    assert f"asks for variance '{other}'" in err and "Traceback" not in err


# Each backend trains in a child process (as test_reproduce_every_backend.py does): the
# frameworks' compiled programs die with it.
CHILD = """
import json, sys
from nnparity.training.reproduce import ROWS, run_seed
row = next(r for r in ROWS if r.preset == "seed002-cnn-bn")
run = run_seed(row, 0, sys.argv[1], quick=False, data_dir=None)
print(json.dumps({"accuracy": run.accuracy, "seconds": run.seconds}))
"""
BACKENDS = ("numpy", "torch", "tensorflow", "jax")
AGREEMENT_PP = 0.2
WELL_ABOVE_CHANCE = 90.0  # percent; chance is 10 %


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.data
def test_the_four_backends_agree_after_1000_steps(need_dataset) -> None:
    """Tens of CPU-minutes (NumPy alone about 20): deselected by default (``-m long``)."""
    need_dataset("mnist")
    for name in BACKENDS:
        if registry.reason(name):
            pytest.skip(f"{name}: {registry.reason(name)}")
    runs = {}
    for name in BACKENDS:
        done = subprocess.run([sys.executable, "-c", CHILD, name], capture_output=True,
                              text=True, timeout=3600)
        assert done.returncode == 0, f"{name}: {done.stderr[-2000:]}"
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
    shown = ", ".join(f"{n} {r['accuracy']:.2f} % ({r['seconds']:.0f} s)" for n, r in runs.items())
    print(f"seed002-cnn-bn, 1000 steps: {shown}")
    accuracies = [r["accuracy"] for r in runs.values()]
    assert min(accuracies) > WELL_ABOVE_CHANCE, shown
    assert max(accuracies) - min(accuracies) <= AGREEMENT_PP, shown
