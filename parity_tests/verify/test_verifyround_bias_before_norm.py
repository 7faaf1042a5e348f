"""A learner's dense layer with its bias right before a batch normalisation: that bias's
gradient is zero in exact arithmetic, so the learner's and the reference's are rounding noise;
verify judges it against its terms (the rounding judge, as the parity matrix does) and says so,
and a real error in it still fails."""

from __future__ import annotations

import json
from pathlib import Path

from nnparity.cli import main
from nnparity.parity.rounding_judge import CANCELLING, NOTE

NORMS = Path(__file__).resolve().parents[2] / "examples" / "verify" / "norms"
# x -> affine -> batchnorm -> tanh -> affine: the first bias is cancelled by the normalisation
EDITS = (
    ('{"kind": "dense", "units": 6}, {"kind": "tanh"},\n'
     '                     {"kind": "batchnorm", "momentum": 0.9, "epsilon": 1e-5},',
     '{"kind": "dense", "units": 6},\n'
     '                     {"kind": "batchnorm", "momentum": 0.9, "epsilon": 1e-5},\n'
     '                     {"kind": "tanh"},'),
    ('    h1 = np.tanh(z1)\n    bn, cache = batchnorm_forward(h1, gamma, beta, bn_param)\n'
     '    z2 = bn @ W[1] + b[1]\n',
     '    bn, cache = batchnorm_forward(z1, gamma, beta, bn_param)\n    h1 = np.tanh(bn)\n'
     '    z2 = h1 @ W[1] + b[1]\n'),
    ('    dbn = dz2 @ out["W"][1].T\n    dh1, dgamma, dbeta = batchnorm_backward(dbn, '
     'out["cache"])\n    dz1 = dh1 * (1 - out["h1"] ** 2)\n',
     '    dbn = (dz2 @ out["W"][1].T) * (1 - out["h1"] ** 2)\n'
     '    dz1, dgamma, dbeta = batchnorm_backward(dbn, out["cache"])\n'),
    ('"dW2": out["bn"].T @ dz2', '"dW2": out["h1"].T @ dz2'),
)


def submission(tmp_path: Path, *extra: tuple[str, str]) -> Path:
    text = (NORMS / "correct_batchnorm.py").read_text()
    for old, new in (*EDITS, *extra):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "bias_before_norm.py"
    path.write_text(text)
    return path


def verify(path: Path, tmp_path: Path) -> tuple[int, dict, str]:
    report = tmp_path / "r.json"
    code = main(["verify", str(path), "--backends", "none", "--sandbox", "off", "--json",
                 str(report)])
    data = json.loads(report.read_text())
    return code, data["cases"][path.name]["backends"]["yours"], json.dumps(data)


def test_the_cancelled_bias_passes_judged_against_its_terms(tmp_path: Path, capsys) -> None:
    code, result, document = verify(submission(tmp_path), tmp_path)
    assert code == 0, capsys.readouterr().out
    (bias,) = [c for c in result["comparisons"] if (c["stage"], c["name"]) == ("grad", "b1")
               or (c["stage"], c["name"]) == ("grad", "dense1.b")]
    assert bias["passed"] and bias["note"].startswith(NOTE)
    assert CANCELLING in document


def test_a_real_error_in_the_cancelled_bias_still_fails(tmp_path: Path, capsys) -> None:
    wrong = ('"db1": dz1.sum(0)', '"db1": dz1.sum(0) + 1e-6')
    code, result, _ = verify(submission(tmp_path, wrong), tmp_path)
    assert code == 1, capsys.readouterr().out
    failing = [c for c in result["comparisons"] if not c["passed"]]
    assert failing and failing[0]["stage"] == "grad"
