"""Round trips of every layout conversion, and the NHWC/NCHW flatten permutation."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import edges, layout
from nnparity.backends.compare import REORDERED_FLOAT64
from nnparity.reference.spec import MLPSpec

RNG = np.random.default_rng(0)


def test_dense_weight_torch_is_the_transpose_and_keras_the_same() -> None:
    w = RNG.standard_normal((3, 5))  # [D_in, D_out]
    torch_w = layout.dense_weight_to_torch(w)
    assert torch_w.shape == (5, 3)
    np.testing.assert_array_equal(torch_w, w.T)
    np.testing.assert_array_equal(layout.dense_weight_from_torch(torch_w), w)
    keras_w = layout.dense_weight_to_keras(w)
    np.testing.assert_array_equal(keras_w, w)
    np.testing.assert_array_equal(layout.dense_weight_from_keras(keras_w), w)
    assert torch_w.flags.c_contiguous and not np.shares_memory(torch_w, w)


def test_bias_round_trip_to_the_declared_shape() -> None:
    b = RNG.standard_normal((1, 4))
    flat = layout.bias_to_framework(b)
    assert flat.shape == (4,)
    np.testing.assert_array_equal(layout.bias_from_framework(flat, (1, 4)), b)
    assert layout.bias_from_framework(flat, (4,)).shape == (4,)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_params_round_trip_by_name(framework: str) -> None:
    spec = MLPSpec(3, (4,), ("prelu",))
    params = {"W1": RNG.standard_normal((3, 4)), "b1": RNG.standard_normal((1, 4)),
              "a1": RNG.standard_normal(1)}
    for name, value in params.items():
        native = layout.to_framework(framework, name, value, spec)
        np.testing.assert_array_equal(layout.from_framework(framework, name, native, spec), value)
    with pytest.raises(ValueError, match="unknown framework"):
        layout.to_framework("mxnet", "W1", params["W1"], spec)


def test_images_and_kernels_round_trip() -> None:
    x = RNG.standard_normal((2, 5, 4, 3))  # NHWC
    nchw = layout.nhwc_to_nchw(x)
    assert nchw.shape == (2, 3, 5, 4)
    assert nchw[1, 2, 3, 1] == x[1, 3, 1, 2]
    np.testing.assert_array_equal(layout.nchw_to_nhwc(nchw), x)
    k = RNG.standard_normal((3, 2, 4, 6))  # HWIO
    oihw = layout.hwio_to_oihw(k)
    assert oihw.shape == (6, 4, 3, 2)
    assert oihw[5, 1, 2, 0] == k[2, 0, 1, 5]
    np.testing.assert_array_equal(layout.oihw_to_hwio(oihw), k)


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 1, 5), (3, 1, 1), (7, 7, 2)])
def test_dense_row_permutation_matches_flatten_orders(shape: tuple[int, int, int]) -> None:
    """A torch-style NCHW flatten times the permuted weight equals NHWC flatten times W."""
    h, w, c = shape
    x = RNG.standard_normal((3, h, w, c))
    weight = RNG.standard_normal((h * w * c, 5))
    permuted = layout.dense_rows_nhwc_to_nchw(weight, h, w, c)
    nchw_flat = layout.nhwc_to_nchw(x).reshape(3, -1)
    np.testing.assert_allclose(nchw_flat @ permuted, x.reshape(3, -1) @ weight,
                               rtol=REORDERED_FLOAT64)
    np.testing.assert_array_equal(layout.dense_rows_nchw_to_nhwc(permuted, h, w, c), weight)
    order = layout.nchw_flatten_order(h, w, c)
    np.testing.assert_array_equal(x.reshape(3, -1)[:, order], nchw_flat)


def test_dense_row_permutation_checks_the_row_count() -> None:
    with pytest.raises(ValueError, match="H\\*W\\*C"):
        layout.dense_rows_nhwc_to_nchw(np.zeros((10, 2)), 2, 2, 2)


@pytest.mark.torch
def test_row_permutation_with_torch_flatten_and_linear() -> None:
    import torch

    h, w, c = 3, 2, 4
    x = RNG.standard_normal((2, h, w, c))
    weight, bias = RNG.standard_normal((h * w * c, 3)), RNG.standard_normal((1, 3))
    linear = torch.nn.Linear(h * w * c, 3, dtype=torch.float64)
    with torch.no_grad():
        permuted = layout.dense_rows_nhwc_to_nchw(weight, h, w, c)
        linear.weight.copy_(torch.from_numpy(layout.dense_weight_to_torch(permuted)))
        linear.bias.copy_(torch.from_numpy(layout.bias_to_framework(bias)))
        got = linear(torch.flatten(torch.from_numpy(layout.nhwc_to_nchw(x)), 1)).numpy()
    np.testing.assert_allclose(got, x.reshape(2, -1) @ weight + bias, rtol=REORDERED_FLOAT64)


def test_labels_split_into_targets_and_indices() -> None:
    targets, indices = edges.split_labels("ce", np.array([2, 0]), 2, 3, "float32")
    np.testing.assert_array_equal(targets, [[0, 0, 1], [1, 0, 0]])
    assert targets.dtype == np.float32 and indices.dtype == np.int64
    one_hot = edges.split_labels("ce", np.eye(3)[[2, 0]], 2, 3, "float64")
    assert one_hot[1] is None and one_hot[0].shape == (2, 3)
    assert edges.split_labels("bce", np.array([1, 0]), 2, 1, "float64")[1] is None
    with pytest.raises(ValueError, match="outside"):
        edges.split_labels("ce", np.array([3, 0]), 2, 3, "float64")


def test_state_split_and_join_round_trip() -> None:
    state = {"t": np.array(3), "m.W1": np.ones((2, 2)), "v.W1": np.zeros((2, 2)),
             "m.b1": np.ones((1, 2)), "v.b1": np.zeros((1, 2))}
    t, slots = edges.split_state(state)
    assert t == 3 and set(slots) == {"W1", "b1"} and set(slots["W1"]) == {"m", "v"}
    joined = edges.join_state(t, slots, ["W1", "b1"])
    assert list(joined) == list(state)  # the reference's order
    momentum = {"v.W1": np.ones((2, 2))}
    assert list(edges.join_state(None, edges.split_state(momentum)[1], ["W1"])) == ["v.W1"]
    with pytest.raises(ValueError, match="unknown optimizer state"):
        edges.split_state({"W1": np.ones(1)})


def test_inputs_are_checked_and_cast() -> None:
    from nnparity.reference import MLPSpec

    spec = MLPSpec(3, (2,), ("identity",), "l2", dtype="float32")
    assert edges.as_input(spec, np.ones((4, 3))).dtype == np.float32
    with pytest.raises(ValueError, match="input_dim"):
        edges.as_input(spec, np.ones((4, 2)))
    with pytest.raises(ValueError, match="not a model spec"):
        edges.check_spec(object(), "torch")


def test_edge_modules_import_no_framework() -> None:
    """``layout``, ``edges`` and ``determinism`` are NumPy only; applying the
    profile imports no framework (frameworks imported later are configured by their backends)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from nnparity.backends import edges, layout\n"
        "from nnparity.backends.determinism import apply_determinism, describe\n"
        "profile = apply_determinism(threads=2, seed=3)\n"
        "info = describe()\n"
        "assert info['profile'] == {'seed': 3, 'threads': 2}, info\n"
        "assert info['TF_ENABLE_ONEDNN_OPTS'] == '0' and info['cpu']\n"
        "assert not {'torch', 'tensorflow', 'keras'} & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
