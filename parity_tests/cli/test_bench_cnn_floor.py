"""The CNN table's floor row (``numpy GEMMs + Adam``) does every matrix product of the step it
bounds, at the reference's shapes, and the reference's Adam update."""

import numpy as np
import pytest

from nnparity.bench import cnn_floor
from nnparity.bench.speed import CNN_BATCH, cnn_step_flops
from nnparity.reference import CNNSpec, Optimizer, init_params
from nnparity.reference.cnn_spec import ConvBlock

SPECS = {
    "notes": CNNSpec.seed002(),
    "tiny": CNNSpec.tiny(),
    "stride2-valid-rgb": CNNSpec(input_shape=(17, 15, 3),
                                 conv=(ConvBlock(4, 3, stride=2, padding="VALID"),
                                       ConvBlock(6, 3, pool=0), ConvBlock(5, 2, pool=3)),
                                 dense=(7, 5), classes=4),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_the_floor_does_the_steps_flops(name):
    spec = SPECS[name]
    found = cnn_floor.products(spec, CNN_BATCH)
    assert sum(p.flops for p in found) == cnn_step_flops(spec)
    for product in found:
        product.run()
        assert product.out.shape == (product.a.shape[0], product.b.shape[1])


def _input_gradient_gemms(spec: CNNSpec, batch: int) -> list[cnn_floor.Product]:
    """The tiny CNN's conv2 input-gradient GEMMs: ``dz [rows*4*4, 4] @ W[p, q].T [4, 3]``."""
    return [p for p in cnn_floor.products(spec, batch) if p.b.shape == (4, 3)]


def test_the_input_gradient_gemms_are_chunked_as_the_reference_chunks_them(monkeypatch):
    spec = CNNSpec.tiny()
    assert len(_input_gradient_gemms(spec, 10)) == 9  # 3x3 offsets, one chunk of 10 samples
    values_per_sample = 4 * 4 * 3 * 3 * 3  # conv2's dcols: Ho*Wo*kh*kw*C
    monkeypatch.setattr("nnparity.reference.conv.DCOLS_CHUNK", 3 * values_per_sample)
    gemms = _input_gradient_gemms(spec, 10)
    assert len(gemms) == 9 * 4  # chunks of 3, 3, 3 and 1 samples
    assert [g.a.shape[0] for g in gemms[::9]] == [48, 48, 48, 16]


def test_the_floor_step_updates_the_parameters_with_adam():
    spec = CNNSpec.tiny(dtype="float32")
    params = {k: np.asarray(v, np.float32) for k, v in init_params(spec, seed=0).items()}
    before = {k: v.copy() for k, v in params.items()}
    cnn_floor.floor_step(spec, 4, Optimizer("adam", lr=1e-2), params)()
    for name, value in params.items():
        assert value.dtype == np.float32
        assert not np.array_equal(value, before[name]), name
