"""Diagnoses without a subprocess: each hypothesis recognises its mistake built into the
reference's own tensors, under several specs, and none fires on an unrelated difference."""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import compare_all, first_divergence, tolerance
from nnparity.reference import MLPSpec
from nnparity.reference.optim import Optimizer
from nnparity.verify import mistakes
from nnparity.verify.diagnose import Context, diagnose
from nnparity.verify.mistakes import with_spec, with_trace
from nnparity.verify.problem import make_problem, reference_tensors

SPECS = {
    "relu-ce-mean-wd": MLPSpec(3, (6, 4, 3), ("relu", "relu", "identity"), loss="ce",
                               reduction="mean", weight_decay=1e-2),
    "sigmoid-l2-sum": MLPSpec(4, (5, 2), ("sigmoid", "sigmoid"), loss="l2", reduction="sum"),
}


def judge(spec: MLPSpec, mutate, optimizer: Optimizer | None = None,
          steps: int = 1) -> tuple[tuple[str, str] | None, str | None]:
    problem = make_problem(spec, seed=3)
    problem.optimizer, problem.steps = optimizer, steps
    reference = reference_tensors(problem)
    user = {k: np.array(v, copy=True) for k, v in reference.items()}
    mutate(problem, user)
    comparisons = compare_all(user, reference, tolerance(spec.dtype))
    first = first_divergence(comparisons)
    found = diagnose(Context(problem, reference, user), first)
    return (first.stage, first.name) if first else None, found.code if found else None


def _scale(key, factor):
    def mutate(problem, user):
        user[key] = user[key] * factor
    return mutate


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_reference_itself_passes(spec_name):
    assert judge(SPECS[spec_name], lambda p, u: None) == (None, None)


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_each_mistake_is_recognised(spec_name):
    spec = SPECS[spec_name]
    n = make_problem(spec, seed=3).n
    other = "sum" if spec.reduction == "mean" else "mean"
    assert judge(spec, _scale(("grad", "W1"), -1)) == (("grad", "W1"), "sign")
    factor = n if other == "sum" else 1 / n
    assert judge(spec, _scale(("delta", "layer1"), factor))[1] == "sum-vs-mean"

    def transpose(problem, user):
        user[("grad", "W2")] = user[("grad", "W2")].T
    assert judge(spec, transpose) == (("grad", "W2"), "transposed")

    def bias_with_bias(problem, user):
        b = problem.params["b1"]
        user[("update", "step1.b1")] = b - problem.lr * b
    assert judge(spec, bias_with_bias) == (("update", "step1.b1"), "bias-with-bias")

    def l2_twice(problem, user):
        w = problem.params["W1"]
        plain = reference_tensors(problem, with_spec(spec.with_(weight_decay=0)))
        user[("grad", "W1")] = plain[("grad", "W1")] + (2 * spec.weight_decay + 0.03) * w
    assert judge(spec, l2_twice) == (("grad", "W1"), "l2-factor")
    if spec.weight_decay:
        def loss_without_l2(problem, user):
            plain = reference_tensors(problem, with_spec(spec.with_(weight_decay=0)))
            user[("loss", "loss")] = plain[("loss", "loss")]
        assert judge(spec, loss_without_l2) == (("loss", "loss"), "weight-decay-missing")


def test_relu_at_zero_and_last_derivative_through_the_update():
    relu_spec, sigmoid_spec = SPECS["relu-ce-mean-wd"], SPECS["sigmoid-l2-sum"]

    def relu_one(problem, user):
        variant = reference_tensors(problem, with_trace(lambda t: t.__class__(
            t.output, {k: np.where(v == 0, 1e-300, v) for k, v in t.z.items()}, t.h)))
        user[("update", "step1.W1")] = variant[("update", "step1.W1")]
    assert judge(relu_spec, relu_one) == (("update", "step1.W1"), "relu-at-zero")

    def no_last(problem, user):
        spec = sigmoid_spec.with_(activations=("sigmoid", "identity"))
        variant = reference_tensors(problem, with_spec(spec))
        user[("update", "step1.b1")] = variant[("update", "step1.b1")]
    assert judge(sigmoid_spec, no_last) == (("update", "step1.b1"), "last-derivative")


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_no_diagnosis_for_an_unrelated_difference(spec_name):
    def noise(problem, user):
        rng = np.random.default_rng(0)
        for key in [("delta", "layer1"), ("grad", "W1"), ("update", "step1.W2")]:
            user[key] = user[key] + 1e-3 * rng.standard_normal(user[key].shape)
    first, code = judge(SPECS[spec_name], noise)
    assert first is not None and code is None


def test_probabilities_declared_as_the_output():
    from nnparity.reference.losses import softmax

    def probs(problem, user):
        user[("forward", "h.layer3")] = softmax(user[("forward", "h.layer3")])
    spec = SPECS["relu-ce-mean-wd"]
    assert judge(spec, probs) == (("forward", "h.layer3"), "probabilities")


OPTIMIZERS = {
    "momentum": Optimizer("momentum", lr=0.1, momentum=0.9),
    "adam": Optimizer("adam", lr=0.01),
    "sgd": Optimizer("sgd", lr=0.1),
}


@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("rule", sorted(OPTIMIZERS))
def test_no_diagnosis_for_noise_in_an_optimiser_step(spec_name, rule):
    def noise(problem, user):
        key = ("update", "step2.W1")
        user[key] = user[key] + 1e-3 * np.random.default_rng(1).standard_normal(user[key].shape)
    first, code = judge(SPECS[spec_name], noise, OPTIMIZERS[rule], steps=3)
    assert first == ("update", "step2.W1") and code is None


def _built(mistake):
    """A learner whose tensors are the reference's with a mistake built in."""
    def mutate(problem, user):
        user.update(reference_tensors(problem, mistake))
    return mutate


@pytest.mark.parametrize("on", ["z", "h"])
def test_derivative_argument_for_tanh_and_sigmoid(on):
    tanh = MLPSpec(3, (5, 4, 2), ("tanh", "tanh", "identity"), loss="l2", reduction="mean")
    for spec in (tanh, SPECS["sigmoid-l2-sum"]):
        layers = [n for n, a in zip(spec.layer_names, spec.activations, strict=True)
                  if a in mistakes.SMOOTH]
        first, code = judge(spec, _built(mistakes.derivative_argument(layers, on)))
        assert first is not None and first[0] == "delta" and code == f"derivative-on-{on}"


def test_off_by_n_and_factor_two_in_both_reductions():
    for spec in SPECS.values():
        n = make_problem(spec, seed=3).n
        factor = 1 / n if spec.reduction == "mean" else n
        assert judge(spec, _scale(("delta", "layer1"), factor))[1] == "off-by-n"
        for two in (2.0, 0.5):
            assert judge(spec, _built(mistakes.scaled(two)))[1] == "factor-two"


def test_adam_epsilon_inside_the_square_root():
    spec = SPECS["relu-ce-mean-wd"]
    inside = mistakes.adam_with(correct=True, eps_inside=True)
    assert judge(spec, _built(inside), OPTIMIZERS["adam"], steps=3) == \
        (("update", "step1.W1"), "adam-epsilon")


@pytest.mark.parametrize("rule", ["momentum", "adam"])
def test_an_update_that_climbs_is_the_sign(rule):
    spec = SPECS["sigmoid-l2-sum"]
    assert judge(spec, _built(mistakes.negated_update), OPTIMIZERS[rule], steps=3) == \
        (("update", "step1.W1"), "sign")
