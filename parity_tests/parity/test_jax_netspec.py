"""The JAX backend on networks written as layer lists (``NetSpec``) against the reference.

Two nets: issue 21's conv net (conv2d 3x3 SAME, relu, maxpool, flatten, dense, sigmoid, dropout,
dense) and a flat net with shared and per-unit PReLU, leaky relu, a dense layer without bias,
tanh and dropout. Every tensor is compared with a dropout mask given: forward ``z``/``h`` of every
layer, the loss, every delta and gradient, then one SGD, one momentum and one Adam step (the
parameters and the optimiser state after it), at ``max rel <= 1e-12`` in float64 and
``compare.tolerance("float32")`` in float32. Parameters are perturbed from their initial values
so that biases are non-zero and per-unit slopes differ from unit to unit. The same fold runs an
``MLPSpec``'s dropout layers too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nnparity.backends import registry
from nnparity.backends.compare import Tensors, collect, compare_all, tolerance
from nnparity.parity.runner import run_backend
from nnparity.reference.dropout import draw_dropout_mask
from nnparity.reference.family import init_params, spec_from_dict
from nnparity.reference.optim import Optimizer
from nnparity.reference.spec import MLPSpec

pytestmark = pytest.mark.jax

FLOAT64 = 1e-12
CONV_NET: dict[str, Any] = {  # issue 21's example
    "input_shape": [12, 12, 1], "loss": "ce", "reduction": "mean",
    "net": [{"kind": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "padding": "same"},
            {"kind": "relu"}, {"kind": "maxpool", "size": 2}, {"kind": "flatten"},
            {"kind": "dense", "units": 16}, {"kind": "sigmoid"},
            {"kind": "dropout", "keep_prob": 0.5}, {"kind": "dense", "units": 5}]}
FLAT_NET: dict[str, Any] = {
    "input_shape": [6], "loss": "l2", "reduction": "sum", "weight_decay": 0.01,
    "net": [{"kind": "dense", "units": 7}, {"kind": "prelu", "slopes": "shared"},
            {"kind": "dense", "units": 5, "use_bias": False}, {"kind": "leaky_relu"},
            {"kind": "dropout", "keep_prob": 0.8},
            {"kind": "dense", "units": 4}, {"kind": "prelu", "slopes": "unit"},
            {"kind": "dense", "units": 3}, {"kind": "tanh"}]}
NETS = {"conv": CONV_NET, "flat": FLAT_NET}
STEPS = {"sgd": Optimizer("sgd", lr=0.1), "momentum": Optimizer("momentum", lr=0.1),
         "adam": Optimizer("adam", lr=0.01)}


def _tolerance(dtype: str) -> float:
    return FLOAT64 if dtype == "float64" else tolerance(dtype)


def _problem(net: str, dtype: str, batch: int = 4, seed: int = 21) -> tuple[Any, ...]:
    """``(spec, params, x, y, mask)``: perturbed initial parameters, a batch and a dropout mask."""
    spec = spec_from_dict({**NETS[net], "dtype": dtype})
    rng = np.random.default_rng(seed)
    params = {k: (v + 0.1 * rng.standard_normal(v.shape)).astype(dtype)
              for k, v in init_params(spec, seed=seed).items()}
    x = rng.standard_normal((batch, *spec.input_shape)).astype(dtype)
    if spec.loss == "ce":
        y = rng.integers(0, spec.output_dim, batch)
    else:
        y = rng.uniform(-0.5, 0.5, (batch, spec.output_dim)).astype(dtype)
    return spec, params, x, y, draw_dropout_mask(spec, batch, rng)


@pytest.fixture(scope="module")
def jax_backend() -> Any:
    why = registry.reason("jax")
    if why is not None:
        pytest.skip(f"jax backend {why}")
    return registry.get("jax")


def _compare(actual: Tensors, expected: Tensors, dtype: str) -> None:
    comparisons = compare_all(actual, expected, _tolerance(dtype))
    failed = [f"{c.label}: {c.note or f'max rel {c.max_rel:.1e}'}"
              for c in comparisons if not c.passed]
    assert not failed, "; ".join(failed)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("optimizer", list(STEPS))
def test_netspec_matches_the_reference(jax_backend: Any, net: str, dtype: str,
                                       optimizer: str) -> None:
    """Forward, loss, deltas, gradients with the mask, then one step of ``optimizer``."""
    spec, params, x, y, mask = _problem(net, dtype)
    runs = [run_backend(backend, spec, params, [(x, y)], STEPS[optimizer], dropout_mask=mask)
            for backend in (registry.get("numpy"), jax_backend)]
    expected, actual = runs
    forward = [name for stage, name in expected if stage == "forward"]
    assert [name for stage, name in actual if stage == "forward"] == forward
    assert "h.dropout1" in forward and ("update", "step1.loss") in expected
    _compare(actual, expected, dtype)


@pytest.mark.parametrize("net", list(NETS))
def test_netspec_evaluation_traces_what_the_reference_traces(jax_backend: Any, net: str) -> None:
    """Without a mask (evaluation) the dropout layer is the identity and not traced."""
    spec, params, x, _, _ = _problem(net, "float64")
    expected = collect(registry.get("numpy").forward(spec, params, x))
    actual = collect(jax_backend.forward(spec, params, x))
    assert list(actual) == list(expected)
    assert ("forward", "h.dropout1") not in expected
    _compare(actual, expected, "float64")


def test_an_mlpspec_dropout_mask_is_applied(jax_backend: Any) -> None:
    """The same fold runs an ``MLPSpec``'s dropout layers, whose mask columns are keyed by the
    dropout layer's name (``dropout1``): the mask reaches every dropout layer, as in the
    reference (the per-family model looked the columns up by ``layer1`` and dropped nothing)."""
    spec = MLPSpec(5, (6, 6, 3), ("relu", "tanh", "identity"), keep_prob=0.5,
                   dropout_after=(1, 2))
    rng = np.random.default_rng(3)
    params = init_params(spec, seed=3)
    x, y = rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    mask = draw_dropout_mask(spec, 4, rng)
    expected, actual = (run_backend(backend, spec, params, [(x, y)], STEPS["sgd"],
                                    dropout_mask=mask)
                        for backend in (registry.get("numpy"), jax_backend))
    assert ("forward", "h.dropout2") in expected
    _compare(actual, expected, "float64")
