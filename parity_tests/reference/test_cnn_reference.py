"""The NumPy CNN (the three-framework notes): spec, shapes, dropout, and finite differences of
every parameter."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nnparity.backends.compare import GRADCHECK_TOLERANCE, REORDERED_FLOAT64
from nnparity.reference import dropout, network
from nnparity.reference.cnn_spec import CNNSpec, ConvBlock
from nnparity.reference.dropout import draw_dropout_mask
from nnparity.reference.family import init_params
from nnparity.reference.gradcheck import gradcheck
from nnparity.reference.losses import softmax

# Finite-difference step for the whole network. relu and max-pool kinks lie about 1e-3 from these
# random test points; the stencil's +-2 * 1e-5 stays clear of them (the default 1e-4 does not),
# and its rounding (~1e-16 / step, about 5e-9 of the gradient scale here) is far below tolerance.
STEP = 1e-5

VARIANTS = {
    "tiny": CNNSpec.tiny(),
    "tiny-sum-wd": CNNSpec.tiny(reduction="sum", weight_decay=0.01),
    "stride2-k4-valid-nopool": CNNSpec(
        input_shape=(9, 8, 2),
        conv=(ConvBlock(3, 4, stride=2, padding="SAME", pool=2, pool_padding="SAME"),
              ConvBlock(4, 2, padding="VALID", pool=0)),
        dense=(6,), keep_prob=0.5, classes=3),
    "no-hidden-dense": CNNSpec(input_shape=(6, 6, 1), conv=(ConvBlock(2, 3, pool_padding="VALID"),),
                               keep_prob=0.5, classes=2),
}


def batch(spec, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *spec.input_shape)), rng.integers(0, spec.classes, n)


# ----------------------------------------------------------------------------------- spec
def test_seed002_shapes():
    spec = CNNSpec.seed002()
    assert spec.family == "cnn" and spec.dtype == "float32"
    assert spec.feature_shapes() == [(28, 28, 1), (14, 14, 32), (7, 7, 64)]
    assert spec.flat_dim == 3136 and spec.dropout_units == 1024 and spec.keep_prob == 0.5
    assert spec.param_shapes() == {
        "conv1.W": (5, 5, 1, 32), "conv1.b": (32,), "conv2.W": (5, 5, 32, 64), "conv2.b": (64,),
        "fc1.W": (3136, 1024), "fc1.b": (1024,), "fc2.W": (1024, 10), "fc2.b": (10,)}
    assert spec.layer_names == ["conv1", "conv2", "fc1", "fc2"]
    assert [spec.is_weight(k) for k in spec.param_shapes()] == [True, False] * 4


def test_seed002_forward_at_batch_2():
    spec = CNNSpec.seed002()
    params = init_params(spec, seed=0)
    x = np.random.default_rng(0).random((2, 28, 28, 1))
    mask = draw_dropout_mask(spec, 2, 0)
    trace = network.forward(spec, params, x, dropout_mask=mask)
    assert list(trace.z) == ["conv1", "conv2", "fc1", "fc2"]
    assert list(trace.h) == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "dropout",
                             "fc2"]
    shapes = {k: v.shape for k, v in trace.h.items()}
    assert shapes == {"conv1": (2, 28, 28, 32), "pool1": (2, 14, 14, 32),
                      "conv2": (2, 14, 14, 64), "pool2": (2, 7, 7, 64), "flatten": (2, 3136),
                      "fc1": (2, 1024), "dropout": (2, 1024), "fc2": (2, 10)}
    assert all(v.dtype == np.float32 for v in [*trace.z.values(), *trace.h.values()])
    assert trace.output is trace.h["fc2"]


def test_json_round_trip_and_with():
    for spec in [CNNSpec.seed002(), *VARIANTS.values()]:
        assert CNNSpec.from_json(spec.to_json()) == spec
        assert CNNSpec.from_dict(spec.to_dict()) == spec
    spec = CNNSpec.tiny()
    assert spec.with_(keep_prob=1.0).keep_prob == 1.0
    assert spec.to_dict()["conv"][0] == {"filters": 3, "kernel": 3, "stride": 1, "padding": "SAME",
                                         "activation": "relu", "pool": 2, "pool_stride": 2,
                                         "pool_padding": "SAME"}


def test_weights_module_reads_the_family():
    from nnparity.reference.family import spec_from_dict

    spec = CNNSpec.tiny()
    assert spec_from_dict(spec.to_dict()) == spec


GOOD = dict(input_shape=(8, 8, 1), conv=(ConvBlock(2, 3),), dense=(4,), classes=3)


@pytest.mark.parametrize(("changes", "message"), [
    ({"input_shape": (8, 8)}, r"input_shape must be \(H, W, C\)"),
    ({"input_shape": (8, 0, 1)}, "input width must be a positive integer"),
    ({"conv": ()}, "conv is empty"),
    ({"conv": ({"filters": 2, "kernel": 3, "colour": 1},)}, "unknown conv block field"),
    ({"conv": (ConvBlock(2, 9, padding="VALID"),)}, "conv1: kernel 9 with VALID padding"),
    ({"conv": (ConvBlock(2, 3), ConvBlock(2, 3, pool=5, pool_padding="VALID"))},
     "conv2: pool 5 with VALID padding does not fit"),
    ({"dense": (4, 0)}, "dense layer 2 width must be a positive integer"),
    ({"dense_activations": ("relu", "relu")}, "1 dense layers but 2 dense_activations"),
    ({"dense_activations": ("swish",)}, "unknown activation 'swish'"),
    ({"classes": 1}, "classes >= 2"),
    ({"loss": "l2"}, "unknown loss 'l2'"),
    ({"reduction": "median"}, "unknown reduction"),
    ({"dtype": "float16"}, "unknown dtype"),
    ({"keep_prob": 0.0}, r"keep_prob must be in \(0, 1\]"),
    ({"keep_prob": 1.5}, r"keep_prob must be in \(0, 1\]"),
    ({"weight_decay": -1.0}, "weight_decay must be >= 0"),
])
def test_bad_spec_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        CNNSpec(**{**GOOD, **changes})


@pytest.mark.parametrize(("fields", "message"), [
    ({"filters": 0, "kernel": 3}, "filters must be a positive integer"),
    ({"filters": 2, "kernel": 3, "stride": 1.5}, "stride must be a positive integer"),
    ({"filters": 2, "kernel": 3, "padding": "same"}, "unknown padding 'same'"),
    ({"filters": 2, "kernel": 3, "pool": -1}, "pool must be a window size"),
    ({"filters": 2, "kernel": 3, "pool_padding": "FULL"}, "unknown pool_padding"),
    ({"filters": 2, "kernel": 3, "pool": 0, "pool_stride": 2}, "without a pool"),
    ({"filters": 2, "kernel": 3, "activation": "nope"}, "unknown activation"),
])
def test_bad_conv_block_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        ConvBlock(**fields)


def test_from_dict_errors():
    data = CNNSpec.tiny().to_dict()
    with pytest.raises(ValueError, match="unknown spec field"):
        CNNSpec.from_dict({**data, "optimizer": "adam"})
    with pytest.raises(ValueError, match="expected 'cnn'"):
        CNNSpec.from_dict({**data, "family": "mlp"})


# ------------------------------------------------------------------------ params and input
def test_init_params_seed002_scheme():
    spec = CNNSpec.seed002(dtype="float64")
    params = init_params(spec, seed=3)
    assert list(params) == list(spec.param_shapes())
    W = params["fc1.W"]
    assert np.abs(W).max() <= 0.2  # truncated at 2 std
    assert abs(W.std() - 0.088) < 0.002  # std of N(0, 0.1^2) truncated at 2 std: 0.0880
    assert all(np.all(params[k] == 0.1) for k in params if k.endswith(".b"))
    again = init_params(spec, seed=3)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert init_params(CNNSpec.tiny(dtype="float32"))["conv1.W"].dtype == np.float32
    with pytest.raises(ValueError, match="unknown CNN init scheme"):
        init_params(spec, scheme="glorot")


def test_check_params_and_input_errors():
    spec = CNNSpec.tiny()
    params = init_params(spec)
    x, y = batch(spec)
    bad = {**params, "conv1.W": params["conv1.W"][..., :2]}
    with pytest.raises(ValueError, match=r"conv1\.W has shape"):
        network.check_params(spec, bad)
    with pytest.raises(ValueError, match="missing"):
        network.gradients(spec, {k: v for k, v in params.items() if k != "fc2.b"}, x, y)
    with pytest.raises(ValueError, match=r"does not fit \[N, 8, 8, 2\] \(NHWC\)"):
        network.forward(spec, params, x.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="dropout mask has shape"):
        network.forward(spec, params, x, dropout_mask=np.ones((3, 5)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        network.forward(spec, params, x, dropout_mask=np.full((3, 6), 2.0))


# ---------------------------------------------------------------------------------- dropout
def test_dropout_scales_kept_units():
    h = np.arange(1.0, 9.0).reshape(2, 4)
    mask = np.array([[1, 0, 1, 1], [0, 0, 1, 0]])
    np.testing.assert_array_equal(dropout.dropout(h, mask, 0.5), h * mask * 2)
    np.testing.assert_array_equal(dropout.dropout_backward(h, mask, 0.25), h * mask * 4)
    assert dropout.dropout(h, None, 0.5) is h  # evaluation: no mask, no scaling


def test_draw_mask_is_seeded_and_keeps_about_keep_prob():
    a = dropout.draw_mask(7, (200, 50), 0.3)
    b = dropout.draw_mask(np.random.default_rng(7), (200, 50), 0.3)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1.0}
    assert abs(a.mean() - 0.3) < 0.02
    assert dropout.draw_mask(0, (3, 4), 1.0).all()
    with pytest.raises(ValueError, match="keep_prob"):
        dropout.draw_mask(0, (3, 4), 0.0)


def test_dropout_in_the_network():
    spec = CNNSpec.tiny()
    params = init_params(spec)
    x, _ = batch(spec)
    mask = draw_dropout_mask(spec, 3, 1)
    assert mask.shape == (3, spec.dropout_units)
    trace = network.forward(spec, params, x, dropout_mask=mask)
    np.testing.assert_array_equal(trace.h["dropout"], trace.h["fc1"] * mask / 0.5)
    evaluation = network.forward(spec, params, x)
    assert evaluation.h["dropout"] is evaluation.h["fc1"]
    ones = network.forward(spec, params, x, dropout_mask=np.ones((3, 6)))
    np.testing.assert_allclose(ones.h["dropout"], 2 * evaluation.h["fc1"])


# --------------------------------------------------------------------- forward and backward
def test_flatten_is_nhwc_order():
    spec = CNNSpec.tiny()
    trace = network.forward(spec, init_params(spec), batch(spec)[0])
    pooled, flat = trace.h["pool2"], trace.h["flatten"]
    _, _, wo, c = pooled.shape
    n, i, j, k = 1, 1, 0, 3
    assert flat[n, (i * wo + j) * c + k] == pooled[n, i, j, k]


def test_deltas_and_gradients_are_consistent():
    spec = CNNSpec.tiny()
    params = init_params(spec, seed=1)
    x, y = batch(spec, n=4, seed=1)
    mask = draw_dropout_mask(spec, 4, 2)
    result = network.gradients(spec, params, x, y, dropout_mask=mask)
    trace = network.forward(spec, params, x, dropout_mask=mask)
    assert list(result.deltas) == spec.layer_names
    assert list(result.grads) == list(spec.param_shapes())
    for name in spec.layer_names:
        assert result.deltas[name].shape == trace.z[name].shape
    t = np.eye(3)[y]
    np.testing.assert_allclose(result.deltas["fc2"], (softmax(trace.output) - t) / 4)
    np.testing.assert_allclose(result.grads["fc2.W"], trace.h["dropout"].T @ result.deltas["fc2"])
    np.testing.assert_allclose(result.grads["fc1.W"], trace.h["flatten"].T @ result.deltas["fc1"])
    for name in ("conv1", "conv2", "fc1", "fc2"):
        delta = result.deltas[name]
        np.testing.assert_allclose(result.grads[f"{name}.b"],
                                   delta.sum(axis=tuple(range(delta.ndim - 1))))
    # a dropped unit passes no gradient back into fc1
    assert np.all(result.deltas["fc1"][mask == 0] == 0)
    assert result.loss == pytest.approx(network.loss(spec, params, x, y, dropout_mask=mask))
    # the public backward (no forward cache: im2col and arg-max recomputed) gives the same
    again = network.backward(spec, params, x, trace, y, dropout_mask=mask)
    for name in result.grads:
        np.testing.assert_array_equal(again.grads[name], result.grads[name])


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("with_mask", [True, False], ids=["dropout", "no-dropout"])
def test_gradcheck_every_parameter(name, with_mask):
    spec = VARIANTS[name]
    params = init_params(spec, seed=0)
    x, y = batch(spec, n=3, seed=100)
    mask = draw_dropout_mask(spec, 3, 5) if with_mask else None
    result = network.gradients(spec, params, x, y, dropout_mask=mask)

    def loss(p):
        return network.loss(spec, p, x, y, dropout_mask=mask)

    checks = gradcheck(loss, params, result.grads, step=STEP, max_entries=60, seed=0)
    assert [c.name for c in checks] == list(spec.param_shapes())
    for check in checks:
        assert check.max_rel <= GRADCHECK_TOLERANCE, check


def test_float32_gradients_stay_float32():
    spec = CNNSpec.tiny(dtype="float32")
    params = init_params(spec)
    x, y = batch(spec)
    result = network.gradients(spec, params, x, y, dropout_mask=draw_dropout_mask(spec, 3, 0))
    assert all(g.dtype == np.float32 for g in [*result.grads.values(), *result.deltas.values()])


def test_predict_is_softmax_without_dropout():
    spec = CNNSpec.tiny()
    params = init_params(spec)
    x, _ = batch(spec)
    probs = network.predict(spec, params, x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs, softmax(network.forward(spec, params, x).output))
    chunked = network.logits(spec, params, x, chunk=2)
    np.testing.assert_allclose(chunked, network.forward(spec, params, x).output,
                               rtol=REORDERED_FLOAT64)
    assert network.logits(spec, params, x[:0]).shape == (0, 3)


def test_numpy_backend_dispatches_to_the_cnn():
    from nnparity.backends.numpy_backend import BACKEND

    spec = CNNSpec.tiny()
    params = init_params(spec)
    x, y = batch(spec)
    mask = draw_dropout_mask(spec, 3, 0)
    got = BACKEND.gradients(spec, params, x, y, dropout_mask=mask)
    want = network.gradients(spec, params, x, y, dropout_mask=mask)
    assert got.loss == want.loss
    trace = BACKEND.forward(spec, params, x, dropout_mask=mask)
    np.testing.assert_array_equal(trace.output, want.output)


def test_reference_imports_numpy_only():
    code = ("import sys\n"
            "import nnparity.reference.network, nnparity.reference.conv, nnparity.reference.pool\n"
            "import nnparity.reference.dropout\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow'}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_numpy_trainer_steps_the_cnn():
    from nnparity.reference.optim import Optimizer, init_state, step
    from nnparity.reference.train import NumpyTrainer

    spec = CNNSpec.tiny()
    params = init_params(spec)
    x, y = batch(spec)
    mask = draw_dropout_mask(spec, 3, 0)
    opt = Optimizer("adam", lr=1e-3)
    trainer = NumpyTrainer(spec, params, opt)
    loss = trainer.step(x, y, dropout_mask=mask)
    result = network.gradients(spec, params, x, y, dropout_mask=mask)
    expected, _ = step(opt, params, result.grads, init_state(opt, params))
    assert loss == result.loss
    for name, value in trainer.params().items():
        np.testing.assert_array_equal(value, expected[name])
    np.testing.assert_array_equal(trainer.predict(x), network.forward(spec, expected, x).output)
    trainer.step(x, y)  # draws its own mask (keep_prob 0.5)


@st.composite
def cnn_specs(draw):
    """Small random specs; combinations whose maps would vanish are rejected by the spec itself."""
    blocks = []
    for _ in range(draw(st.integers(1, 2))):
        pool = draw(st.sampled_from([0, 2, 3]))
        blocks.append(dict(
            filters=draw(st.integers(1, 3)), kernel=draw(st.integers(1, 4)),
            stride=draw(st.integers(1, 2)), padding=draw(st.sampled_from(["SAME", "VALID"])),
            pool=pool, pool_stride=draw(st.integers(1, 2)) if pool else None,
            pool_padding=draw(st.sampled_from(["SAME", "VALID"]))))
    try:
        return CNNSpec(
            input_shape=(draw(st.integers(4, 9)), draw(st.integers(4, 9)), draw(st.integers(1, 2))),
            conv=blocks, dense=draw(st.lists(st.integers(1, 4), max_size=2)),
            keep_prob=draw(st.sampled_from([0.5, 1.0])), classes=draw(st.integers(2, 4)),
            reduction=draw(st.sampled_from(["sum", "mean"])))
    except ValueError:
        assume(False)


@given(cnn_specs())
def test_random_specs_round_trip_and_run(spec):
    assert CNNSpec.from_json(spec.to_json()) == spec
    params = init_params(spec)
    assert {k: v.shape for k, v in params.items()} == spec.param_shapes()
    x, y = batch(spec, n=2)
    mask = draw_dropout_mask(spec, 2, 0)
    trace = network.forward(spec, params, x, dropout_mask=mask)
    for i, shape in enumerate(spec.feature_shapes()[1:], 1):
        name = f"pool{i}" if spec.conv[i - 1].pool else f"conv{i}"
        assert trace.h[name].shape == (2, *shape)
    assert trace.h["flatten"].shape == (2, spec.flat_dim)
    assert trace.output.shape == (2, spec.classes)
    result = network.gradients(spec, params, x, y, dropout_mask=mask)
    assert {k: v.shape for k, v in result.grads.items()} == spec.param_shapes()
    assert all(result.deltas[k].shape == trace.z[k].shape for k in spec.layer_names)
