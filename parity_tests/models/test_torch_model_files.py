"""Users' torch models from files: the examples' expected outcomes and diagnoses, structures
traced from modules and functions, refusals with exit 2, weights from .npz/.safetensors."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.cli import main
from nnparity.errors import InputError
from nnparity.models import check
from nnparity.models.source import load

pytestmark = pytest.mark.torch


def test_torch_mlp_matches_every_tensor_and_three_sgd_momentum_steps(check_file):
    result = check_file("torch_mlp.py:model")
    assert result.passed, result.divergence
    assert result.backend == "torch-model"
    stages = {c.stage for c in result.comparisons}
    assert stages == {"forward", "loss", "delta", "grad", "update"}
    assert "update step3.W1" in {c.label for c in result.comparisons}
    worst = max(c.max_rel for c in result.comparisons)
    assert worst < 1e-13  # float64: near machine precision, not just under the 1e-10 tolerance


def test_mlp_dropout_module_and_function_masks_are_read_and_every_tensor_matches(check_file,
                                                                                example):
    result = check_file("torch_mlp.py:dropout")
    assert result.passed, result.divergence
    assert {"forward h.dropout1", "forward h.dropout2", "update step3.W2"} <= {
        c.label for c in result.comparisons}
    model = check.adapt(load(example("torch_mlp.py:dropout"), loss="ce"))
    x, y = check.batches(model.spec, 0, 1)[0]
    _, _, mask = model.run(x, y)
    assert mask.shape == (4, 24) and 0 < mask.mean() < 1  # a real mask, both layers' columns


def test_hand_written_inverted_dropout_passes_at_training_and_evaluation(check_file):
    result = check_file("torch_dropout_scaling.py:correct")
    assert result.passed, result.divergence
    assert "forward eval.output" in {c.label for c in result.comparisons}


def test_non_inverted_dropout_is_diagnosed_by_rerunning_the_reference_without_the_scaling(
        check_file):
    result = check_file("torch_dropout_scaling.py:faulty")
    assert not result.passed
    assert result.divergence.startswith("forward of h.dropout1 differs")
    assert result.diagnosis.startswith("dropout is not inverted: kept units are not scaled by "
                                       "1/keep_prob = 1.667 in training")


def test_dropout_scaled_again_at_evaluation_fails_at_the_evaluation_output(check_file):
    result = check_file("torch_dropout_scaling.py:eval_scaled")
    failed = [c.label for c in result.comparisons if not c.passed]
    assert failed == ["forward eval.output"] and result.diagnosis is None


def test_the_traced_structure_includes_functions_called_in_forward(example):
    model = check.adapt(load(example("torch_mlp.py:model"), loss="ce"))
    assert model.spec.activations == ("relu", "tanh", "identity")
    assert model.structure.activations["layer2"] == "tanh() in forward"


def test_float32_model_is_judged_at_the_float32_tolerance(check_file):
    result = check_file("torch_mlp.py:adam_float32")
    assert result.passed, result.divergence
    assert {c.tol for c in result.comparisons} == {1e-5}


def test_dtype_float64_converts_the_model_for_the_exact_check(check_file):
    result = check_file("torch_mlp.py:adam_float32", dtype="float64")
    assert result.passed and {c.tol for c in result.comparisons} == {1e-10}


def test_custom_autograd_sigmoid_correct_passes(check_file):
    result = check_file("torch_custom_sigmoid.py:correct")
    assert result.passed, result.divergence


def test_custom_autograd_sigmoid_faulty_fails_at_its_delta_and_names_the_module(check_file):
    result = check_file("torch_custom_sigmoid.py:faulty")
    assert not result.passed
    assert result.divergence.startswith("forward and loss match; delta of layer1 differs")
    assert "the backward of module 1 (FaultySigmoid)" in result.diagnosis


def test_double_softmax_is_diagnosed_by_rerunning_the_reference_with_the_extra_softmax(
        check_file):
    result = check_file("torch_double_softmax.py:model")
    assert not result.passed
    assert result.divergence.startswith("forward of h.layer2 differs")
    assert result.diagnosis.startswith("softmax applied before a cross-entropy")
    assert result.notes == ["loss ce (mean) from the builder (--loss ce applies to models "
                            "without one); no optimiser: updates not checked"]


def test_a_hand_written_adam_subclass_runs_and_passes(check_file):
    result = check_file("torch_custom_adam.py:correct")
    assert result.passed, result.divergence


def test_adam_epsilon_placement_is_diagnosed_by_the_references_first_step(check_file):
    result = check_file("torch_custom_adam.py:faulty")
    assert result.divergence.startswith("forward, loss, deltas and gradients match; update of "
                                        "step1.")
    assert result.diagnosis.startswith("Adam's epsilon added to sqrt(v) before the bias "
                                       "correction (epsilon-hat, Keras' placement)")


def _write(tmp_path, body: str) -> str:
    path = tmp_path / "user_model.py"
    path.write_text("import torch\nfrom torch import nn\n" + body)
    return str(path)


def test_unsupported_layer_exits_2_naming_it_and_listing_what_is_supported(tmp_path, capsys):
    target = _write(tmp_path, "def model():\n    return nn.Sequential(nn.Linear(3, 4), "
                    "nn.Softplus(), nn.Linear(4, 2))\n") + ":model"
    assert main(["check", "--loss", "ce", "--model-file", target]) == 2
    err = capsys.readouterr().err
    assert "unsupported layer module 1 (Softplus)" in err and "supported: Linear" in err
    assert len(err.strip().splitlines()) == 1


def test_a_model_that_raises_on_the_input_shape_exits_2(tmp_path):
    target = _write(tmp_path, "def model():\n    return nn.Linear(3, 2)\n") + ":model"
    with pytest.raises(InputError, match=r"raised RuntimeError on an input of shape \(2, 1, 8"):
        check.adapt(load(target, (8, 8, 1), loss="ce"))


def test_unsupported_function_in_forward_is_named(tmp_path):
    target = _write(tmp_path, """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
    def forward(self, x):
        return torch.nn.functional.elu(self.fc(x))
def model():
    return Net()
""") + ":model"
    with pytest.raises(InputError, match=r"unsupported layer elu\(\) in forward"):
        check.adapt(load(target, loss="ce"))


@pytest.mark.parametrize(("body", "message"), [
    ("def model():\n    return {'model': nn.Linear(3, 2), 'optimizer': lambda p: "
     "torch.optim.RMSprop(p)}\n", "optimiser RMSprop"),
    ("def model():\n    return {'model': nn.Linear(3, 2), 'loss': nn.CrossEntropyLoss("
     "label_smoothing=0.1)}\n", "no exact counterpart"),
    ("def model():\n    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), "
     "nn.MaxPool2d(2, 2, padding=1), nn.Flatten(), nn.Linear(2 * 5 * 5, 3))\n",
     "neither VALID nor TensorFlow's SAME"),
])
def test_what_has_no_exact_counterpart_is_refused(tmp_path, body, message):
    source = load(_write(tmp_path, body) + ":model", (8, 8, 1) if "Conv2d" in body else (),
                  loss="ce")
    with pytest.raises(InputError, match=message):
        check.adapt(source)


@pytest.mark.parametrize("slopes", [1, 4])
def test_prelu_shared_or_per_unit_passes(tmp_path, slopes):
    target = _write(tmp_path, "def model():\n    torch.manual_seed(0)\n    return {'model': "
                    f"nn.Sequential(nn.Linear(3, 4), nn.PReLU({slopes}), nn.Linear(4, 2))"
                    ".double(), 'optimizer': lambda p: torch.optim.SGD(p, lr=0.1)}\n")
    model = check.adapt(load(target + ":model", loss="ce"))
    assert model.spec.prelu_slopes == ("shared" if slopes == 1 else "unit")
    result = check.check(model, target)
    assert result.passed, result.divergence


def test_momentum_with_dampening_is_diagnosed(tmp_path):
    target = _write(tmp_path, """
class Damped(torch.optim.SGD):
    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            mu, lr = group["momentum"], group["lr"]
            for p in group["params"]:
                v = self.state[p].setdefault("v", torch.zeros_like(p))
                v.mul_(mu).add_(p.grad, alpha=1 - mu)  # dampened: not torch's momentum
                p.sub_(lr * v)
def model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    return {"model": net, "optimizer": lambda p: Damped(p, lr=0.1, momentum=0.9)}
""") + ":model"
    result = check.check(check.adapt(load(target, loss="ce")), target)
    assert result.diagnosis.startswith("momentum with dampening: v = mu v + (1 - mu) g")


@pytest.mark.parametrize("optimizer", ["SGD(p, lr=0.1, momentum=0.9, weight_decay=0.05)",
                                       "Adam(p, lr=0.01, weight_decay=0.05)"])
def test_weight_decay_of_sgd_and_adam_maps_to_l2_on_every_parameter(tmp_path, optimizer):
    target = _write(tmp_path, "def model():\n    torch.manual_seed(0)\n    return {'model': "
                    "nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double(), "
                    f"'optimizer': lambda p: torch.optim.{optimizer}}}\n")
    model = check.adapt(load(target + ":model", loss="ce"))
    assert model.optimizer.l2 == 0.05 and model.spec.weight_decay == 0
    result = check.check(model, target)
    assert result.passed, result.divergence


def test_adamw_maps_to_the_references_decoupled_decay(tmp_path):
    target = _write(tmp_path, "def model():\n    torch.manual_seed(0)\n    return {'model': "
                    "nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double(), "
                    "'optimizer': lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)}\n")
    model = check.adapt(load(target + ":model", loss="ce"))
    assert (model.optimizer.name, model.optimizer.decay) == ("adamw", 0.1)
    result = check.check(model, target)
    assert result.passed, result.divergence


def test_weights_file_is_loaded_into_the_model_first(tmp_path, check_file, example):
    from safetensors.numpy import save_file

    source = load(example("torch_mlp.py:model"), loss="ce")
    state = {k: np.full(v.shape, 0.01) * (i + 1) for i, (k, v) in
             enumerate(source.model.state_dict().items())}
    for name, save in (("w.npz", lambda p: np.savez(p, **state)),
                       ("w.safetensors", lambda p: save_file(state, str(p)))):
        save(tmp_path / name)
        from nnparity.files.weights import read_arrays

        model = check.adapt(load(example("torch_mlp.py:model"), loss="ce"), None,
                            read_arrays(tmp_path / name))
        assert np.array_equal(model.params()["W1"], np.full((4, 16), 0.01))
    bad = {**state, "extra": np.zeros(2)}
    np.savez(tmp_path / "bad.npz", **bad)
    assert main(["check", "--loss", "ce", "--model-file", example("torch_mlp.py:model"),
                 "--weights", str(tmp_path / "bad.npz")]) == 2


def test_cli_junit_names_the_model_file_case_and_its_divergence(tmp_path, example):
    import xml.etree.ElementTree as ET

    out = tmp_path / "r.xml"
    target = example("torch_double_softmax.py:model")
    assert main(["check", "--loss", "ce", "--model-file", target, "--junit", str(out)]) == 1
    case = ET.parse(out).getroot().find(".//testcase")
    assert target in case.get("name") + case.get("classname", "")
    assert "softmax applied before a cross-entropy" in case.find("failure").get("message")


def test_cli_reports_json_with_the_diagnosis(tmp_path, capsys, example):
    out = tmp_path / "r.json"
    code = main(["check", "--loss", "ce", "--model-file", example("torch_custom_sigmoid.py:faulty"),
                 "--json", str(out)])
    assert code == 1
    import json

    entry = json.loads(out.read_text())["cases"][example("torch_custom_sigmoid.py:faulty")]
    [found] = entry["backends"]["torch-model"]["diagnosis"]
    assert found["code"] == "activation-backward"
    assert found["message"].startswith("forward, loss and the")
    assert "diagnosis:" in capsys.readouterr().out


def test_torch_padding_1_where_same_is_asymmetric_is_its_own_padding_and_passes(check_file):
    """torch's padding=1 on a stride-2 conv of an even map is not TensorFlow's SAME: mapped as
    ``"padding": 1`` (1 zero on every side), the model's math is the reference's (a port of a
    Keras SAME convolution written so is caught by ``--port``: test_convbias_padding)."""
    result = check_file("torch_symmetric_padding.py:model")
    assert result.passed, result.divergence


def test_tensorflows_same_amounts_by_f_pad_before_a_padding_0_conv_is_same_and_passes(check_file):
    result = check_file("torch_symmetric_padding.py:fixed")
    assert result.passed, result.divergence


def test_f_pad_by_other_amounts_is_refused_naming_it(tmp_path):
    target = _write(tmp_path, "class Net(nn.Module):\n    def __init__(self):\n"
                    "        super().__init__()\n        self.conv = nn.Conv2d(1, 2, 3, stride=2)\n"
                    "        self.fc = nn.Linear(2 * 4 * 4, 3)\n    def forward(self, x):\n"
                    "        h = self.conv(nn.functional.pad(x, (2, 0, 0, 2)))\n"
                    "        return self.fc(torch.flatten(h, 1))\n"
                    "def model():\n    return Net()\n")
    with pytest.raises(InputError, match=r"unsupported layer pad\(\) in forward"):
        check.adapt(load(target + ":model", (8, 8, 1), loss="ce"))
