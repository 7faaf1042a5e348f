"""The ``gelu`` and ``avgpool`` layer kinds in the reference: the NumPy-only ``erf`` against
``math.erf``, GELU's two forms at known values, average pooling by hand, and the refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnparity.reference.erf import erf
from nnparity.reference.layers import make_layer
from nnparity.reference.layers.avgpool import avgpool2d, avgpool2d_backward
from nnparity.reference.layers.base import Run
from nnparity.reference.netspec import NetSpec

RUN = Run(np.dtype("float64"))


def test_erf_is_float64_accurate_against_math_erf() -> None:
    """Relative error at most 1e-15 over [-7, 7] (every branch: series, fraction, +-1; 0 not on
    the grid) and on tiny arguments; erf(0) = 0, non-finite inputs give +-1 and nan."""
    x = np.concatenate([np.linspace(-7, 7, 140000), np.geomspace(1e-300, 1e-2, 500),
                        -np.geomspace(1e-300, 1e-2, 500)])
    expected = np.array([math.erf(v) for v in x])
    rel = np.abs(erf(x) - expected) / np.abs(expected)
    assert rel.max() <= 1e-15, f"erf max rel {rel.max():.2e} at {x[rel.argmax()]}"
    assert erf(np.array([0.0, np.inf, -np.inf])).tolist() == [0.0, 1.0, -1.0]
    assert np.isnan(erf(np.array([np.nan]))).all()


@pytest.mark.parametrize(("form", "value", "slope"), [
    # exact: 0.5 z (1 + erf(z / sqrt 2)) and Phi(z) + z phi(z) at z = 1
    ("none", 0.5 * (1 + math.erf(1 / math.sqrt(2))),
     0.5 * (1 + math.erf(1 / math.sqrt(2))) + math.exp(-0.5) / math.sqrt(2 * math.pi)),
    # tanh: u = sqrt(2/pi) (1 + 0.044715), slope 0.5 (1 + tanh u) + 0.5 (1 - tanh^2 u) u'
    ("tanh", 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715)),
     0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))
     + 0.5 * (1 - math.tanh(math.sqrt(2 / math.pi) * 1.044715) ** 2)
     * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715)),
])
def test_gelu_forms_at_one(form: str, value: float, slope: float) -> None:
    layer = make_layer("gelu", "dense1", approximate=form)
    z = np.array([[1.0]])
    y, cache = layer.forward(z, {}, RUN)
    dz, _ = layer.backward(np.ones_like(z), z, y, cache, {}, RUN, True)
    assert y[0, 0] == pytest.approx(value, rel=1e-15)
    assert dz[0, 0] == pytest.approx(slope, rel=1e-15)


def test_the_two_gelu_forms_differ() -> None:
    """The convention trap: tanh is not the exact GELU (about 1e-4 apart near z = 2)."""
    z = np.linspace(-3, 3, 61)[None]
    exact, tanh = (make_layer("gelu", "d", approximate=f).forward(z, {}, RUN)[0]
                   for f in ("none", "tanh"))
    assert 1e-4 < np.max(np.abs(exact - tanh)) < 1e-3


def test_avgpool_by_hand() -> None:
    """A 2x2 window, stride 1, on a 3x3 map: each output the mean of its window; backward
    spreads each upstream value over its window in quarters, overlaps adding up."""
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    assert avgpool2d(x, 2, 1)[0, :, :, 0].tolist() == [[2.0, 3.0], [5.0, 6.0]]
    dx = avgpool2d_backward(np.ones((1, 2, 2, 1)), x, 2, 1)
    assert dx[0, :, :, 0].tolist() == [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]


def test_avgpool_names_and_shapes() -> None:
    spec = NetSpec((9, 9, 2), [{"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 1,
                                "padding": "valid"}, {"kind": "gelu"},
                               {"kind": "avgpool", "size": 2}, {"kind": "avgpool", "size": 3},
                               {"kind": "flatten"}, {"kind": "dense", "units": 2}])
    assert [layer.name for layer in spec.net] == ["conv1", "conv1", "avgpool1", "avgpool2",
                                                 "flatten1", "dense1"]
    assert spec.layer_shapes[3] == (3, 3, 3) and spec.layer_shapes[4] == (1, 1, 3)
    assert NetSpec.from_dict(spec.to_dict()).net == spec.net


@pytest.mark.parametrize(("kind", "fields", "message"), [
    ("avgpool", {"padding": "full"}, "avgpool padding must be 'valid' or 'same', got 'full'"),
    ("avgpool", {"size": 0}, "size must be a positive integer"),
    ("gelu", {"approximate": "erf"}, "unknown gelu approximate 'erf'; known: none, tanh"),
])
def test_bad_fields_are_refused(kind: str, fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_layer(kind, "x1", **fields)
