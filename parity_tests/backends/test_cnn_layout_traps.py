"""The two layout traps of porting a TensorFlow CNN to torch, each shown failing and then fixed.

1. Flatten order: TensorFlow flattens an NHWC map, torch an NCHW one. Copying ``fc1.W`` into
   ``nn.Linear`` with only the transpose (a "plain reshape") multiplies every feature by the
   wrong row; the rows must be permuted to NCHW flatten order (``layout.dense_rows_nhwc_to_nchw``).
2. SAME padding: TensorFlow pads ``total = max((out - 1) * s + k - n, 0)`` with the odd pixel at
   the bottom/right. torch's symmetric ``padding=k // 2`` shifts every stride-2 window (same
   shape, wrong values) and gives the wrong shape for an even kernel; ``padding='same'`` is
   refused at stride 2. An explicit asymmetric pad before a ``padding=0`` layer matches, for convs
   (zeros) and for max-pools (``-inf``) alike.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends import layout
from nnparity.backends.compare import compare_tensor, tolerance
from nnparity.reference import CNNSpec, ConvBlock
from nnparity.reference.conv import conv2d, padding_amounts
from nnparity.reference.family import init_params
from nnparity.reference.pool import maxpool2d

pytestmark = pytest.mark.torch

RNG = np.random.default_rng(5)


def _rel(actual: np.ndarray, expected: np.ndarray) -> float:
    tol = tolerance("float64", ("conv",))
    return compare_tensor("forward", "trap", actual, expected, tol).max_rel


def test_plain_reshape_of_fc1_breaks_torch_forward_parity() -> None:
    import torch

    from nnparity.backends.torch_backend import build_model
    from nnparity.reference.network import forward

    spec = CNNSpec.tiny()  # last feature map 2x2x4: NHWC and NCHW orders differ
    params = init_params(spec, seed=3)
    x = RNG.standard_normal((4, *spec.input_shape))
    expected = forward(spec, params, x).output
    model, named = build_model(spec, params)  # fc1 rows permuted NHWC -> NCHW by layout
    x_nchw = torch.from_numpy(layout.nhwc_to_nchw(x))
    with torch.no_grad():
        permuted = model(x_nchw).numpy()
        named["fc1.W"].copy_(torch.from_numpy(layout.dense_weight_to_torch(params["fc1.W"])))
        plain = model(x_nchw).numpy()
    print(f"fc1 rows permuted: max rel {_rel(permuted, expected):.1e}; "
          f"plain reshape: max rel {_rel(plain, expected):.1e}")
    assert _rel(permuted, expected) < tolerance("float64", ("conv",))
    assert _rel(plain, expected) > 0.05


def test_flatten_orders_on_a_2x2x2_map() -> None:
    """The table of docs/conventions.md: NHWC flatten index -> NCHW flatten index of each cell."""
    order = layout.nchw_flatten_order(2, 2, 2)  # flat_nchw = flat_nhwc[order]
    np.testing.assert_array_equal(order, [0, 2, 4, 6, 1, 3, 5, 7])
    x = np.arange(8).reshape(1, 2, 2, 2)  # value = NHWC flatten index
    np.testing.assert_array_equal(layout.nhwc_to_nchw(x).reshape(-1), order)


def _torch_conv(x: np.ndarray, k: np.ndarray, stride: int, padding: int | str,
                explicit: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """torch ``F.conv2d`` on NHWC/HWIO arrays, optionally after ``F.pad(explicit)``."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(layout.nhwc_to_nchw(x))
    if explicit is not None:
        t = F.pad(t, explicit)
    out = F.conv2d(t, torch.from_numpy(layout.hwio_to_oihw(k)), stride=stride, padding=padding)
    return layout.nchw_to_nhwc(out.numpy())


@pytest.mark.parametrize(("kernel", "stride"), [(3, 2), (5, 2), (4, 1), (2, 1)])
def test_symmetric_padding_differs_from_tensorflow_same(kernel: int, stride: int) -> None:
    x = RNG.standard_normal((2, 8, 8, 3))
    k = RNG.standard_normal((kernel, kernel, 3, 2))
    expected = conv2d(x, k, None, stride, "SAME")  # TensorFlow's rule (reference.conv)
    (top, bottom), (left, right) = padding_amounts((8, 8), (kernel, kernel), stride, "SAME")
    assert (top, left) != (bottom, right)  # asymmetric: the extra pixel bottom/right
    symmetric = _torch_conv(x, k, stride, kernel // 2)
    assert symmetric.shape != expected.shape or _rel(symmetric, expected) > 0.05
    if stride > 1:
        with pytest.raises(RuntimeError, match="not supported for strided"):
            _torch_conv(x, k, stride, "same")
    explicit = _torch_conv(x, k, stride, 0, explicit=(left, right, top, bottom))
    assert _rel(explicit, expected) < 1e-14


def test_symmetric_pool_padding_differs_from_tensorflow_same() -> None:
    """A 2x2/2 SAME pool on a 9x8 map pads one row at the bottom (``-inf``): 5x4 windows.
    torch's ``MaxPool2d(2, 2)`` gives 4x4; ``padding=1`` pads both sides and shifts the windows."""
    import torch
    import torch.nn.functional as F

    x = RNG.standard_normal((2, 9, 8, 3))
    expected = maxpool2d(x, 2, 2, "SAME")
    t = torch.from_numpy(layout.nhwc_to_nchw(x))
    assert F.max_pool2d(t, 2, 2).shape[2:] == (4, 4) != expected.shape[1:3]
    shifted = layout.nchw_to_nhwc(F.max_pool2d(t, 2, 2, padding=1).numpy())
    assert shifted.shape != expected.shape or _rel(shifted, expected) > 0.05
    explicit = F.max_pool2d(F.pad(t, (0, 0, 0, 1), value=-np.inf), 2, 2)
    assert _rel(layout.nchw_to_nhwc(explicit.numpy()), expected) == 0.0


def test_backend_blocks_pad_like_tensorflow() -> None:
    """The torch backend's own modules: explicit pads exactly where TensorFlow's SAME is
    asymmetric (and the whole net then matches, in ``test_cnn_parity``)."""
    from torch import nn

    from nnparity.backends.torch_backend import TorchNetwork

    spec = CNNSpec.tiny(input_shape=(9, 8, 2), conv=(ConvBlock(3, 3), ConvBlock(4, 3, 2)))
    layers = zip(spec.net, TorchNetwork(spec).layers, strict=True)
    modules = {layer.name: module for layer, module in layers if layer.role != "activation"}
    first, pool, second = modules["conv1"], modules["pool1"], modules["conv2"]
    assert isinstance(first.pad, nn.Identity) and first.conv.padding == (1, 1)  # 9x8, s1
    assert pool.pad.padding == (0, 0, 0, 1)  # pool on 9x8: one -inf row at the bottom
    assert pool.pad.value == -np.inf
    assert second.pad.padding == (0, 1, 1, 1) and second.conv.padding == (0, 0)  # 5x4, s2


def test_dropout_right_after_the_flatten_needs_a_permuted_mask() -> None:
    """Without a hidden dense layer the mask ``[N, H*W*C]`` multiplies torch's NCHW flatten:
    the dropout module picks its columns permuted like ``fc1``'s rows (a bug found by the
    random-spec parity test); the columns in canonical order give another function."""
    import torch

    from nnparity.backends.torch_backend import build_model
    from nnparity.reference.dropout import draw_dropout_mask
    from nnparity.reference.network import forward

    spec = CNNSpec.tiny(dense=())
    params = init_params(spec, seed=6)
    x = RNG.standard_normal((3, *spec.input_shape))
    mask = draw_dropout_mask(spec, 3, 6)
    expected = forward(spec, params, x, dropout_mask=mask).output
    model, _ = build_model(spec, params)
    dropout = model.layers[[layer.name for layer in spec.net].index("dropout")]
    x_nchw = torch.from_numpy(layout.nhwc_to_nchw(x))
    with torch.no_grad():
        permuted = model(x_nchw, torch.from_numpy(mask)).numpy()
        dropout.index = torch.arange(spec.dropout_units)  # the canonical (NHWC) order
        unpermuted = model(x_nchw, torch.from_numpy(mask)).numpy()
    assert _rel(unpermuted, expected) > 0.05
    assert _rel(permuted, expected) < tolerance("float64", ("conv",))
