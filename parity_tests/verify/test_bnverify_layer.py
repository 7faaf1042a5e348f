"""The layer-level check of a normalisation pair (``NNPARITY['layer']``): CS231n's
``batchnorm_forward``/``batchnorm_backward`` on their own, the step-by-step and the simplified
backward alike; each mistake located at its tensor and named; a bad declaration is one line and
exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnparity.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "verify" / "norms" / \
    "layer_batchnorm.py"
SIMPLIFIED = '{"backward": "batchnorm_backward_alt(dout, out[1])"}'


def verify(path: Path, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    code = main(["verify", str(path), "--backends", "none", "--sandbox", "off",
                 "--json", str(report), *extra])
    return code, json.loads(report.read_text())["cases"][path.name]["backends"]["yours"]


def planted(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text()
    assert old in text, old
    path = tmp_path / "planted.py"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize("extra", [(), ("--adapter", SIMPLIFIED)], ids=["step", "simplified"])
def test_both_backwards_pass_every_tensor(extra, tmp_path, capsys):
    code, result = verify(EXAMPLE, tmp_path, *extra)
    assert code == 0, capsys.readouterr().out
    assert [(c["stage"], c["name"]) for c in result["comparisons"]] == [
        ("forward", "out"), ("delta", "dx"), ("grad", "dgamma"), ("grad", "dbeta"),
        ("update", "running_mean"), ("update", "running_var")]
    assert all(c["passed"] and c["tol"] <= 1e-10 for c in result["comparisons"])


MISTAKES = {
    "no_dmu": (("    return dx1 + dx2, dgamma, dbeta", "    return dx1, dgamma, dbeta"),
               "dx", "batchnorm-mean-path"),
    "no_dvar": (("    dx1 = dxmu1 + dxmu2\n", "    dx1 = dxmu1\n"), "dx",
                "batchnorm-variance-path"),
    "constant": (("    return dx1 + dx2, dgamma, dbeta", "    return dxmu1, dgamma, dbeta"),
                 "dx", "batchnorm-constant-statistics"),
    "unbiased": (("(1 - momentum) * var\n", "(1 - momentum) * var * len(x) / (len(x) - 1)\n"),
                 "running_var", "running-variance-estimator"),
    "inverted": (("momentum * running_mean + (1 - momentum) * mu",
                  "(1 - momentum) * running_mean + momentum * mu"),
                 "running_mean", "running-momentum-inverted"),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_is_located_and_named(name, tmp_path, capsys):
    (old, new), tensor, code = MISTAKES[name]
    exit_code, result = verify(planted(tmp_path, old, new), tmp_path)
    out = capsys.readouterr().out
    assert exit_code == 1, out
    first = next(c for c in result["comparisons"] if not c["passed"])
    assert first["name"] == tensor
    assert [d["code"] for d in result["diagnosis"]] == [code], out
    assert "checked: the reference with" in out


def test_a_wrong_running_variance_without_a_known_cause_shows_its_worst_entries(tmp_path,
                                                                                capsys):
    path = planted(tmp_path, "(1 - momentum) * var\n", "(1 - momentum) * var * 2\n")
    code, result = verify(path, tmp_path)
    assert code == 1 and result["diagnosis"] == []
    first = next(c for c in result["comparisons"] if not c["passed"])
    assert first["name"] == "running_var" and result["worst_elements"]


def test_a_missing_tensor_fails_at_it(tmp_path, capsys):
    code, result = verify(EXAMPLE, tmp_path, "--adapter", '{"dx": "back[7]"}')
    assert code == 1
    first = next(c for c in result["comparisons"] if not c["passed"])
    assert first["name"] == "dx" and first["note"] == "not in your result"


@pytest.mark.parametrize(("change", "message"), [
    ({"layer": {"kind": "groupnorm"}}, "NNPARITY['layer'] must be a dict with 'kind'"),
    ({"layer": {"kind": "batchnorm", "momentum": 1.5}}, "layer momentum must be a number"),
    ({"W": "model.W"}, "a layer check (NNPARITY['layer']) takes the keys"),
    ({"layer": {"kind": "layernorm"}}, "running statistics declared for a layernorm"),
])
def test_a_layer_declaration_error_is_one_line_and_exit_2(change, message, capsys):
    code = main(["verify", str(EXAMPLE), "--backends", "none", "--sandbox", "off",
                 "--adapter", json.dumps(change)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0]


LAYERNORM = '''
import numpy as np

NNPARITY = {
    "layer": {"kind": "layernorm", "input_dim": 6},
    "forward": "layernorm_forward(x, gamma, beta, {'eps': 1e-5})",
    "norm_out": "out[0]",
    "backward": "layernorm_backward(dout, out[1])",
    "dx": "back[0]",
    "dgamma": "back[1]",
    "dbeta": "back[2]",
}


def layernorm_forward(x, gamma, beta, ln_param):
    mu = x.mean(axis=1, keepdims=True)
    ivar = 1 / np.sqrt(((x - mu) ** 2).mean(axis=1, keepdims=True) + ln_param["eps"])
    xhat = (x - mu) * ivar
    return gamma * xhat + beta, (xhat, ivar, gamma)


def layernorm_backward(dout, cache):
    xhat, ivar, gamma = cache
    g = dout * gamma
    dx = ivar * (g - g.mean(axis=1, keepdims=True)
                 - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
'''


def test_a_layernorm_pair_passes_and_its_mean_path_is_named(tmp_path, capsys):
    path = tmp_path / "ln.py"
    path.write_text(LAYERNORM)
    code, result = verify(path, tmp_path)
    assert code == 0 and len(result["comparisons"]) == 4, capsys.readouterr().out
    path.write_text(LAYERNORM.replace("g - g.mean(axis=1, keepdims=True)", "g"))
    code, result = verify(path, tmp_path)
    assert code == 1
    assert [d["code"] for d in result["diagnosis"]] == ["layernorm-mean-path"]
