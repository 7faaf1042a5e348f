"""Flax NNX layers beside batch normalisation, traced from a module's own ``__call__``:
``nnx.LayerNorm`` (Flax's epsilon, 1e-6 by default, read) with the exact ``jax.nn.gelu``,
``flax.linen.avg_pool`` and ``x.mean(axis=(1, 2))`` (a global average pool), a residual block
with a projection (``self.proj(h) + f(h)``), a Sequential whose item averages over H and W;
a sum that is no residual block is refused naming it."""

from __future__ import annotations

import pytest

import nnparity

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx", reason="flax is not installed: pip install nnparity[all]")
linen = pytest.importorskip("flax.linen")
jnp = jax.numpy


class Normed(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.fc1 = nnx.Linear(4, 6, rngs=rngs)
        self.norm = nnx.LayerNorm(6, rngs=rngs)
        self.proj = nnx.Linear(6, 5, rngs=rngs)
        self.fc2 = nnx.Linear(6, 5, rngs=rngs)
        self.out = nnx.Linear(5, 3, rngs=rngs)

    def __call__(self, x):
        h = self.norm(jax.nn.gelu(self.fc1(x), approximate=False))
        return self.out(self.proj(h) + nnx.tanh(self.fc2(h)))


class Pooled(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv = nnx.Conv(2, 3, (3, 3), padding="SAME", rngs=rngs)
        self.fc = nnx.Linear(3, 3, rngs=rngs)

    def __call__(self, x):
        h = linen.avg_pool(nnx.relu(self.conv(x)), (2, 2), strides=(2, 2), padding="SAME")
        return self.fc(h.mean(axis=(1, 2)))


def _net(report: nnparity.Report) -> list[dict]:
    return report.results[0].spec["net"]


def test_layernorm_exact_gelu_and_a_projected_residual_match() -> None:
    report = nnparity.check_model(Normed(nnx.Rngs(0)), loss="ce")
    assert report.ok, report.table()
    net = _net(report)
    assert [entry["kind"] for entry in net] == ["dense", "gelu", "layernorm", "residual",
                                                "dense"]
    assert net[1]["approximate"] == "none" and net[2]["epsilon"] == 1e-6
    assert net[3]["projection"] is True


def test_linen_avg_pool_and_a_mean_over_h_and_w_match() -> None:
    report = nnparity.check_model(Pooled(nnx.Rngs(0)), loss="ce", input_shape=(5, 5, 2))
    assert report.ok, report.table()
    net = _net(report)
    assert [entry["kind"] for entry in net] == ["conv2d", "relu", "avgpool", "global_avgpool",
                                                "dense"]
    assert net[2]["padding"] == "SAME" and net[2]["count_include_pad"] is True


def test_a_sequential_item_averaging_over_h_and_w_is_a_global_average_pool() -> None:
    model = nnx.Sequential(nnx.Conv(2, 3, (3, 3), rngs=nnx.Rngs(0)), nnx.tanh,
                           lambda x: jnp.mean(x, axis=(1, 2)), nnx.Linear(3, 3, rngs=nnx.Rngs(1)))
    report = nnparity.check_model(model, loss="ce", input_shape=(5, 5, 2))
    assert report.ok, report.table()
    assert [entry["kind"] for entry in _net(report)] == ["conv2d", "tanh", "global_avgpool",
                                                        "dense"]


def test_a_sum_that_is_no_residual_block_is_refused_naming_it() -> None:
    class Doubled(Normed):
        def __call__(self, x):
            h = nnx.relu(self.fc1(x))
            return self.out(self.fc2(h + h))

    with pytest.raises(nnparity.InputError, match=r"an addition \(\+\) in __call__: a sum that "
                                                  r"is not x \+ f\(x\)"):
        nnparity.check_model(Doubled(nnx.Rngs(0)), loss="ce")
