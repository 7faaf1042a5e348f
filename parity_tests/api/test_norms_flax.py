"""Flax's SAME ``nnx.avg_pool``: its ``count_include_pad`` (True by flax's default: the padded
cells counted, as torch) read and matched by the reference, on an input whose SAME padding is
asymmetric (7x7, window 2, stride 2: the extra row and column at the bottom/right)."""

from __future__ import annotations

import functools

import pytest

import nnparity

nnx = pytest.importorskip("flax.nnx", reason="flax is not installed: pip install nnparity[all]")


def flatten(x):
    return x.reshape(x.shape[0], -1)


@pytest.mark.parametrize("counted", [None, True, False])
def test_a_same_flax_avg_pool_matches(counted: bool | None) -> None:
    given = {} if counted is None else {"count_include_pad": counted}
    model = nnx.Sequential(
        nnx.Conv(1, 2, (3, 3), padding="SAME", rngs=nnx.Rngs(0)), nnx.tanh,
        functools.partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2), padding="SAME",
                          **given),
        flatten, nnx.Linear(4 * 4 * 2, 3, rngs=nnx.Rngs(1)))
    report = nnparity.check_model(model, loss="ce", input_shape=(7, 7, 1))
    assert report.ok, report.table()
    (pool,) = [layer for layer in report.results[0].spec["net"] if layer["kind"] == "avgpool"]
    assert pool["padding"] == "SAME"
    assert pool.get("count_include_pad", False) is (counted is not False)
