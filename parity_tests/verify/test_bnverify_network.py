"""``nnparity verify`` on networks with batch and layer normalisation: a right submission passes
(the step-by-step and the simplified batchnorm backward alike), every norm tensor is compared
(forward, dgamma, dbeta, the updated gamma/beta, the running statistics of each step), a wrong
running statistic fails at its own tensor, a bad declaration is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnparity.cli import main

NORMS = Path(__file__).resolve().parents[2] / "examples" / "verify" / "norms"
CORRECT = ("correct_batchnorm", "correct_batchnorm_simplified")


def verify(path: Path, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / f"{path.stem}.json"
    code = main(["verify", str(path), "--backends", "none", "--sandbox", "off",
                 "--json", str(report), *extra])
    return code, json.loads(report.read_text())["cases"][path.name]["backends"]["yours"]


def edited(name: str, tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = (NORMS / f"{name}.py").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}_edited.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", CORRECT)
def test_a_right_batchnorm_network_passes_with_every_norm_tensor(name, tmp_path, capsys):
    code, result = verify(NORMS / f"{name}.py", tmp_path)
    out = capsys.readouterr().out
    assert code == 0 and result["status"] == "pass", out
    names = {(c["stage"], c["name"]) for c in result["comparisons"]}
    assert {("forward", "z.batchnorm1"), ("grad", "batchnorm1.gamma"),
            ("grad", "batchnorm1.beta"), ("update", "step1.batchnorm1.gamma"),
            ("update", "step1.batchnorm1.beta"), ("update", "step1.batchnorm1.mean"),
            ("update", "step1.batchnorm1.var"), ("delta", "dense1")} <= names
    assert all(c["passed"] for c in result["comparisons"])
    assert all(c["tol"] <= 1e-10 for c in result["comparisons"])  # float64's tolerance


def test_running_statistics_of_every_step_are_compared(tmp_path, capsys):
    path = edited("correct_batchnorm", tmp_path, ('"lr": 0.1,', '"lr": 0.1, "steps": 3,'))
    code, result = verify(path, tmp_path)
    assert code == 0, capsys.readouterr().out
    names = {c["name"] for c in result["comparisons"]}
    assert {f"step{s}.batchnorm1.{stat}" for s in (1, 2, 3) for stat in ("mean", "var")} <= names


def test_a_wrong_running_mean_fails_at_its_own_tensor(tmp_path, capsys):
    # the running mean forgets its old value: everything else is right
    path = edited("correct_batchnorm", tmp_path, (
        'bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu',
        'bn_param["running_mean"] = (1 - momentum) * mu'))
    code, result = verify(path, tmp_path)
    out = capsys.readouterr().out
    assert code == 1, out
    first = next(c for c in result["comparisons"] if not c["passed"])
    assert (first["stage"], first["name"]) == ("update", "step1.batchnorm1.mean")
    assert all(c["passed"] for c in result["comparisons"] if c["stage"] != "update")
    assert "update of step1.batchnorm1.mean differs" in result["first_divergence"]


def test_a_forgotten_scale_fails_in_the_forward_pass(tmp_path, capsys):
    path = edited("correct_batchnorm_simplified", tmp_path,
                  ("self.bn = self.gamma * self.xhat + self.beta",
                   "self.bn = self.xhat + self.beta"))
    code, result = verify(path, tmp_path)
    assert code == 1, capsys.readouterr().out
    first = next(c for c in result["comparisons"] if not c["passed"])
    assert (first["stage"], first["name"]) == ("forward", "z.batchnorm1")


LAYERNORM = '''
import numpy as np

NNPARITY = {
    "spec": {"input_shape": [4], "loss": "l2", "reduction": "sum",
             "net": [{"kind": "dense", "units": 5}, {"kind": "tanh"}, {"kind": "layernorm"},
                     {"kind": "dense", "units": 2}]},
    "bias_shape": "flat",
    "forward": "forward(x, W, b, gamma1, beta1)",
    "z": "out['z'][{i}]",
    "norm_out": ["out['y']"],
    "backward": "backward(out, y, W, gamma1)",
    "delta": "back['d'][{i}]",
    "dgamma": ["back['dgamma']"],
    "dbeta": ["back['dbeta']"],
}


def forward(x, W, b, gamma, beta):
    z1 = x @ W[0] + b[0]
    h = np.tanh(z1)
    mu = h.mean(axis=1, keepdims=True)
    r = 1 / np.sqrt(((h - mu) ** 2).mean(axis=1, keepdims=True) + 1e-5)
    xhat = (h - mu) * r
    y = gamma * xhat + beta
    return {"z": [z1, y @ W[1] + b[1]], "h": h, "xhat": xhat, "r": r, "y": y}


def backward(out, y, W, gamma):
    d2 = out["z"][1] - y
    dy = d2 @ W[1].T
    g = dy * gamma
    xhat = out["xhat"]
    dh = out["r"] * (g - g.mean(axis=1, keepdims=True)
                     - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return {"d": [dh * (1 - out["h"] ** 2), d2], "dgamma": (dy * xhat).sum(axis=0),
            "dbeta": dy.sum(axis=0)}
'''


def test_a_right_layernorm_network_passes(tmp_path, capsys):
    path = tmp_path / "layernorm_net.py"
    path.write_text(LAYERNORM)
    code, result = verify(path, tmp_path)
    assert code == 0, capsys.readouterr().out
    names = {c["name"] for c in result["comparisons"]}
    assert {"h.layernorm1", "layernorm1.gamma", "layernorm1.beta", "dense1"} <= names


@pytest.mark.parametrize(("change", "message"), [
    ({"running_mean": "model['running_mean']"},
     "NNPARITY['running_mean'] = \"model['running_mean']\" names one thing for 1 norm layers"),
    ({"dgamma": ["a", "b"]}, "NNPARITY['dgamma'] lists 2 expressions for 1 norm layers"),
])
def test_a_norm_declaration_error_is_one_line_and_exit_2(change, message, tmp_path, capsys):
    path = NORMS / "correct_batchnorm.py"
    code = main(["verify", str(path), "--backends", "none", "--sandbox", "off",
                 "--adapter", json.dumps(change)])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message.replace('"', "'") in lines[0].replace('"', "'"), lines[0]


def test_running_statistics_of_a_network_without_batchnorm_are_exit_2(tmp_path, capsys):
    path = tmp_path / "layernorm_net.py"
    path.write_text(LAYERNORM)
    code = main(["verify", str(path), "--backends", "none", "--sandbox", "off",
                 "--adapter", '{"running_var": ["out[\'var\']"]}'])
    err = capsys.readouterr().err
    assert code == 2 and "no batchnorm layer" in err and "Traceback" not in err


def test_framework_backends_are_not_run_beside_a_batchnorm_network(tmp_path, capsys):
    """Their rows would compare the framework's evaluation pass with verify's training pass."""
    report = tmp_path / "report.json"
    code = main(["verify", str(NORMS / "correct_batchnorm.py"), "--backends", "torch",
                 "--sandbox", "off", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0 and "torch disagrees" not in out, out
    assert "not run beside a network with batchnorm" in " ".join(out.split())


def test_golden_vectors_refuse_a_network_with_a_normalisation(tmp_path, capsys):
    """A vector would lack gamma, beta and the running statistics: exit 2, one line, nothing
    written."""
    spec = {"input_shape": [4], "loss": "ce", "reduction": "sum",
            "net": [{"kind": "dense", "units": 5}, {"kind": "tanh"}, {"kind": "batchnorm"},
                    {"kind": "dense", "units": 3}]}
    folder = tmp_path / "vectors"
    folder.mkdir()
    code = main(["vectors", "export", str(folder), "--spec", json.dumps(spec)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "does not carry a normalisation's gamma" in err
    assert not list(folder.iterdir())


BEFORE_RELU = '''
import numpy as np

NNPARITY = {
    "spec": {"input_shape": [4], "loss": "l2", "reduction": "sum",
             "net": [{"kind": "dense", "units": 5}, {"kind": "batchnorm"}, {"kind": "relu"},
                     {"kind": "dense", "units": 2}]},
    "bias_shape": "flat",
    "forward": "forward(x, W, b, gamma1, beta1)",
    "z": "out[{i}]",
    "h": [None, "out[3]"],
    "norm_out": ["out[2]"],
}


def forward(x, W, b, gamma, beta):
    z1 = x @ W[0] + b[0]
    y = gamma * (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + 1e-5) + beta
    z2 = np.maximum(y, 0) @ W[1] + b[1]
    return z1, z2, y, z2
'''


def test_norm_out_is_the_batchnorm_output_before_its_activation(tmp_path, capsys):
    path = tmp_path / "before_relu.py"
    path.write_text(BEFORE_RELU)
    code, result = verify(path, tmp_path)
    assert code == 0, capsys.readouterr().out
    names = [c["name"] for c in result["comparisons"]]
    assert names == ["z.dense1", "z.batchnorm1", "z.dense2", "h.dense2"]


def test_a_network_without_normalisation_keeps_its_globals_named_like_norm_arrays(
        tmp_path, capsys):
    """The lists gamma, beta, running_mean, running_var are handed over only for norm
    layers: a global ``beta`` of an MLP's file stays what the file says."""
    example = NORMS.parent / "correct_function_row.py"
    path = tmp_path / "mlp_with_beta.py"
    path.write_text(example.read_text() + "\nbeta = 0.05\n")
    code, _ = verify(path, tmp_path, "--adapter", '{"lr": "beta"}')
    assert code == 0, capsys.readouterr()
