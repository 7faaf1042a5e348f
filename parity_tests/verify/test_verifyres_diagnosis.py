"""``residual-skip-gradient``: a residual block's backward that leaves the skip path's gradient
out is named, confirmed by the reference with the mistake built in
(:mod:`nnparity.verify.residual_mistakes`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from verifyres_learner import SPEC, learner

from nnparity.backends.compare import REORDERED_FLOAT64
from nnparity.reference import network
from nnparity.reference.family import init_params, spec_from_dict
from nnparity.teach.exercises import verify_file
from nnparity.verify.diagnose import CODES
from nnparity.verify.residual_mistakes import skip_gradient_missing


def test_the_missing_skip_gradient_is_named(tmp_path: Path) -> None:
    path = learner(tmp_path, "no_skip", (("dh1 = d2 @ W[1].T + dh3", "dh1 = d2 @ W[1].T"),))
    code, result = verify_file(path)
    assert code == 1 and result["first_divergence"].startswith(
        "forward and loss match; delta of dense1 differs"), result
    assert [d["code"] for d in result["diagnosis"]] == ["residual-skip-gradient"], result
    assert "+ dL/dy" in result["diagnosis"][0]["message"]


def test_another_mistake_below_the_block_is_not_called_a_missing_skip_gradient(
        tmp_path: Path) -> None:
    """The first layer's delta wrong in another way (its tanh derivative taken on z): not this
    diagnosis."""
    path = learner(tmp_path, "other", (("d1 = dh1 * (1 - h1 ** 2)", "d1 = dh1 * (1 - z1 ** 2)"),))
    code, result = verify_file(path)
    assert code == 1
    assert "residual-skip-gradient" not in [d["code"] for d in result["diagnosis"]], result


def test_the_variant_changes_only_what_lies_below_the_block() -> None:
    spec = spec_from_dict(SPEC)
    rng = np.random.default_rng(0)
    params = init_params(spec, seed=0)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    variant = skip_gradient_missing(spec)
    assert variant is not None and "residual-skip-gradient" in CODES
    trace = network.forward(spec, params, x)
    right = network.backward(spec, params, x, trace, y)
    wrong = network.backward(variant, params, x, trace, y)
    for name in ("dense2", "dense3", "dense4"):
        np.testing.assert_array_equal(wrong.deltas[name], right.deltas[name])
    # dL/dh1 = through f + dy: without dy, delta1 = (dL/dh1 - dy) * tanh'
    dy = right.deltas["dense4"] @ params["dense4.W"].T
    h1 = np.tanh(trace.z["dense1"])
    np.testing.assert_allclose(wrong.deltas["dense1"],
                               right.deltas["dense1"] - dy * (1 - h1 ** 2), atol=REORDERED_FLOAT64)


def test_a_network_without_a_block_has_no_variant() -> None:
    spec = spec_from_dict({**SPEC, "net": [SPEC["net"][0], {"kind": "dense", "units": 2}]})
    assert skip_gradient_missing(spec) is None
