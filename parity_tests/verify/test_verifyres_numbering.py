"""verify checks a network with a residual block: the block's dense and conv layers are numbered
with the outer ones in forward order (``W1, b1, ...`` as the learner sees them), and their
``z``, delta and gradients are compared like any other layer's; a block with a
projection, or a block holding other parameters, is exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from verifyres_learner import BLOCK, DECLARED, DENSE, SPEC, learner

from nnparity.cli import main
from nnparity.errors import InputError
from nnparity.reference.family import spec_from_dict
from nnparity.teach.exercises import verify_file
from nnparity.verify.adapters import build_adapter
from nnparity.verify.netview import ParamLayer, param_layers


def test_the_blocks_layers_are_numbered_with_the_outer_ones_in_forward_order() -> None:
    layers = param_layers(spec_from_dict(SPEC))
    assert layers == [ParamLayer(i, f"dense{i}", f"dense{i}.W", "dense", f"dense{i}.b")
                      for i in range(1, 5)]


def test_a_conv_block_is_numbered_as_conv_layers() -> None:
    conv = {"kind": "conv2d", "filters": 2, "kernel": 3, "padding": "same"}
    spec = spec_from_dict({"input_shape": [4, 4, 2], "loss": "ce", "net": [
        {"kind": "residual", "net": [conv, {"kind": "relu"}, conv]}, {"kind": "flatten"},
        {"kind": "dense", "units": 3}]})
    assert [(e.index, e.name, e.kind) for e in param_layers(spec)] == [
        (1, "conv1", "conv"), (2, "conv2", "conv"), (3, "dense1", "dense")]


def test_a_right_submission_passes_with_the_blocks_tensors_compared(tmp_path: Path) -> None:
    code, result = verify_file(learner(tmp_path, "right"))
    assert (code, result["status"]) == (0, "pass"), result
    compared = {(c["stage"], c["name"]) for c in result["comparisons"]}
    for inner in ("dense2", "dense3"):
        assert {("forward", f"z.{inner}"), ("delta", inner), ("grad", f"{inner}.W"),
                ("grad", f"{inner}.b")} <= compared


def test_a_wrong_inner_bias_gradient_fails_at_it(tmp_path: Path) -> None:
    """The block's second dense layer's bias gradient (``db3``) taken from the wrong delta:
    everything else matches."""
    path = learner(tmp_path, "inner_db", (("[d.sum(axis=0) for d in deltas]",
                                           "[d.sum(axis=0) for d in (d1, d2, d2, d4)]"),))
    code, result = verify_file(path)
    assert code == 1
    assert "grad of dense3.b differs" in result["first_divergence"], result


def test_the_learner_gets_the_blocks_weights_as_W2_and_W3(tmp_path: Path) -> None:
    """Swapping the learner's W2 and W3 (both 4 x 4) breaks the block's forward."""
    declared = {**DECLARED, "forward": "forward(x, [W1, W3, W2, W4], [b1, b3, b2, b4])"}
    code, result = verify_file(learner(tmp_path, "swapped", declared=declared))
    assert code == 1 and "forward of z.dense2 differs" in result["first_divergence"], result


@pytest.mark.parametrize("block, named", [
    ({**BLOCK, "projection": True}, "residual with a projection"),
    ({"kind": "residual", "net": [DENSE, {"kind": "prelu"}]}, "in residual block"),
    ({"kind": "residual", "net": [DENSE, {"kind": "batchnorm"}]}, "in residual block"),
])
def test_a_block_verify_cannot_hand_over_is_exit_2(tmp_path: Path, capsys, block, named):
    spec = {**SPEC, "net": [DENSE, {"kind": "tanh"}, block, {"kind": "dense", "units": 2}]}
    with pytest.raises(InputError, match=named):
        build_adapter({**DECLARED, "spec": spec}, None, "test")
    path = learner(tmp_path, "refused", declared={**DECLARED, "spec": spec})
    assert main(["verify", str(path), "--backends", "none", "--sandbox", "off"]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
