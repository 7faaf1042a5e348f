"""The Python API on in-memory torch and Keras models: ``nnparity.check_model``,
``check_port`` and ``verify_file`` return a Report whose verdict, first divergence, diagnoses,
table and JSON (schema 2) say what the command line says; errors in the model's code raise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from report_schema import validate  # parity_tests/, beside the conftest

import nnparity

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"


class WrongTanh(torch.autograd.Function):
    """tanh whose backward uses the input where the derivative needs the output."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - x**2)


class FaultyTanh(nn.Module):
    def forward(self, x):
        return WrongTanh.apply(x)


def mlp(activation: nn.Module | None = None) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), activation or nn.Tanh(), nn.Linear(8, 3))


def test_a_correct_torch_model_passes_with_its_optimiser_and_says_what_it_used():
    model = mlp()
    report = nnparity.check_model(model, loss="ce",
                                  optimizer=torch.optim.Adam(model.parameters(), lr=0.01))
    assert report.ok and report.first_divergence is None and report.diagnoses == []
    report.assert_ok()
    stages = {c.stage for r in report.results for c in r.comparisons}
    assert stages == {"forward", "loss", "delta", "grad", "update"}
    assert "loss ce (mean) from loss=; optimiser torch adam (lr 0.01) from optimizer=" \
        in report.table()
    data = report.to_json()
    validate(data)
    [entry] = data["cases"].values()
    assert entry["backends"]["torch-model"]["status"] == "pass"


def test_the_check_puts_the_models_weights_back_after_its_steps():
    model = mlp()
    before = [p.detach().clone() for p in model.parameters()]
    nnparity.check_model(model, loss="ce", optimizer=torch.optim.SGD(model.parameters(), lr=1.0))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_a_wrong_backward_fails_at_its_delta_with_the_diagnosis():
    report = nnparity.check_model(mlp(FaultyTanh()), loss="ce", layers={"FaultyTanh": "tanh"},
                                  name="faulty")
    assert not report.ok
    first = report.first_divergence
    assert (first.case, first.backend, first.stage, first.tensor) == (
        "faulty", "torch-model", "delta", "layer1")
    assert first.max_rel > 0.1
    [diagnosis] = report.diagnoses
    assert diagnosis.code == "activation-backward" and "FaultyTanh" in diagnosis.message
    with pytest.raises(AssertionError) as raised:
        report.assert_ok()
    text = str(raised.value)
    assert text.startswith(report.table()) and "FAIL" in text
    assert "diagnosis [activation-backward]: " in text
    data = report.to_json()
    validate(data)
    [found] = data["cases"]["faulty"]["backends"]["torch-model"]["diagnosis"]
    assert found["code"] == "activation-backward" and found["evidence"]


def test_no_loss_is_refused_naming_the_argument():
    with pytest.raises(nnparity.InputError, match=r"give loss= \(ce, l2, bce, mse\)"):
        nnparity.check_model(mlp())


def test_a_torch_loss_module_is_used_as_given():
    report = nnparity.check_model(mlp(), loss=nn.MSELoss(reduction="sum"))
    assert report.ok and "loss mse (sum) from loss=" in report.table()


def test_an_error_in_the_models_code_is_a_model_error_never_a_pass():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("shape bug")

    model = nn.Sequential(nn.Linear(4, 3), Broken())
    with pytest.raises(nnparity.ModelError, match=r"raised RuntimeError.*shape bug"):
        nnparity.check_model(model, loss="ce", layers={"Broken": "identity"})


@pytest.mark.tensorflow
def test_a_compiled_keras_regression_model_uses_its_compiled_loss_and_optimiser():
    from nnparity.backends.determinism import import_tensorflow

    _, keras = import_tensorflow()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(0.05))
    report = nnparity.check_model(model)
    assert report.ok, report.table()
    assert ("loss mse (mean) from model.compile; optimiser keras sgd (lr 0.05) from "
            "model.compile") in report.table()
    assert any(c.stage == "update" for c in report.results[0].comparisons)
    validate(report.to_json())


def test_a_port_with_its_own_weights_fails_with_the_diagnosis_and_its_architecture_passes():
    original = mlp()
    torch.manual_seed(1)
    port = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))  # its own initialisation
    report = nnparity.check_port(original, port, loss="ce", names=("original", "port"))
    assert not report.ok
    assert [r.status for r in report.results] == ["pass", "pass", "fail"]
    assert report.first_divergence.backend == "port"
    assert [d.code for d in report.diagnoses] == ["weights-conversion"]
    validate(report.to_json())
    assert nnparity.check_port(original, port, loss="ce", transfer_weights=True).ok


def test_verify_file_reports_a_learners_file_as_verify_does():
    good = nnparity.verify_file(EXAMPLES / "correct_function_row.py", sandbox="off")
    assert good.ok and good.diagnoses == []
    assert any("NOT sandboxed" in note for note in good.to_json()["cases"][
        "correct_function_row.py"]["backends"]["yours"]["notes"])
    bad = nnparity.verify_file(EXAMPLES / "faulty_sign.py")  # sandboxed, as verify is
    assert not bad.ok
    assert (bad.first_divergence.stage, bad.first_divergence.tensor) == ("delta", "layer3")
    assert [d.code for d in bad.diagnoses] == ["sign"]
    assert "diagnosis: " in bad.table()
    validate(bad.to_json())
    with pytest.raises(nnparity.InputError, match="no such file"):
        nnparity.verify_file(EXAMPLES / "missing.py")


def test_the_json_of_a_report_is_strict_json():
    import json

    report = nnparity.check_model(mlp(), loss="ce")
    assert json.loads(json.dumps(report.to_json(), allow_nan=False))["schema_version"] == 2
    assert np.isfinite(report.results[0].worst().max_rel)
