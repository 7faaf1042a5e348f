"""The normalisations' mistakes, planted into the correct batchnorm examples: each located at
its first divergence and named by a diagnosis the reference re-run with the mistake confirms;
each mistake changes the reference (a variant equal to it would confirm anything)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nnparity.cli import main
from nnparity.reference.family import spec_from_dict
from nnparity.verify import norm_mistakes
from nnparity.verify.adapters import build_adapter, read_declaration
from nnparity.verify.norm_diagnose import CODES
from nnparity.verify.problem import make_problem, reference_tensors

NORMS = Path(__file__).resolve().parents[2] / "examples" / "verify" / "norms"
STEP_BY_STEP, SIMPLIFIED = "correct_batchnorm", "correct_batchnorm_simplified"
# name -> (example, edits, first divergence, code)
PLANTED = {
    "no_mean_path": (STEP_BY_STEP, (("    return dx1 + dx2, dgamma, dbeta",
                                     "    return dx1, dgamma, dbeta"),),
                     ("delta", "dense1"), "batchnorm-mean-path"),
    "no_variance_path": (STEP_BY_STEP, (("    dx1 = dxmu1 + dxmu2\n", "    dx1 = dxmu1\n"),),
                         ("delta", "dense1"), "batchnorm-variance-path"),
    "constant_statistics": (SIMPLIFIED, ((
        "dh1 = self.gamma * self.ivar / n * (n * dout - self.dbeta - self.xhat * self.dgamma)",
        "dh1 = self.gamma * self.ivar * dout"),), ("delta", "dense1"),
        "batchnorm-constant-statistics"),
    "simplified_no_mean_path": (SIMPLIFIED, ((
        "(n * dout - self.dbeta - self.xhat * self.dgamma)",
        "(n * dout - self.xhat * self.dgamma)"),), ("delta", "dense1"), "batchnorm-mean-path"),
    "biased_for_unbiased": (SIMPLIFIED, (("(1 - m) * var * n / (n - 1)", "(1 - m) * var"),),
                            ("update", "step1.batchnorm1.var"), "running-variance-estimator"),
    "unbiased_for_biased": (STEP_BY_STEP, (
        ('bn_param["running_var"] = momentum * running_var + (1 - momentum) * var',
         'bn_param["running_var"] = momentum * running_var + (1 - momentum) * np.var(x, '
         'axis=0, ddof=1)'),), ("update", "step1.batchnorm1.var"),
        "running-variance-estimator"),
    "momentum_inverted": (SIMPLIFIED, (
        ("self.running_mean = m * self.running_mean + (1 - m) * mu",
         "self.running_mean = (1 - m) * self.running_mean + m * mu"),
        ("self.running_var = m * self.running_var + (1 - m) * var * n / (n - 1)",
         "self.running_var = (1 - m) * self.running_var + m * var * n / (n - 1)")),
        ("update", "step1.batchnorm1.mean"), "running-momentum-inverted"),
}


def planted(name: str, folder: Path) -> Path:
    example, edits, _, _ = PLANTED[name]
    text = (NORMS / f"{example}.py").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = folder / f"{name}.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_each_norm_mistake_is_located_and_named(name, tmp_path, capsys):
    _, _, where, code = PLANTED[name]
    path = planted(name, tmp_path)
    report = tmp_path / "report.json"
    exit_code = main(["verify", str(path), "--backends", "none", "--sandbox", "off",
                      "--json", str(report)])
    out = capsys.readouterr().out
    assert exit_code == 1, out
    result = json.loads(report.read_text())["cases"][path.name]["backends"]["yours"]
    first = next(c for c in result["comparisons"] if not c["passed"])
    assert (first["stage"], first["name"]) == where, out
    [found] = result["diagnosis"]
    assert found["code"] == code, out
    assert f"diagnosis: {found['title']}" in out and "checked: the reference with" in out


def test_every_norm_code_has_a_planted_bug():
    from nnparity.teach.norm_exercises import EXERCISES

    shown = {code for *_, code in PLANTED.values()} | {e.diagnosis for e in EXERCISES}
    assert shown == set(CODES) - {"layernorm-mean-path", "layernorm-constant-statistics"}


def test_each_norm_mistake_changes_the_reference():
    adapter = build_adapter(read_declaration(NORMS / f"{SIMPLIFIED}.py"), None, "x")
    problem = make_problem(adapter.spec, 0, 5, edges=False)
    spec, right = adapter.spec, reference_tensors(problem)
    variants = [norm_mistakes.without_path(spec, "batchnorm", drop)
                for drop in norm_mistakes.DROPS]
    variants += [norm_mistakes.other_variance(spec), norm_mistakes.inverted_momentum(spec)]
    for variant in variants:
        wrong = reference_tensors(replace(problem, spec=variant))
        assert any(not np.allclose(right[k], wrong[k]) for k in right), variant


def test_the_layernorm_paths_change_its_input_gradient():
    spec = spec_from_dict({"input_shape": [4], "loss": "l2", "reduction": "sum", "net": [
        {"kind": "dense", "units": 5}, {"kind": "tanh"}, {"kind": "layernorm"},
        {"kind": "dense", "units": 2}]})
    problem = make_problem(spec, 0, 5, edges=False)
    right = reference_tensors(problem)
    for drop in norm_mistakes.DROPS:
        variant = norm_mistakes.without_path(spec, "layernorm", drop)
        wrong = reference_tensors(replace(problem, spec=variant))
        assert not np.allclose(right[("delta", "dense1")], wrong[("delta", "dense1")])
        assert np.allclose(right[("grad", "layernorm1.gamma")],
                           wrong[("grad", "layernorm1.gamma")])


def test_a_momentum_of_zero_has_no_inverse():
    spec = spec_from_dict({"input_shape": [3], "loss": "l2", "reduction": "sum", "net": [
        {"kind": "batchnorm", "momentum": 0.0}, {"kind": "dense", "units": 2}]})
    assert norm_mistakes.inverted_momentum(spec) is None
