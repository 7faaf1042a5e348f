"""Flax models with ``gelu`` and ``avg_pool``: a Sequential of ``nnx.gelu`` (JAX's default,
the tanh form), a ``functools.partial`` of it with ``approximate=False``, and
``nnx.avg_pool`` maps layer for layer onto a ``net`` list and matches the reference."""

from __future__ import annotations

import functools

import pytest

import nnparity

nnx = pytest.importorskip("flax.nnx", reason="flax is not installed: pip install nnparity[all]")


def flatten(x):
    return x.reshape(x.shape[0], -1)


def test_a_flax_net_with_gelu_and_avg_pool_matches():
    model = nnx.Sequential(
        nnx.Conv(1, 2, (3, 3), padding="SAME", rngs=nnx.Rngs(0)),
        functools.partial(nnx.gelu, approximate=False),
        functools.partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2)), flatten,
        nnx.Linear(4 * 4 * 2, 5, rngs=nnx.Rngs(1)), nnx.gelu,
        nnx.Linear(5, 3, rngs=nnx.Rngs(2)))
    report = nnparity.check_model(model, loss="ce", input_shape=(8, 8, 1))
    assert report.ok, report.table()
    net = report.results[0].spec["net"]
    assert [(layer["kind"], layer.get("approximate")) for layer in net
            if layer["kind"] in ("gelu", "avgpool")] \
        == [("gelu", "none"), ("avgpool", None), ("gelu", "tanh")]
