"""``--device`` and float32 precision on GPU: refusals here, the TF32 explanation, and the GPU
runs (marked ``gpu``: skipped with the reason where there is no CUDA device, as in CI)."""

from __future__ import annotations

import pytest

from nnparity.backends import registry
from nnparity.backends.precision import TF32_ROUNDOFF, check_device, precision_flags, tf32_note
from nnparity.cli import main
from nnparity.parity import cases
from nnparity.parity.runner import run_case


def test_tf32_note_explains_only_float32_failures_of_tf32_size_when_tf32_was_allowed():
    assert tf32_note("float32", 3.3e-4, allow_tf32=True).startswith("the size of TF32 rounding")
    assert tf32_note("float32", 3.3e-4, allow_tf32=False) is None
    assert tf32_note("float64", 3.3e-4, allow_tf32=True) is None
    assert tf32_note("float32", 0.66, allow_tf32=True) is None  # far beyond TF32 rounding
    assert TF32_ROUNDOFF == 2.0**-11


def test_unknown_device_and_cpu_only_backends_are_refused():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        check_device("torch", "tpu")
    with pytest.raises(ValueError, match="runs on cpu only, not cuda"):
        registry.get("numpy").on("cuda")


@pytest.mark.torch
def test_cuda_without_a_cuda_device_exits_2_with_one_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the refusal without a CUDA device; this machine has one "
                    "(the GPU tests run instead)")
    assert main(["check", "--quick", "--device", "cuda"]) == 2
    assert "torch sees no CUDA device" in capsys.readouterr().err


@pytest.mark.torch
def test_the_report_environment_records_every_precision_flag(tmp_path):
    out = tmp_path / "r.json"
    assert main(["check", "--quick", "-k", "xor", "--backends", "torch", "--json",
                 str(out)]) == 0
    import json

    flags = json.loads(out.read_text())["environment"]["precision"]
    assert flags["device"] == "cpu"
    assert flags["torch_cudnn_allow_tf32"] is False  # pinned by default
    assert flags["torch_float32_matmul_precision"] == "highest"
    assert set(precision_flags()) <= set(flags)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cnn-seed002-adam-f32-b2", "cnn-seed002-adam-f64-b2"])
def test_the_seed002_cnn_passes_on_gpu_with_full_float32_pinned(name):
    from nnparity.backends.precision import pin_torch_precision

    pin_torch_precision()
    result = run_case(cases.get(name), registry.get("torch").on("cuda"), name="torch")
    assert result.passed, result.divergence


@pytest.mark.jax
def test_jax_on_cuda_without_a_gpu_is_refused_with_one_line():
    import jax

    try:
        jax.devices("gpu")
        pytest.skip("checks the refusal where JAX sees no GPU; this machine has one "
                    "(the GPU tests run instead)")
    except RuntimeError:
        pass
    with pytest.raises(ValueError, match="jax sees no GPU"):
        registry.get("jax").on("cuda")


@pytest.mark.gpu
@pytest.mark.jax
def test_the_jax_backend_passes_the_seed002_cnn_on_gpu():
    result = run_case(cases.get("cnn-seed002-adam-f32-b2"), registry.get("jax").on("cuda"),
                      name="jax")
    assert result.passed, result.divergence


@pytest.mark.gpu
def test_a_model_file_runs_on_gpu():
    from pathlib import Path

    from nnparity.models import check
    from nnparity.models.source import load

    target = str(Path(__file__).resolve().parents[2] / "examples/models/torch_mlp.py") + ":model"
    model = check.adapt(load(target), device="cuda")
    result = check.check(model, target)
    assert result.passed, result.divergence


def _tf_has_gpu() -> bool:
    from nnparity.backends.determinism import import_tensorflow

    tf, _ = import_tensorflow()
    return bool(tf.config.list_physical_devices("GPU"))


@pytest.mark.tensorflow
def test_tensorflow_on_cuda_is_refused_with_the_reason_where_it_lists_no_gpu():
    if _tf_has_gpu():
        pytest.skip("checks the refusal where TensorFlow lists no GPU; this machine lists "
                    "one (the GPU test runs instead)")
    backend = registry.get("tensorflow")
    assert backend.on("cpu") is backend and backend.tf_device == "/CPU:0"
    with pytest.raises(ValueError, match=r"tensorflow sees no GPU \(tf.config.list_physical_"
                                         r"devices\('GPU'\) is empty\)"):
        backend.on("cuda")


@pytest.mark.tensorflow
def test_a_keras_model_file_on_cuda_exits_2_naming_the_reason_where_tensorflow_has_no_gpu(
        capsys):
    if _tf_has_gpu():
        pytest.skip("checks the refusal where TensorFlow lists no GPU; this machine lists "
                    "one (the GPU test runs instead)")
    from pathlib import Path

    target = str(Path(__file__).resolve().parents[2] / "examples/models/keras_mlp.py") + ":model"
    assert main(["check", "--model-file", target, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "keras_mlp.py:model: --device cuda: tensorflow sees no GPU" in err
    assert "Traceback" not in err


@pytest.mark.gpu
@pytest.mark.tensorflow
def test_the_tensorflow_backend_runs_a_case_on_its_gpu():
    if not _tf_has_gpu():
        pytest.skip("needs a GPU TensorFlow can use: tf.config.list_physical_devices('GPU') is "
                    "empty here (tensorflow-cpu has none)")
    name = "cnn-seed002-adam-f64-b2"
    result = run_case(cases.get(name), registry.get("tensorflow").on("cuda"), name="tensorflow")
    assert result.passed, result.divergence
