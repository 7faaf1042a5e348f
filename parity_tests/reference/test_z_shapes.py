"""``spec.z_shapes``: each layer with parameters' ``z`` shape per sample, from the layer list
alone (the JAX backend shapes its delta probes with it instead of tracing the model twice),
against the shapes the reference's forward pass gives; and a probe of the wrong shape raises
instead of broadcasting."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.parity import cases
from nnparity.reference import network
from nnparity.reference.family import init_params
from nnparity.reference.netspec import NetSpec

RESIDUAL_MAP = {
    "input_shape": [6, 6, 2], "loss": "ce", "reduction": "mean",
    "net": [{"kind": "residual", "projection": True,
             "net": [{"kind": "conv2d", "filters": 3, "kernel": 3}, {"kind": "tanh"}]},
            {"kind": "batchnorm"}, {"kind": "avgpool", "size": 2},
            {"kind": "residual", "net": [{"kind": "conv2d", "filters": 3, "kernel": 3},
                                         {"kind": "gelu"}]},
            {"kind": "flatten"}, {"kind": "dense", "units": 6},
            {"kind": "residual", "projection": True,
             "net": [{"kind": "dense", "units": 5}, {"kind": "layernorm"}]},
            {"kind": "dense", "units": 4}]}
SPECS = [case.spec for case in cases.select("default")] + [NetSpec(**RESIDUAL_MAP)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: type(s).__name__)
def test_z_shapes_are_the_shapes_of_the_forward_pass(spec) -> None:
    x = np.random.default_rng(0).standard_normal((3, *spec.input_shape)).astype(spec.dtype)
    trace = network.forward(spec, init_params(spec, seed=0), x)
    assert list(spec.z_shapes) == spec.layer_names == list(trace.z)
    assert {name: (3, *shape) for name, shape in spec.z_shapes.items()} == {
        name: z.shape for name, z in trace.z.items()}


def test_a_probe_of_another_shape_raises() -> None:
    pytest.importorskip("jax")
    import jax.numpy as jnp

    from nnparity.backends.jax_backend import _probe

    z = jnp.zeros((3, 4))
    assert _probe({"dense1": jnp.zeros((3, 4))}, "dense1", z).shape == (3, 4)
    with pytest.raises(ValueError, match=r"layer 'dense1': z has shape \[3, 4\], the spec "
                                         r"says \[3, 1\]"):
        _probe({"dense1": jnp.zeros((3, 1))}, "dense1", z)
