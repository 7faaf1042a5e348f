"""The reference MLP against the source documents' known answers and the deltas written out by
hand."""

import numpy as np
import pytest

from nnparity.backends.compare import PRINTED_8_DECIMALS, REORDERED_FLOAT64, SAME_OPS_FLOAT64
from nnparity.datasets.toy import logic_gate
from nnparity.reference import MLPSpec, forward, gradients, init_params, predict
from nnparity.reference.activations import get_activation, sigmoid
from nnparity.reference.losses import log_softmax, loss_and_grad, softmax

# The NumPy basics lecture's known-answer net: no biases; sigmoid, sigmoid, softmax.
W1 = np.array([[2, -1, 1, 4], [-1, 2, -3, 1], [3, -2, -1, 5]], dtype=float)
W2 = np.array([[3, 1, -2, 1], [-2, 4, 1, -4], [-1, -3, 2, -5], [3, 1, 1, 1]], dtype=float)
W3 = np.array([[-1, 3, -2], [1, -1, -3], [3, -2, 2], [1, 2, 1]], dtype=float)
SEED001 = MLPSpec(3, (4, 4, 3), ("sigmoid", "sigmoid", "identity"), loss="ce", bias=False)
BATCH = np.array([[.5, .8, .2], [.1, .9, .6], [.2, .2, .3], [.6, .1, .9], [.5, .5, .4],
                  [.9, .1, .9], [.1, .8, .7]])
EXPECTED = np.array([
    [0.72780576, 0.26927918, 0.00291506], [0.62054212, 0.37682531, 0.00263257],
    [0.69267581, 0.30361576, 0.00370844], [0.36618794, 0.63016955, 0.00364252],
    [0.57199769, 0.4251982, 0.00280411], [0.38373781, 0.61163804, 0.00462415],
    [0.52510443, 0.4725011, 0.00239447],
])


def test_seed001_known_answer_single_row():
    params = {"W1": W1, "W2": W2, "W3": W3}
    trace = forward(SEED001, params, BATCH[:1])
    np.testing.assert_allclose(trace.z["layer1"], [[0.8, 0.7, -2.1, 3.8]],
                               atol=REORDERED_FLOAT64)
    np.testing.assert_allclose(trace.h["layer1"],
                               [[0.68997448, 0.66818777, 0.10909682, 0.97811873]],
                               atol=PRINTED_8_DECIMALS)
    np.testing.assert_allclose(predict(SEED001, params, BATCH[:1]), EXPECTED[:1],
                               atol=PRINTED_8_DECIMALS)


def test_seed001_known_answer_batch():
    params = {"W1": W1, "W2": W2, "W3": W3}
    np.testing.assert_allclose(predict(SEED001, params, BATCH), EXPECTED, atol=PRINTED_8_DECIMALS)


@pytest.mark.parametrize(
    ("weights", "gate"),
    [((20, 20, -10), "or"), ((-10, -10, 14), "nand")],
)
def test_seed001_single_neuron_gates(weights, gate):
    spec = MLPSpec(2, (1,), ("sigmoid",), loss="l2")
    params = {"W1": np.array([[weights[0]], [weights[1]]], dtype=float),
              "b1": np.array([[weights[2]]], dtype=float)}
    x, truth = logic_gate(gate)
    out = forward(spec, params, x).output[:, 0]
    np.testing.assert_array_equal(out > 0.5, truth.astype(bool))
    assert np.all(np.abs(out - truth) < 0.02)  # sigmoid(4) = 0.982 is the loosest


def test_seed001_xor_is_and_of_or_and_nand():
    spec = MLPSpec(2, (2, 1), ("sigmoid", "sigmoid"), loss="l2")
    # Hidden units: OR and NAND; output: AND(h1, h2) = (20, 20, -30).
    params = {"W1": np.array([[20.0, -10.0], [20.0, -10.0]]), "b1": np.array([[-10.0, 14.0]]),
              "W2": np.array([[20.0], [20.0]]), "b2": np.array([[-30.0]])}
    x, truth = logic_gate("xor")
    out = forward(spec, params, x).output[:, 0]
    np.testing.assert_array_equal(out > 0.5, truth.astype(bool))


def test_deltas_equal_the_recursion_written_out_by_hand():
    spec = MLPSpec(4, (5, 3, 2), ("tanh", "relu", "identity"), loss="l2", reduction="sum")
    p = init_params(spec, "xavier", seed=3)
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    # Forward, by hand.
    z1 = x @ p["W1"] + p["b1"]
    h1 = np.tanh(z1)
    z2 = h1 @ p["W2"] + p["b2"]
    h2 = np.maximum(z2, 0)
    z3 = h2 @ p["W3"] + p["b3"]
    o = z3
    # Backward, the BP lecture's recursion: delta_L = (o - t) * 1; delta_l = (delta @ W.T) * f'.
    d3 = (o - t) * 1.0
    d2 = (d3 @ p["W3"].T) * (z2 > 0)
    d1 = (d2 @ p["W2"].T) * (1 - h1**2)
    result = gradients(spec, p, x, t)
    np.testing.assert_allclose(result.deltas["layer3"], d3, rtol=0, atol=SAME_OPS_FLOAT64)
    np.testing.assert_allclose(result.deltas["layer2"], d2, rtol=0, atol=SAME_OPS_FLOAT64)
    np.testing.assert_allclose(result.deltas["layer1"], d1, rtol=0, atol=SAME_OPS_FLOAT64)
    for name, h_in, d in (("1", x, d1), ("2", h1, d2), ("3", h2, d3)):
        np.testing.assert_allclose(result.grads[f"W{name}"], h_in.T @ d, rtol=0,
                                   atol=SAME_OPS_FLOAT64)
        np.testing.assert_allclose(result.grads[f"b{name}"], d.sum(0, keepdims=True), rtol=0,
                                   atol=SAME_OPS_FLOAT64)
    assert result.loss == pytest.approx(0.5 * np.sum((o - t) ** 2), rel=SAME_OPS_FLOAT64)


def test_mean_reduction_divides_deltas_and_loss_by_batch_size():
    base = MLPSpec(3, (4, 3), ("sigmoid", "identity"), loss="ce", reduction="sum")
    p = init_params(base, "seed000-sigmoid", seed=1)
    x, y = np.random.default_rng(0).standard_normal((8, 3)), np.arange(8) % 3
    summed = gradients(base, p, x, y)
    mean = gradients(base.with_(reduction="mean"), p, x, y)
    assert mean.loss == pytest.approx(summed.loss / 8, rel=SAME_OPS_FLOAT64)
    for k in summed.grads:
        np.testing.assert_allclose(mean.grads[k], summed.grads[k] / 8, rtol=SAME_OPS_FLOAT64)


def test_weight_decay_adds_half_lambda_w_squared_and_lambda_w():
    spec = MLPSpec(3, (4, 3), ("sigmoid", "identity"), weight_decay=0.1)
    p = init_params(spec, "xavier", seed=2)
    x, y = np.random.default_rng(0).standard_normal((5, 3)), np.arange(5) % 3
    plain = gradients(spec.with_(weight_decay=0.0), p, x, y)
    decayed = gradients(spec, p, x, y)
    penalty = 0.05 * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
    assert decayed.loss == pytest.approx(plain.loss + penalty, rel=SAME_OPS_FLOAT64)
    np.testing.assert_allclose(decayed.grads["W1"], plain.grads["W1"] + 0.1 * p["W1"],
                               rtol=SAME_OPS_FLOAT64)
    np.testing.assert_array_equal(decayed.grads["b1"], plain.grads["b1"])


def test_sigmoid_is_stable_for_huge_inputs():
    z = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        h = sigmoid(z)
    assert np.all(np.isfinite(h))
    assert h[0] == 0.0 and h[-1] == 1.0 and h[3] == 0.5


def test_cross_entropy_is_finite_for_logits_of_1e3():
    o = np.array([[1e3, -1e3, 0.0], [-1e3, 1e3, 5.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ls = log_softmax(o)
        p = softmax(o)
    assert np.all(np.isfinite(ls)) and np.all(np.isfinite(p))
    assert ls[0, 1] == pytest.approx(-2e3)


def test_relu_derivative_at_zero_is_zero():
    relu = get_activation("relu")
    z = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(relu.df(z, relu.f(z)), [0.0, 0.0, 1.0])


def test_no_active_alias_is_identity():
    spec = MLPSpec(2, (2,), ("no_active",))
    assert spec.activations == ("identity",)


def test_float32_spec_computes_in_float32():
    spec = MLPSpec(3, (4, 3), ("tanh", "identity"), dtype="float32")
    p = init_params(spec, "xavier")
    result = gradients(spec, p, np.ones((2, 3)), np.array([0, 2]))
    assert all(g.dtype == np.float32 for g in result.grads.values())
    assert all(d.dtype == np.float32 for d in result.deltas.values())


def test_mse_is_the_frameworks_mean_squared_error_without_a_half():
    """``mse``: ``sum((o - t)^2)`` under ``sum``, divided by N*K under ``mean`` (not by N), and
    ``dE/do = 2 (o - t)`` with the same divisor, as ``torch.nn.MSELoss`` and Keras compute it."""
    o = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    t = np.array([[0.0, -1.0, 0.5], [1.0, 1.0, 1.0]])
    squares = np.sum((o - t) ** 2)
    value, grad = loss_and_grad("mse", o, t, "sum")
    assert value == squares and np.array_equal(grad, 2 * (o - t))
    value, grad = loss_and_grad("mse", o, t, "mean")
    assert value == pytest.approx(squares / 6, rel=SAME_OPS_FLOAT64)
    np.testing.assert_allclose(grad, 2 * (o - t) / 6, rtol=SAME_OPS_FLOAT64)


def test_dropout_after_hidden_layers_is_inverted_with_each_layers_mask_columns():
    spec = MLPSpec(3, (4, 2, 2), ("tanh", "relu", "identity"), keep_prob=0.5,
                   dropout_after=(1, 2))
    assert spec.dropout_units == 6 and spec.to_dict()["dropout_after"] == [1, 2]
    assert MLPSpec.from_dict(spec.to_dict()) == spec
    assert "keep_prob" not in MLPSpec(3, (2,), ("identity",)).to_dict()  # recorded form kept
    params = init_params(spec, seed=1)
    x = np.random.default_rng(0).normal(size=(5, 3))
    mask = np.ones((5, 6))
    mask[:, [0, 4]] = 0  # unit 1 of layer 1, unit 1 of layer 2
    trace = forward(spec, params, x, dropout_mask=mask)
    expected = trace.h["layer1"] * np.array([0, 2, 2, 2])
    np.testing.assert_array_equal(trace.h["dropout1"], expected)
    np.testing.assert_allclose(trace.z["layer2"], expected @ params["W2"] + params["b2"],
                               rtol=SAME_OPS_FLOAT64)
    g = gradients(spec, params, x, np.arange(5) % 2, dropout_mask=mask)
    assert not g.deltas["layer1"][:, 0].any() and not g.deltas["layer2"][:, 0].any()
    assert not g.grads["W2"][0].any()  # the dropped unit feeds nothing forward
    assert forward(spec, params, x).h.keys() == {"layer1", "layer2", "layer3"}  # evaluation


@pytest.mark.parametrize(("fields", "message"), [
    ({"dropout_after": (3,)}, "dropout_after must list hidden layers 1..2"),
    ({"dropout_after": (2, 1)}, "in increasing order"),
    ({"keep_prob": 0.5}, "keep_prob < 1 needs dropout_after"),
    ({"keep_prob": 0.0, "dropout_after": (1,)}, "keep_prob must be in"),
])
def test_mlp_dropout_fields_are_validated(fields, message):
    with pytest.raises(ValueError, match=message):
        MLPSpec(3, (4, 2, 2), ("tanh", "relu", "identity"), **fields)
