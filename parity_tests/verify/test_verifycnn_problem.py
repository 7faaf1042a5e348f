"""verify builds a CNN's problem from the spec's layer list: the layouts a learner declares
(``maps``, ``kernel``, ``flatten``) convert both ways, messages show the learner's own shapes,
and a declaration that cannot apply is exit 2."""

from __future__ import annotations

import numpy as np
import pytest
from planted_bugs import EXAMPLES, Planted

from nnparity.backends.compare import REORDERED_FLOAT64
from nnparity.backends.layout import nchw_flatten_order
from nnparity.cli import main
from nnparity.errors import InputError
from nnparity.reference import network
from nnparity.verify.adapters import build_adapter, read_declaration
from nnparity.verify.layout import learner_index, to_canonical, user_inputs
from nnparity.verify.problem import make_problem, reference_tensors

DECLARED = read_declaration(EXAMPLES / "correct_cnn_loops.py")


def adapter(**layouts):
    return build_adapter({**DECLARED, **layouts}, None, "test")


@pytest.mark.parametrize("layouts", [{}, {"maps": "NCHW"}, {"kernel": "OIHW"},
                                     {"maps": "NCHW", "kernel": "OIHW", "flatten": "NHWC"},
                                     {"maps": "NHWC", "flatten": "NCHW"}])
def test_the_learners_inputs_compute_the_reference(layouts):
    """The NCHW/OIHW inputs, run through a plain NumPy forward in the declared layouts, give
    the reference's output; the flatten order fixes the rows of the dense weight."""
    ad = adapter(**layouts)
    problem = make_problem(ad.spec, 0, 5, edges=False)
    inputs = user_inputs(ad, problem.params, problem.x, problem.y)
    nchw = ad.maps == "NCHW"
    assert inputs["x"].shape == ((5, 2, 5, 5) if nchw else (5, 5, 5, 2))
    assert inputs["W1"].shape == ((3, 2, 3, 3) if ad.kernel == "OIHW" else (3, 3, 2, 3))
    trace = network.forward(ad.spec, problem.params, problem.x)
    pooled = trace.h["pool1"]  # NHWC [5, 3, 3, 4]
    flat = (pooled.transpose(0, 3, 1, 2) if ad.flatten == "NCHW" else pooled).reshape(5, -1)
    np.testing.assert_allclose(flat @ inputs["W3"] + inputs["b3"], trace.output,
                               rtol=REORDERED_FLOAT64)


@pytest.mark.parametrize("layouts", [{"maps": "NCHW", "kernel": "OIHW"},
                                     {"maps": "NHWC", "flatten": "NCHW"}])
def test_results_in_the_declared_layout_come_back_canonical(layouts):
    ad = adapter(**layouts)
    problem = make_problem(ad.spec, 0, 5, edges=False)
    reference = reference_tensors(problem)
    learner = user_inputs(ad, {**problem.params, "conv1.W": reference[("grad", "conv1.W")],
                               "dense1.W": reference[("grad", "dense1.W")]},
                          problem.x, problem.y)
    raw = {"dW/1": learner["W1"], "dW/3": learner["W3"],
           "z/1": user_inputs(ad, problem.params, reference[("forward", "z.conv1")],
                              problem.y)["x"]}
    back = to_canonical(ad, raw, problem.n)
    for key in (("grad", "conv1.W"), ("grad", "dense1.W"), ("forward", "z.conv1")):
        assert np.array_equal(back[key], reference[key]), key


def test_nchw_flatten_rows_are_the_backends_order():
    ad = adapter(flatten="NCHW")
    problem = make_problem(ad.spec, 0, 5, edges=False)
    user = user_inputs(ad, problem.params, problem.x, problem.y)["W3"]
    assert np.array_equal(user, problem.params["dense1.W"][nchw_flatten_order(3, 3, 4)])


def test_map_layouts_on_a_network_without_maps_are_exit_2(tmp_path, capsys):
    code = main(["verify", str(EXAMPLES / "correct_class_row.py"), "--backends", "none",
                 "--adapter", '{"maps": "NCHW"}'])
    assert code == 2
    assert "maps declared, but the spec's network has no feature maps" in capsys.readouterr().err


@pytest.mark.parametrize("key, value", [("maps", "CHW"), ("kernel", "HWOI"), ("flatten", 1)])
def test_an_unknown_layout_is_named(key, value):
    with pytest.raises(InputError, match=f"{key} must be one of"):
        adapter(**{key: value})


def test_a_spec_with_parameters_verify_cannot_hand_over_is_exit_2():
    spec = {"input_shape": [4], "loss": "ce", "net": [
        {"kind": "dense", "units": 3},
        {"kind": "residual", "projection": True, "net": [{"kind": "dense", "units": 3}]},
        {"kind": "dense", "units": 2}]}
    with pytest.raises(InputError, match="cannot hand to your code"):
        build_adapter({**DECLARED, "spec": spec, "maps": "NHWC"}, None, "test")


def test_a_shape_mismatch_is_told_in_the_learners_layout(tmp_path, capsys):
    """A conv layer's z exposed NHWC where the declaration says NCHW: the message shows the
    learner's shape and the declared NCHW one, not the reference's NHWC."""
    bug = Planted("correct_cnn_loops",
                  (('"z": ["model.z1",', '"z": ["model.z1.transpose(0, 2, 3, 1)",'),),
                  ("forward", "z.conv1"), "shape")
    path = bug.write(tmp_path, "nhwc_z")
    assert main(["verify", str(path), "--backends", "none"]) == 1
    out = capsys.readouterr().out
    assert "shape (5, 5, 5, 3) != (5, 3, 5, 5)" in out
    assert "Your forward z.conv1 has shape (5, 5, 5, 3); your declaration's layout asks for " \
           "(5, 3, 5, 5)" in " ".join(out.split())


def test_a_cnn_passes_beside_the_frameworks(capsys):
    pytest.importorskip("torch", reason="torch is not installed")
    code = main(["verify", str(EXAMPLES / "correct_cnn_loops.py"), "--backends", "torch"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "torch" in out and "2 passed, 0 failed" in out


def test_where_they_differ_most_is_indexed_in_nchw(tmp_path, capsys):
    bug = Planted("correct_cnn_loops",
                  (('self.z1 = conv2d(x, p["W1"], p["b1"], 1)',
                    'self.z1 = conv2d(x, p["W1"], p["b1"], 1)\n        self.z1[0, 2, 1, 3] += 1'),),
                  ("forward", "z.conv1"), "")
    assert main(["verify", str(bug.write(tmp_path, "one_entry")), "--backends", "none"]) == 1
    assert "at (0, 2, 1, 3): yours" in capsys.readouterr().out


def test_learner_index_follows_the_flatten_order_and_the_kernel_layout():
    ad = adapter(flatten="NCHW", kernel="OIHW")
    order = nchw_flatten_order(3, 3, 4)
    row = int(order[7])
    assert learner_index(ad, ("grad", "dense1.W"), (36, 3), [row, 1]) == [7, 1]
    assert learner_index(ad, ("grad", "conv1.W"), (3, 3, 2, 3), [0, 1, 1, 2]) == [2, 1, 0, 1]


def test_a_cnn_spec_by_its_family_fields_is_the_same_problem(capsys):
    """The im2col example declared as the CNN family's fields (conv blocks, classes) instead of
    a layer list: the same layers with parameters, the same verdict."""
    spec = ('{"family": "cnn", "input_shape": [5, 5, 2], "classes": 3, "reduction": "mean", '
            '"conv": [{"filters": 3, "kernel": 3, "pool": 0}, {"filters": 4, "kernel": 3}]}')
    code = main(["verify", str(EXAMPLES / "correct_cnn_im2col.py"), "--backends", "none",
                 "--edge-cases", "off", "--spec", spec])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "grad     fc1.W" in out and "all 20 tensors you expose match" in out
