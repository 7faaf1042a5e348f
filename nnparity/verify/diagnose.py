"""Likely causes of a first divergence, each confirmed numerically before it is reported.

Every hypothesis predicts what the diverging tensor would be *if* the learner had made that
mistake, computed by the reference with the mistake built in (:mod:`nnparity.verify.mistakes`),
and is reported only when the learner's tensor matches that prediction within the tolerance of
:func:`nnparity.backends.compare.tolerance`. Codes (stable, for tests and the JSON report):

- ``softmax-overflow``: non-finite where ``exp`` of the reference logits overflows;
- ``non-finite``: NaN or inf nothing else explains (described, not explained);
- ``bias-axis``: the bias gradient summed over the wrong axis (named) or over every axis;
- ``transposed``: the transpose of the reference; ``shape``: a wrong shape, described;
- ``probabilities``: softmax/sigmoid probabilities declared where the logits are compared;
- ``no-update``: an update that leaves the parameters as they were;
- ``bias-with-bias``: ``b - lr * b`` (the NumPy blog's update) instead of ``b - lr * db``;
- ``sign``: the negated gradient (for updates: the declared rule fed ``-g``);
- ``sum-vs-mean``: the reference run with the other reduction (off by exactly N);
- ``off-by-n``: off by exactly N the other way (divided by N twice, or N times a sum);
- ``factor-two``: the gradient twice or half the reference, or the loss without (or with a
  doubled) ``1/2`` of the L2 loss;
- ``relu-at-zero``: relu'(0) = 1 at the batch's exact zeros of ``z``;
- ``derivative-on-z`` / ``derivative-on-h``: a sigmoid or tanh derivative evaluated on the
  wrong argument;
- ``last-derivative``: the last layer's activation derivative left out;
- ``stale-weights``: a layer updated before the delta below it was computed with it;
- ``weight-decay-on-bias``, ``weight-decay-missing``, ``l2-factor`` (``c * W`` with ``c``
  fitted);
- ``momentum-order``, ``momentum-average``: momentum applied in the wrong order, or averaged;
- ``adam-bias-correction``, ``adam-epsilon``: Adam without bias correction, or its epsilon in
  another place;
- ``gelu-pdf-term``, ``gelu-form``: a GELU derivative without its ``z phi(z)`` term, or the
  other form (tanh/exact) than declared; ``avgpool-undivided``, ``avgpool-count-pad``: an
  average pool's gradient not divided by its window, or SAME's padded cells counted otherwise
  than declared; ``global-avgpool-undivided``: a global pool's gradient not divided by H W
  (:mod:`nnparity.verify.layer_mistakes`); ``dropout-missing``, ``dropout-scale``,
  ``dropout-backward-mask``: no dropout applied, dropout without its ``1 / keep_prob``, or its
  backward without the mask
  (:mod:`nnparity.verify.dropout_masks`); ``prelu-slope-axis``: a per-unit PReLU slope's
  gradient summed over the wrong axes (:mod:`nnparity.verify.slopes`);
  ``residual-skip-gradient``: a residual block's backward without the skip path's gradient
  (:mod:`nnparity.verify.residual_mistakes`);
- the normalisations' (:mod:`nnparity.verify.norm_diagnose`), tried after these.

A loss that differs only by an epsilon inside its log (``log(p + 1e-7)``) while everything
else matches is not a failure: :func:`log_epsilon` recognises it and the caller accepts it
with a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property, partial

import numpy as np

from nnparity.backends.compare import Comparison, Tensors, compare_tensor, tolerance_for
from nnparity.backends.layout import nchw_flatten_order
from nnparity.parity.mistaken import NO_MISTAKE, Mistake
from nnparity.reference.activations import PARAMETRIC, get_activation
from nnparity.reference.family import Spec
from nnparity.reference.losses import as_targets, softmax
from nnparity.reference.losses import probabilities as predict_probabilities
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Trace

from .dropout_masks import unmasked_backward, unscaled, without_dropout
from .layer_mistakes import (
    avgpool_other_count,
    avgpool_undivided,
    gelu_other_form,
    gelu_without_pdf,
    global_avgpool_undivided,
)
from .mistakes import (
    SMOOTH,
    adam_counter_per_parameter,
    adam_eps_before_correction,
    adam_with,
    bias_decay,
    derivative_argument,
    flattened_in_order,
    momentum_average,
    momentum_late,
    negated_update,
    no_update,
    one_hot_left_out,
    padded_on_the_other_side,
    pool_to_all,
    scaled,
    stale_weights,
    unflipped,
    untransposed,
    with_spec,
    with_trace,
    without_derivatives,
)
from .netview import ParamLayer, param_layers
from .problem import Problem, reference_tensors
from .residual_mistakes import skip_gradient_missing
from .slopes import slope_summed_elsewhere

RELU_FAMILY = ("relu", "leaky_relu")
NICE_L2_FACTORS = {"0": 0.0, "1/2": 0.5, "2": 2.0}  # c / lambda, named in the message
DERIVATIVES = {"sigmoid": ("h * (1 - h)", "sigmoid(z) * (1 - sigmoid(z))"),
               "tanh": ("1 - h**2", "1 - tanh(z)**2")}  # (in terms of h, in terms of z)
SHARED_VARIANTS = ("no-l2",)  # used by several hypotheses and by log_epsilon
LOG_EPSILONS = (1e-7, 1e-8, 1e-10, 1e-12, 1e-15)  # as in log(p + 1e-7)


@dataclass(frozen=True)
class Diagnosis:
    """A recognised mistake: ``code`` (stable, for tests and JSON), a title, the explanation and
    the numerical evidence."""

    code: str
    title: str
    detail: str
    evidence: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict."""
        return {"code": self.code, "title": self.title, "detail": self.detail,
                "evidence": self.evidence}


@dataclass
class Context:
    """What every hypothesis may look at: the problem, the reference and the learner's tensors."""

    problem: Problem
    reference: Tensors
    user: Tensors
    warnings: list[str] = field(default_factory=list)
    layout: str = "row"
    shapes: dict[tuple[str, str], tuple[tuple[int, ...], ...]] = field(default_factory=dict)
    variants: dict[str, Tensors] = field(default_factory=dict, repr=False)

    @cached_property
    def tol(self) -> float:
        return tolerance_for(self.problem.spec)

    def matches(self, key: tuple[str, str], predicted: np.ndarray) -> Comparison:
        """The learner's tensor at ``key`` against a prediction, at the standard tolerance."""
        predicted = np.asarray(predicted, dtype=np.asarray(self.reference[key]).dtype)
        return compare_tensor(key[0], key[1], self.user.get(key), predicted, self.tol)

    def variant(self, name: str, mistake: Mistake = NO_MISTAKE,
                problem: Problem | None = None) -> Tensors:
        """The reference with ``mistake`` built into its backward pass or its update, or run on
        another ``problem`` (the same one with a layer list or parameters holding the mistake);
        computed once per ``name``."""
        if name not in self.variants:
            self.variants[name] = reference_tensors(problem or self.problem, mistake)
        return self.variants[name]

    @property
    def rule(self) -> Optimizer:
        """The problem's update rule."""
        return self.problem.update_rule()

    def gradient_prediction(self, key: tuple[str, str], grads: Tensors) -> np.ndarray | None:
        """The tensor at ``key`` implied by ``grads``: the tensor itself when ``grads`` holds it
        (a full variant of the reference), else for the first update ``p - lr * g`` (plain SGD
        only; later steps and other optimisers need a full variant)."""
        stage, name = key
        if key in grads or stage in ("delta", "grad", "loss"):
            return grads.get(key)
        label, param = name.split(".", 1)
        rule = self.problem.update_rule()
        if stage != "update" or label != "step1" or rule.name != "sgd" \
                or ("grad", param) not in grads:
            return None
        return self.problem.params[param] - rule.lr * grads[("grad", param)]

    def check(self, key: tuple[str, str], grads: Tensors) -> Comparison | None:
        """The passing comparison if the learner's tensor is what ``grads`` imply, else None."""
        predicted = self.gradient_prediction(key, grads)
        if predicted is None:
            return None
        result = self.matches(key, predicted)
        return result if result.passed else None


Hypothesis = Callable[[Context, tuple[str, str]], Diagnosis | None]


def _output_key(spec: Spec) -> tuple[str, str]:
    """The canonical key of the network's output (the last layer's ``h``)."""
    return ("forward", f"h.{spec.layer_names[-1]}")


def _label(key: tuple[str, str]) -> str:
    return "loss" if key[0] == "loss" else f"{key[0]} {key[1]}"


def _agreement(c: Comparison) -> str:
    return f"max rel {c.max_rel:.1e} <= tol {c.tol:.0e}"


def _negated(tensors: Tensors) -> Tensors:
    return {k: -v for k, v in tensors.items() if k[0] in ("delta", "grad")}


def softmax_overflow(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """Non-finite values where ``exp`` of the reference's logits overflows (no max shift)."""
    spec, user = ctx.problem.spec, ctx.user.get(key)
    if spec.loss != "ce" or user is None or np.all(np.isfinite(user)) or key[0] == "forward":
        return None
    logits = np.asarray(ctx.reference[_output_key(spec)])
    with np.errstate(over="ignore"):
        overflows = int(np.sum(~np.isfinite(np.exp(logits))))
    if not overflows:
        return None
    limit = float(np.log(np.finfo(logits.dtype).max))
    cited = [w for w in ctx.warnings if "overflow" in w or "invalid value" in w]
    return Diagnosis(
        "softmax-overflow", "softmax without the max shift overflows",
        "Your softmax computes exp(o) on the raw logits. Subtract each row's maximum first "
        "(exp(o - o.max(axis=1, keepdims=True))): the result is the same, but exp can no longer "
        "overflow.",
        f"the logits reach {logits.max():.1f}; exp overflows above {limit:.2f} in "
        f"{logits.dtype} ({overflows} of {logits.size} entries); your {_label(key)} has "
        f"{int(np.sum(~np.isfinite(user)))} non-finite value(s)"
        + (f"; your code warned: {cited[0]}" if cited else ""),
    )


def non_finite(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """NaN or inf where the reference is finite, without a recognised cause."""
    user = ctx.user.get(key)
    if user is None or np.all(np.isfinite(user)):
        return None
    nans, infs = int(np.sum(np.isnan(user))), int(np.sum(np.isinf(user)))
    return Diagnosis(
        "non-finite", "NaN or inf in your result",
        f"Your {_label(key)} holds {nans} NaN and {infs} inf of {user.size} entries; the "
        "reference is finite. Look for a division by zero, log(0) or an overflowing exp.",
        "; ".join(ctx.warnings[:2]) or "no warning was raised in your file",
    )


def transposed(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The learner's tensor is the transpose of the reference."""
    user, ref = ctx.user.get(key), np.asarray(ctx.reference[key])
    if user is None or user.ndim != 2 or ref.ndim != 2 or 1 in ref.shape:
        return None
    result = ctx.matches(key, ref.T)
    if not result.passed:
        return None
    return Diagnosis(
        "transposed", "transposed",
        f"Your {_label(key)} is the transpose of the reference ({user.shape} vs {ref.shape}). "
        "In row layout (W [in, out], the BP lecture) dW = h_in.T @ delta; in column layout "
        "(W [out, in], the Fashion-MNIST report) dW = delta @ h_in.T. Either fix the product "
        "or declare the layout your code uses (\"layout\": \"column\").",
        f"your tensor transposed equals the reference ({_agreement(result)})",
    )


def bias_with_bias(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """``b - lr * b`` (the NumPy blog's bug) instead of ``b - lr * db``."""
    stage, name = key
    param = name.split(".", 1)[-1]
    if stage != "update" or not name.startswith("step1.b") or ctx.rule.name != "sgd":
        return None
    b = ctx.problem.params[param]
    result = ctx.matches(key, b - ctx.problem.lr * b)
    if not result.passed:
        return None
    return Diagnosis(
        "bias-with-bias", "bias updated with the bias instead of its gradient",
        f"Your update computes {param} - lr * {param}; it should be {param} - lr * d{param} "
        "(the bug in the NumPy blog's TwoNet/ThreeNet.update).",
        f"your updated {param} equals {param} - lr * {param} with lr = {ctx.problem.lr:g} "
        f"({_agreement(result)})",
    )


def sign(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The gradient (or delta) has the opposite sign."""
    if key[0] == "loss":
        return None
    negated = {**ctx.variant("sign", negated_update), **_negated(ctx.reference)}
    result = ctx.check(key, negated)
    if result is None:
        return None
    return Diagnosis(
        "sign", "opposite sign",
        f"Your {_label(key)} has the opposite sign of the reference: check dE/do = o - L (not "
        "L - o) and that the update subtracts: p = p - lr * dp.",
        f"minus the reference gradient reproduces it ({_agreement(result)})",
    )


def sum_vs_mean(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """Off by exactly the batch size: summed where the spec averages, or the reverse."""
    spec, n = ctx.problem.spec, ctx.problem.n
    other = "sum" if spec.reduction == "mean" else "mean"
    result = ctx.check(key, ctx.variant(other, with_spec(spec.with_(reduction=other))))
    if result is None:
        return None
    if other == "sum":
        detail = (f"Your {_label(key)} is N = {n} times the reference: it sums over the batch, "
                  "but the spec's reduction is 'mean' (the three-framework notes, the NumPy "
                  "blog): divide dE/do by N.")
    else:
        detail = (f"Your {_label(key)} is 1/N = 1/{n} of the reference: it divides by the batch "
                  "size, but the spec's reduction is 'sum' (the BP lecture): drop the division, or "
                  "declare reduction 'mean'.")
    return Diagnosis("sum-vs-mean", "off by exactly the batch size (sum vs mean)", detail,
                     f"the reference with reduction '{other}' reproduces it "
                     f"({_agreement(result)})")


def relu_at_zero(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """relu'(0) taken as 1 (the NumPy blog's ``1(z >= 0)``) at exact zeros of ``z``."""
    spec = ctx.problem.spec
    layers = [name for name, act in spec.layer_activations.items() if act in RELU_FAMILY]
    if not layers:
        return None
    tiny = np.finfo(spec.dtype).tiny

    def nudge(trace: Trace) -> Trace:
        z = {k: np.where(v == 0, v.dtype.type(tiny), v) if k in layers else v
             for k, v in trace.z.items()}
        return replace(trace, z=z)

    zeros = {k: int(np.sum(ctx.reference[("forward", f"z.{k}")] == 0)) for k in layers}
    if not any(zeros.values()):
        return None
    result = ctx.check(key, ctx.variant("relu-at-zero", with_trace(nudge)))
    if result is None:
        return None
    where = ", ".join(f"{count} in z.{k}" for k, count in zeros.items() if count)
    return Diagnosis(
        "relu-at-zero", "relu derivative at 0",
        "Your relu derivative is 1 at z = 0 (a mask like `z >= 0` or `dz[z < 0] = 0`, as in "
        "the NumPy blog): a valid subgradient, but the reference, like the BP lecture, PyTorch "
        "and TensorFlow, takes relu'(0) = 0 (`z > 0`, or `dz[z <= 0] = 0`); results differ "
        "only where z is exactly 0.",
        f"the batch has exact zeros ({where}); the reference with "
        f"relu'(0) = 1 reproduces your {_label(key)} ({_agreement(result)})",
    )


def _has_derivative(activation: str) -> bool:
    """True for an activation whose derivative a learner can leave out (a PReLU, with its
    slope, is checked by its own gradient: left out of a variant, its slope would vanish)."""
    return activation not in PARAMETRIC and get_activation(activation).name != "identity"


def last_derivative(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The output layer's activation derivative left out of delta_L."""
    spec = ctx.problem.spec
    name, last = list(spec.layer_activations.items())[-1]
    if not _has_derivative(last):
        return None
    variant = without_derivatives(spec, [name])
    result = ctx.check(key, ctx.variant("last-derivative", with_spec(variant)))
    if result is None:
        return None
    return Diagnosis(
        "last-derivative", "missing activation derivative on the last layer",
        f"Your delta of the last layer is dE/do without the factor {last}'(z): "
        f"delta_L = dE/do * f'(z_L, h_L) (the BP lecture: `deltas0 * de_act_fun(z, h)`).",
        f"the reference without that factor reproduces your {_label(key)} "
        f"({_agreement(result)})",
    )


def l2_factor(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The L2 term is ``c * W`` (gradient) or ``c/2 * sum(W^2)`` (loss) with ``c != lambda``."""
    stage, name = key
    param = name.split(".", 1)[-1]
    user = ctx.user.get(key)
    if user is None or user.shape != ctx.reference[key].shape:
        return None
    spec = ctx.problem.spec
    plain = ctx.variant("no-l2", with_spec(spec.with_(weight_decay=0.0)))
    lam = spec.weight_decay
    candidates = [(label, f * lam) for label, f in NICE_L2_FACTORS.items() if lam]
    if stage == "loss" and lam:
        penalty = (ctx.reference[key] - plain[key]) / lam  # 0.5 * sum(W^2)
        found = next(((label, c, r) for label, c in candidates
                      if (r := ctx.matches(key, plain[key] + c * penalty)).passed), None)
        what, term = "loss", "c/2 * sum(W^2)"
    elif stage in ("grad", "update") and param.startswith("W"):
        w, lr = ctx.problem.params[param].astype(np.float64), ctx.problem.lr
        g = plain[("grad", param)]
        residual = user - g if stage == "grad" else (w - lr * g - user) / lr
        candidates.append((None, float(np.sum(residual * w) / np.sum(w * w))))
        found = next(((label, c, r) for label, c in candidates
                      if (r := ctx.check(key, {("grad", param): g + c * w})) is not None), None)
        what, term = f"{_label(key)}", f"c * {param}"
    else:
        return None
    if found is None:
        return None
    ratio, c, result = found
    if ratio == "0":
        hint = f"the L2 term is missing from your {what} (is it added only later?)"
    else:
        hint = (f"c = {c:.6g} ({ratio + ' * lambda' if ratio else 'a least-squares fit'}), but "
                f"lambda = {lam:g}: the loss term is 0.5 * lambda * sum(W^2), its gradient "
                "lambda * W")
    return Diagnosis(
        "l2-factor", "L2 regularisation applied with the wrong factor",
        f"Your {what} carries {term} as its L2 term: {hint}.",
        f"the reference without weight decay plus that term with c = {c:.6g} reproduces it "
        f"({_agreement(result)})",
    )


def probabilities(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The declared output is softmax/sigmoid probabilities, where the reference has logits."""
    spec = ctx.problem.spec
    if key != _output_key(spec) or spec.loss == "l2":
        return None
    result = ctx.matches(key, predict_probabilities(spec.loss, ctx.reference[key]))
    if not result.passed:
        return None
    return Diagnosis(
        "probabilities", "your output is probabilities, not logits",
        f"The last layer's h/output you declared holds the {spec.loss} probabilities; the "
        "reference compares the logits o (the loss applies softmax/sigmoid). Point 'output' (or "
        "the last 'h') at the logits, e.g. the last layer's z.",
        f"the reference's probabilities reproduce it ({_agreement(result)})",
    )


def shape(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """A mis-shaped tensor nothing else explains."""
    user, ref = ctx.user.get(key), np.asarray(ctx.reference[key])
    if user is None or user.shape == ref.shape:
        return None
    yours, declared = ctx.shapes.get(key, (user.shape, ref.shape))
    return Diagnosis(
        "shape", "wrong shape",
        f"Your {_label(key)} has shape {yours}; your declaration's layout asks for {declared}. "
        "Check the adapter's layout/bias_shape and that the expression names the tensor you "
        "mean.",
        f"shape {yours} != {declared}",
    )


def _layout_axes(ctx: Context) -> tuple[int, int]:
    """(batch axis, feature axis) of an activation in the learner's layout."""
    return (1, 0) if ctx.layout == "column" else (0, 1)


def bias_axis(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """``db`` summed over the features (or over everything) instead of over the batch."""
    stage, name = key
    user = ctx.user.get(key)
    spec = ctx.problem.spec
    if stage != "grad" or user is None or spec.param_kind(name) != "bias":
        return None
    layer = next(entry.name for entry in param_layers(spec) if entry.bias == name)
    delta = np.asarray(ctx.reference[("delta", layer)])  # canonical [N, D]
    if delta.ndim != 2:
        return None
    batch, features = _layout_axes(ctx)
    ndim = len(spec.param_shapes()[name])
    candidates = {f"axis={features} (the features)": delta.sum(axis=1).reshape((1, -1)[-ndim:]),
                  "every axis (no axis given)": delta.sum().reshape((1, 1)[-ndim:])}
    for where, predicted in candidates.items():
        result = compare_tensor(stage, name, user, predicted, ctx.tol)
        if result.passed:
            return Diagnosis(
                "bias-axis", "bias gradient summed over the wrong axis",
                f"Your d{name} sums delta over {where}; the bias gradient sums over the batch: "
                f"np.sum(delta, axis={batch}, keepdims=True) in your layout "
                f"({ctx.layout}), giving one value per unit of the layer.",
                f"delta of {layer} summed over {where} gives your values ({_agreement(result)})",
            )
    return None


def _full(ctx: Context, key: tuple[str, str], name: str, mistake: Mistake = NO_MISTAKE,
          problem: Problem | None = None) -> Comparison | None:
    """The passing comparison when the reference with ``mistake`` (on ``problem``) reproduces
    the tensor (for an updated parameter: at this step and at every later one the learner
    exposes)."""
    variant = ctx.variant(name, mistake, problem)
    result = ctx.check(key, variant)
    if result is None or key[0] != "update":
        return result
    label, param = key[1].split(".", 1)
    for step in range(int(label.removeprefix("step")) + 1, ctx.problem.steps + 1):
        later = ("update", f"step{step}.{param}")
        if later in ctx.user and ctx.check(later, variant) is None:
            return None
    return result


def no_change(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The update leaves the parameters as they were."""
    stage, name = key
    if stage != "update":
        return None
    label, param = name.split(".", 1)
    step = int(label.removeprefix("step"))
    before = ctx.problem.params[param] if step == 1 else \
        ctx.user.get(("update", f"step{step - 1}.{param}"))
    if before is None:
        return None
    result = ctx.matches(key, before)
    if not result.passed:
        return None
    return Diagnosis(
        "no-update", "the update changes nothing",
        f"Your {param} after update {step} is the {param} it started from. Does the update "
        "assign the new values back to the model (p = p - lr * dp, or p -= lr * dp on the "
        "array itself, not on a copy)?",
        f"your {_label(key)} equals the parameters before that step ({_agreement(result)})",
    )


def off_by_n(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """Off by exactly N in the direction :func:`sum_vs_mean` does not explain."""
    spec, n = ctx.problem.spec, ctx.problem.n
    factor = 1.0 / n if spec.reduction == "mean" else float(n)
    if key[0] == "loss" or (result := _full(ctx, key, "off-by-n", scaled(factor))) is None:
        return None
    if spec.reduction == "mean":
        detail = (f"Your {_label(key)} is 1/N = 1/{n} of the reference: the batch mean is "
                  "taken twice (dE/do divided by N, then the gradient divided by N again).")
    else:
        detail = (f"Your {_label(key)} is N = {n} times the reference, whose reduction is "
                  "'sum': something multiplies by the batch size.")
    return Diagnosis("off-by-n", "off by exactly the batch size N", detail,
                     f"the reference with deltas scaled by {factor:g} reproduces it "
                     f"({_agreement(result)})")


def factor_two(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """Twice or half the gradient; or the loss without (or with twice) the 1/2 of L2."""
    spec = ctx.problem.spec
    if key[0] == "loss":
        if spec.loss != "l2":
            return None
        plain = ctx.variant("no-l2", with_spec(spec.with_(weight_decay=0.0)))[key]
        penalty = ctx.reference[key] - plain
        for factor, what in ((2.0, "without the 1/2"), (0.5, "with the 1/2 taken twice")):
            result = ctx.matches(key, factor * plain + penalty)
            if result.passed:
                return Diagnosis(
                    "factor-two", f"the L2 loss {what}",
                    f"Your loss is {factor:g} times the reference's squared error: the L2 "
                    "loss here is 0.5 * sum((o - t)^2), whose gradient is o - t.",
                    f"{factor:g} times the reference's data loss reproduces it "
                    f"({_agreement(result)})")
        return None
    for factor in (2.0, 0.5):
        result = _full(ctx, key, f"factor-{factor}", scaled(factor))
        if result is not None:
            return Diagnosis(
                "factor-two", f"gradient {'twice' if factor == 2 else 'half'} the reference",
                f"Your {_label(key)} is {factor:g} times the reference: with the L2 loss "
                "0.5 * sum((o - t)^2), dE/do = o - t (no factor 2); with the 1/2 left out of "
                "the loss, keep the factor 2 in both.",
                f"the reference with deltas scaled by {factor:g} reproduces it "
                f"({_agreement(result)})")
    return None


def derivative_argument_mixup(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """A sigmoid/tanh derivative evaluated on z where it takes h, or on h where it takes z."""
    spec = ctx.problem.spec
    layers = [n for n, a in spec.layer_activations.items() if a in SMOOTH]
    if not layers or key[0] in ("forward", "loss"):
        return None
    acts = sorted({a for a in spec.layer_activations.values() if a in SMOOTH})
    in_h = " or ".join(f"`{DERIVATIVES[a][0]}`" for a in acts)
    in_z = " or ".join(f"`{DERIVATIVES[a][1]}`" for a in acts)
    for on, formula, other in (("z", in_h, "h"), ("h", in_z, "z")):
        result = _full(ctx, key, f"derivative-on-{on}", derivative_argument(layers, on))
        if result is not None:
            return Diagnosis(
                f"derivative-on-{on}", f"activation derivative evaluated on {on} instead of "
                f"{other}",
                f"Your {'/'.join(acts)} derivative is written in terms of {other} ({formula}) "
                f"but is given {on}: pass it {other}, or write it in terms of {on}.",
                f"the reference with the derivative evaluated on {on} reproduces your "
                f"{_label(key)} ({_agreement(result)})")
    return None


def stale(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """A layer's weights updated before the delta below was computed with them (plain SGD)."""
    spec, rule = ctx.problem.spec, ctx.rule
    if len(spec.layer_names) < 2 or rule.name != "sgd" or key[0] in ("forward", "loss"):
        return None
    result = _full(ctx, key, "stale-weights", stale_weights(rule.lr))
    if result is None:
        return None
    return Diagnosis(
        "stale-weights", "weights updated before the layer below used them",
        "Your backward pass updates a layer's W before computing the delta of the layer below "
        "with it: delta_(l-1) must use the W_l of the forward pass. Compute every gradient "
        "first, then update.",
        f"the reference with each W updated as soon as its gradient is known reproduces your "
        f"{_label(key)} ({_agreement(result)})")


def weight_decay(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """Weight decay on the biases too, or none at all."""
    spec = ctx.problem.spec
    if not spec.weight_decay or key[0] == "forward":
        return None
    lam = spec.weight_decay
    if key[0] != "loss" and (result := _full(ctx, key, "weight-decay-on-bias",
                                             bias_decay)) is not None:
        return Diagnosis(
            "weight-decay-on-bias", "weight decay applied to the biases",
            f"Your {_label(key)} includes lambda * b = {lam:g} * b: the L2 term 0.5 * lambda * "
            "sum(W^2) covers the weights only, so the bias gradient has no decay term.",
            f"the reference with lambda * b added to db reproduces it ({_agreement(result)})")
    result = _full(ctx, key, "no-l2", with_spec(spec.with_(weight_decay=0.0)))
    if result is None:
        return None
    return Diagnosis(
        "weight-decay-missing", "weight decay missing",
        f"Your {_label(key)} has no L2 term; the spec's weight_decay is {lam:g}: the loss gets "
        "0.5 * lambda * sum(W^2) and each dW gets lambda * W.",
        f"the reference without weight decay reproduces it ({_agreement(result)})")


def momentum(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """Momentum in the wrong order, or as a moving average."""
    rule = ctx.rule
    if rule.name != "momentum" or key[0] != "update":
        return None
    if (result := _full(ctx, key, "momentum-order", momentum_late)) is not None:
        return Diagnosis(
            "momentum-order", "momentum applied in the wrong order",
            "Your update moves the parameters with the velocity before adding this step's "
            "gradient to it: first v = mu * v + g, then p = p - lr * v.",
            f"the reference updating p before v reproduces your {_label(key)} "
            f"({_agreement(result)})")
    if (result := _full(ctx, key, "momentum-average", momentum_average)) is not None:
        return Diagnosis(
            "momentum-average", "momentum as a moving average",
            f"Your velocity is v = mu * v + (1 - mu) * g; the declared rule ({rule.variant}) is "
            "v = mu * v + g (declare it as you mean it, or drop the (1 - mu)).",
            f"the reference with the averaged velocity reproduces your {_label(key)} "
            f"({_agreement(result)})")
    return None


def adam(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """Adam without bias correction, or with its epsilon elsewhere."""
    if ctx.rule.name != "adam" or key[0] != "update":
        return None
    if (result := _full(ctx, key, "adam-no-correction",
                        adam_with(correct=False, eps_inside=False))) is not None:
        return Diagnosis(
            "adam-bias-correction", "Adam without bias correction",
            "Your Adam uses m and v as they are; divide them by (1 - beta1^t) and "
            "(1 - beta2^t), t the 1-based step count (at t = 1 they are 10 and 1000 times too "
            "small with the usual betas).",
            f"the reference without bias correction reproduces your {_label(key)} "
            f"({_agreement(result)})")
    spec = ctx.problem.spec
    names = list(spec.trained_names)  # Adam's state: the trained ones, no running statistic
    weights_first = [n for n in names if spec.is_weight(n)] + \
        [n for n in names if not spec.is_weight(n)]
    for order in (names, weights_first):
        if (result := _full(ctx, key, f"adam-counter-{order}",
                            adam_counter_per_parameter(order))) is not None:
            return Diagnosis(
                "adam-step-counter", "Adam's step counter advanced once per parameter",
                f"Your Adam adds 1 to t inside the loop over the parameters, so t grows by "
                f"{len(order)} per step and the bias correction of every parameter but the "
                "first is off: advance t once per step, before the loop.",
                f"the reference advancing t per parameter (in the order "
                f"{', '.join(order)}) reproduces your {_label(key)} ({_agreement(result)})")
    placements = [("adam-eps-inside", adam_with(correct=True, eps_inside=True),
                   "inside the square root, sqrt(v_hat + eps)")]
    if ctx.rule.variant == "torch":
        placements.append(("adam-eps-before", adam_eps_before_correction,
                           "to sqrt(v) before the bias correction (the Keras and DLFS book form)"))
    for code, mistake, where in placements:
        if (result := _full(ctx, key, code, mistake)) is not None:
            return Diagnosis(
                "adam-epsilon", "Adam's epsilon in the wrong place",
                f"Your Adam adds epsilon {where}; the declared rule ({ctx.rule.variant}) "
                "divides by sqrt(v_hat) + eps" + (" after the bias correction"
                                                  if ctx.rule.variant == "torch" else "") + ".",
                f"the reference with that placement reproduces your {_label(key)} "
                f"({_agreement(result)})")
    return None


def _layer_of(ctx: Context, key: tuple[str, str]) -> ParamLayer | None:
    """The layer with parameters a forward or delta key names (``z.conv1``, ``layer2``)."""
    name = key[1].split(".", 1)[-1] if key[0] == "forward" else key[1]
    return next((e for e in param_layers(ctx.problem.spec) if e.name == name), None)


def constant_gradient(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """A gradient that is one constant (``grads['b1'] = 0.0``) where the reference's is not."""
    user, ref = ctx.user.get(key), np.asarray(ctx.reference[key])
    if key[0] != "grad" or user is None or not np.size(user) or np.ptp(ref) == 0:
        return None
    flat = np.asarray(user, dtype=np.float64).reshape(-1)
    if flat.size not in (1, ref.size) or not np.all(flat == flat[0]):
        return None
    value = flat[0]
    yours, declared = ctx.shapes.get(key, (np.shape(user), ref.shape))
    return Diagnosis(
        "constant-gradient", "a gradient set to a constant",
        f"Your d{key[1]} is {value:g} everywhere (a line like grads['{key[1]}'] = {value:g}, "
        "left from a test or a placeholder?); the reference's varies: compute it from the "
        "layer's delta.",
        f"your {_label(key)} has shape {yours}; your declaration's layout asks for "
        f"{declared}; it holds the one value {value:g}, the reference's ranges from "
        f"{ref.min():.3g} to {ref.max():.3g}")


def bias_missing(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """A layer's bias left out of its forward pass."""
    layer = _layer_of(ctx, key)
    if key[0] != "forward" or layer is None or layer.bias is None:
        return None
    params = {**ctx.problem.params,
              layer.bias: np.zeros_like(ctx.problem.params[layer.bias])}
    result = _full(ctx, key, f"bias-missing-{layer.name}",
                   problem=replace(ctx.problem, params=params))
    if result is None:
        return None
    return Diagnosis(
        "bias-missing", f"the bias of {layer.name} left out of the forward pass",
        f"Your {_label(key)} is the layer's output without its bias: add b{layer.index} "
        f"(z = x W + b).",
        f"the reference with {layer.bias} = 0 reproduces it ({_agreement(result)})")


def hidden_derivative(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The hidden layers' activation derivative left out of their deltas."""
    spec = ctx.problem.spec
    hidden = [name for name, act in list(spec.layer_activations.items())[:-1]
              if _has_derivative(act)]
    if not hidden or key[0] in ("forward", "loss"):
        return None
    for layers in [hidden, *([name] for name in hidden if len(hidden) > 1)]:
        result = _full(ctx, key, f"hidden-derivative-{layers}",
                       with_spec(without_derivatives(spec, layers)))
        if result is not None:
            acts = ", ".join(f"{spec.layer_activations[n]}' of {n}" for n in layers)
            return Diagnosis(
                "hidden-derivative", "a hidden layer's activation derivative left out",
                f"Your delta of a hidden layer is the gradient from above without the factor "
                f"f'(z) ({acts}): delta_l = (delta_(l+1) @ W_(l+1).T) * f'(z_l).",
                f"the reference without that factor reproduces your {_label(key)} "
                f"({_agreement(result)})")
    return None


def transpose_missing(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """``delta @ W`` where ``delta @ W.T`` belongs (a square weight, so the shapes agree)."""
    spec, params = ctx.problem.spec, ctx.problem.params
    square = [e.name for e in param_layers(spec)[1:] if e.kind == "dense"
              and params[e.weight].shape[0] == params[e.weight].shape[1]]
    if not square or key[0] in ("forward", "loss"):
        return None
    for name in square:
        result = _full(ctx, key, f"transpose-{name}", with_spec(untransposed(spec, [name])))
        if result is not None:
            weight = next(e for e in param_layers(spec) if e.name == name).weight
            return Diagnosis(
                "transpose-missing", f"{weight} used where {weight}.T belongs",
                f"Your backward passes the delta of {name} down with {weight} instead of its "
                f"transpose: delta_below = (delta @ {weight}.T) * f'(z) in row layout. The "
                "shapes agree only because the weight is square, so nothing crashed.",
                f"the reference passing delta @ {weight} down reproduces your {_label(key)} "
                f"({_agreement(result)})")
    return None


def constant_factor(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """Every delta and gradient a constant times the reference (a hard-coded batch size); seen
    in a gradient, a delta, or the first plain SGD step ``p - lr * c * g``."""
    user, ref = ctx.user.get(key), np.asarray(ctx.reference[key], dtype=np.float64)
    step = key[0] == "update" and key[1].startswith("step1.") and ctx.rule.name == "sgd"
    if (key[0] not in ("delta", "grad") and not step) or user is None \
            or np.shape(user) != ref.shape:
        return None
    mine = np.asarray(user, dtype=np.float64)
    if step:  # the steps taken: p - p_new
        before = np.asarray(ctx.problem.params[key[1].split(".", 1)[1]], dtype=np.float64)
        mine, ref = before - mine, before - ref
    if not np.any(ref):
        return None
    factor = float(np.sum(mine * ref) / np.sum(ref * ref))
    n = ctx.problem.n
    if not np.isfinite(factor) or factor <= 0 or \
            any(np.isclose(factor, f) for f in (1.0, 2.0, 0.5, n, 1 / n)):
        return None
    result = _full(ctx, key, "constant-factor", scaled(factor))
    if result is None:
        return None
    batch, divisor = n / factor, 1 / factor
    if ctx.problem.spec.reduction == "mean" and abs(batch - round(batch)) < 1e-6:
        guess = (f": a hard-coded batch of {round(batch)} where the batch is {n}? Divide by "
                 "the batch's own size (len(x), x.shape[0]), not a number written in the code.")
    elif abs(divisor - round(divisor)) < 1e-6:
        guess = (f": a division by {round(divisor)} that the spec's reduction "
                 f"('{ctx.problem.spec.reduction}') does not have?")
    else:
        guess = ": look for a constant factor in dE/do or in the update."
    what = f"step on {key[1].split('.', 1)[1]}" if step else \
        f"d{key[1]}" if key[0] == "grad" else f"delta of {key[1]}"
    return Diagnosis(
        "constant-factor", f"every number {factor:.4g}x the reference",
        f"Your {what} (and every delta and gradient) is {factor:.4g}x the reference{guess}",
        f"the reference with every delta scaled by {factor:.4g} reproduces it "
        f"({_agreement(result)})")


def one_hot_missing(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The softmax cross-entropy gradient without the one-hot subtracted (``p`` for ``p - t``)."""
    if ctx.problem.spec.loss != "ce" or key[0] not in ("delta", "grad", "update"):
        return None
    result = _full(ctx, key, "one-hot-missing", one_hot_left_out)
    if result is None:
        return None
    return Diagnosis(
        "one-hot-missing", "softmax gradient without the one-hot subtracted",
        "Your dE/do is softmax(o): the gradient of softmax cross-entropy is softmax(o) - t "
        "(subtract 1 at each sample's class: p[range(N), labels] -= 1).",
        f"the reference from dE/do = softmax(o) reproduces your {_label(key)} "
        f"({_agreement(result)})")


def bias_decay_in_loss(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The L2 term of the loss summed over the biases too."""
    spec, params = ctx.problem.spec, ctx.problem.params
    if key[0] != "loss" or not spec.weight_decay:
        return None
    biases = sum(float(np.sum(np.asarray(params[e.bias], dtype=np.float64) ** 2))
                 for e in param_layers(spec) if e.bias is not None)
    result = ctx.matches(key, ctx.reference[key] + 0.5 * spec.weight_decay * biases)
    if not biases or not result.passed:
        return None
    return Diagnosis(
        "weight-decay-on-bias-loss", "weight decay on the biases in the loss",
        f"Your loss adds 0.5 * lambda * sum(b^2) (lambda = {spec.weight_decay:g}): the L2 term "
        "covers the weights only, in the loss as in the gradients.",
        f"the reference's loss plus 0.5 * lambda * sum(b^2) = "
        f"{0.5 * spec.weight_decay * biases:.3g} reproduces yours ({_agreement(result)})")


def kernel_flip(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The input gradient of a convolution computed with the kernel not rotated by 180
    degrees (or rotated twice)."""
    spec = ctx.problem.spec
    if key[0] in ("forward", "loss") or not any(e.kind == "conv" for e in param_layers(spec)):
        return None
    result = _full(ctx, key, "kernel-flip", with_spec(unflipped(spec)))
    if result is None:
        return None
    return Diagnosis(
        "kernel-flip", "kernel not flipped in the backward convolution",
        "Your convolution's input gradient correlates the delta with the kernel as it is: the "
        "forward pass is a correlation, so dL/dx is the full correlation of the (padded) delta "
        "with the kernel rotated by 180 degrees, W[:, :, ::-1, ::-1] in OIHW (or flipped "
        "twice: a convolution routine that flips, fed a flipped kernel).",
        f"the reference with the kernel unflipped in the backward reproduces your "
        f"{_label(key)} ({_agreement(result)})")


def maxpool_to_all(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The max-pool gradient sent to every cell of the window, not only to its maximum."""
    spec = ctx.problem.spec
    if key[0] in ("forward", "loss") or not any(getattr(layer, "kind", "") == "maxpool"
                                                  for layer in spec.net):
        return None
    result = _full(ctx, key, "maxpool-all", problem=replace(ctx.problem,
                                                             spec=pool_to_all(spec)))
    if result is None:
        return None
    return Diagnosis(
        "maxpool-all", "max-pool gradient sent to every cell of the window",
        "Your max-pool backward gives each window's gradient to all of its cells; only the "
        "maximum passed its value on, so only it gets the gradient (a mask of the argmax).",
        f"the reference routing the pool's gradient to every cell reproduces your "
        f"{_label(key)} ({_agreement(result)})")


def padding_side(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """SAME's extra row and column put at the top/left instead of the bottom/right."""
    variant = padded_on_the_other_side(ctx.problem.spec)
    if variant is None or key[0] == "loss":
        return None
    result = _full(ctx, key, "padding-side", problem=replace(ctx.problem, spec=variant))
    if result is None:
        return None
    return Diagnosis(
        "padding-side", "padding on the wrong side",
        "Your SAME padding puts the odd extra row and column at the top/left; TensorFlow's "
        "rule (the reference's) puts it at the bottom/right: pad (total // 2) before and the "
        "rest after.",
        f"the reference padding top/left reproduces your {_label(key)} ({_agreement(result)})")


def flatten_order(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The map flattened in the other order (NCHW for NHWC or the reverse) than declared."""
    spec = ctx.problem.spec
    if spec.flat_map is None or key[0] == "loss":
        return None
    order = nchw_flatten_order(*spec.flat_map)
    inverse = np.argsort(order)
    for mistake, permutation in (("flatten-order", order), ("flatten-order-inverse", inverse)):
        if np.array_equal(permutation, np.arange(permutation.size)):
            return None
        result = _full(ctx, key, mistake,
                       problem=replace(ctx.problem, spec=flattened_in_order(spec, permutation)))
        if result is not None:
            return Diagnosis(
                "flatten-order", "the map flattened in the other order",
                "Your flatten lays the feature map out in another order than your declaration's "
                "'flatten' says (NCHW: x.reshape(N, -1) of an NCHW map; NHWC: of an NHWC map): "
                "the next dense weight's rows follow the declared order. Declare the order "
                "your code uses, or flatten as declared (and unflatten the same way).",
                f"the reference flattening in the other order reproduces your {_label(key)} "
                f"({_agreement(result)})")
    return None


@dataclass(frozen=True)
class LayerMistake:
    """A mistake in a layer kind without parameters: ``build`` makes the spec with it (None when
    the spec has no such layer), ``stages`` are where it can show first (a backward-only mistake
    never in the forward pass), ``title`` and ``detail`` what the report says; ``update`` the
    variant's mistaken step (``mistakes.no_update`` for a gradient of another shape, which no
    step takes)."""

    code: str
    build: Callable[[Spec], object]
    stages: tuple[str, ...]
    title: str
    detail: str
    update: Mistake = NO_MISTAKE

    def __call__(self, ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
        if key[0] not in self.stages:
            return None
        variant = self.build(ctx.problem.spec)
        if variant is None:
            return None
        result = _full(ctx, key, f"{self.code}-{self.title}", self.update,
                       problem=replace(ctx.problem, spec=variant))
        if result is None:
            return None
        return Diagnosis(self.code, self.title, self.detail,
                         f"the reference with this mistake built in reproduces your "
                         f"{_label(key)} ({_agreement(result)})")


BACKWARD_STAGES = ("delta", "grad", "update")
ALL_STAGES = ("forward", "loss", *BACKWARD_STAGES)
LAYER_MISTAKES = (
    LayerMistake(
        "gelu-pdf-term", gelu_without_pdf, BACKWARD_STAGES,
        "GELU derivative without its z * pdf(z) term",
        "Your GELU backward multiplies by Phi(z) only (tanh form: 0.5 (1 + tanh u)): h = z "
        "Phi(z) is a product, so dh/dz = Phi(z) + z phi(z), phi(z) = exp(-z^2 / 2) / sqrt(2 pi) "
        "(tanh form: + 0.5 z (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 z^2))."),
    LayerMistake(
        "gelu-form", gelu_other_form, ALL_STAGES, "GELU in the other form than declared",
        "Your GELU is the other form than the layer's declared 'approximate': the exact one is "
        "0.5 z (1 + erf(z / sqrt 2)) (\"none\", torch's and Keras' default), the tanh one 0.5 z "
        "(1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) (\"tanh\", jax.nn.gelu's default); they "
        "differ by up to about 1e-3. Compute the declared form, or declare yours."),
    LayerMistake(
        "avgpool-undivided", avgpool_undivided, BACKWARD_STAGES,
        "average-pool gradient not divided by the window",
        "Your average pool's backward hands each window's whole gradient to every cell: the "
        "forward divides the window's sum by its size (k * k, or under SAME without "
        "count_include_pad its real cells), so each cell gets dy / that divisor."),
    LayerMistake(
        "avgpool-count-pad", avgpool_other_count, ALL_STAGES,
        "average pool counting SAME's padding otherwise than declared",
        "Your SAME average pool divides the border windows by another count than the layer "
        "declares: count_include_pad false (the default, Keras' and TensorFlow's) divides by "
        "the window's real cells, true (torch's default) by k * k with the padded zeros "
        "counted. Divide as declared, or declare what your code does."),
    LayerMistake(
        "global-avgpool-undivided", global_avgpool_undivided, BACKWARD_STAGES,
        "global-average-pool gradient not divided by H * W",
        "Your global average pool's backward copies dy to every cell: the forward is the mean "
        "over the H * W cells of each channel, so each cell gets dy / (H * W)."),
    LayerMistake(
        "dropout-missing", without_dropout, ALL_STAGES, "dropout not applied",
        "Your network runs its dropout layer as the identity: in training, multiply by the "
        "mask verify hands your code (mask1, ..., or masks[i]) and divide by keep_prob, "
        "in the forward and the backward pass."),
    LayerMistake(
        "dropout-scale", unscaled, ALL_STAGES, "dropout without the 1 / keep_prob scaling",
        "Your dropout applies the mask but does not divide by keep_prob: inverted dropout "
        "scales the kept units by 1 / keep_prob in training (forward and backward alike), so "
        "that evaluation needs no scaling."),
    LayerMistake(
        "dropout-backward-mask", unmasked_backward, BACKWARD_STAGES,
        "dropout backward without the mask",
        "Your dropout backward passes a gradient to the dropped units: the forward zeroed "
        "them, so dL/dh = dL/dy * mask / keep_prob, the same mask as the forward's."),
    LayerMistake(
        "residual-skip-gradient", skip_gradient_missing, BACKWARD_STAGES,
        "residual block backward without the skip path's gradient",
        "Your residual block passes down only the gradient through f: y = x + f(x), so "
        "dL/dx = dL/dx through f + dL/dy (the skip path's identity; a projection's dy W^T). "
        "Add dy to the gradient your block returns."),
)


PRELU_MISTAKES = (
    *(LayerMistake(
        "prelu-slope-axis", partial(slope_summed_elsewhere, axes=axes), ("grad",),
        f"PReLU slope gradient summed over {where}",
        f"Your dL/da of a per-unit (per-channel) PReLU slope is summed over {where}: each "
        "slope a[c] gets the sum of dL/dh * min(z, 0) over the batch and every position of "
        "its unit or channel, np.sum(..., axis=(0, 1, 2)) for NHWC maps, axis=0 for [N, D] "
        "(a shared slope sums everything).", no_update)
      for axes, where in (("every", "every axis"), ("batch", "the batch only"))),
)
"""Tried before ``shape``: the slope summed elsewhere has another shape."""


def log_epsilon(ctx: Context) -> float | None:
    """The epsilon in ``log(p + eps)`` that explains the learner's loss exactly, if one does."""
    spec, key = ctx.problem.spec, ("loss", "loss")
    if spec.loss != "ce" or key not in ctx.user:
        return None
    logits = np.asarray(ctx.reference[_output_key(spec)], dtype=np.float64)
    t = as_targets(spec.loss, ctx.problem.y, ctx.problem.n, spec.output_dim, np.float64)
    data = ctx.reference[key] - ctx.variant("no-l2", with_spec(
        spec.with_(weight_decay=0.0)))[key]
    for eps in LOG_EPSILONS:
        loss = -np.sum(t * np.log(softmax(logits) + eps))
        loss = loss / ctx.problem.n if spec.reduction == "mean" else loss
        if ctx.matches(key, loss + data).passed:
            return eps
    return None


# Every code a hypothesis can report (the JSON's diagnosis.code), and the ones that only describe.
CODES = ("softmax-overflow", "non-finite", "bias-axis", "transposed", "shape", "probabilities",
         "momentum-order", "momentum-average", "adam-bias-correction", "adam-epsilon",
         "no-update", "bias-with-bias", "sign", "sum-vs-mean", "off-by-n", "factor-two",
         "relu-at-zero", "derivative-on-z", "derivative-on-h", "last-derivative",
         "stale-weights", "weight-decay-on-bias", "weight-decay-missing", "l2-factor",
         "constant-gradient", "bias-missing", "hidden-derivative", "transpose-missing",
         "constant-factor", "one-hot-missing", "weight-decay-on-bias-loss",
         "adam-step-counter", "kernel-flip", "maxpool-all", "padding-side", "flatten-order",
         *dict.fromkeys(mistake.code for mistake in (*LAYER_MISTAKES, *PRELU_MISTAKES)))
DESCRIPTIVE = ("non-finite", "shape")

# Most specific first; each is tried on the first diverging tensor only.
HYPOTHESES: tuple[Hypothesis, ...] = (
    softmax_overflow, non_finite, bias_axis, *PRELU_MISTAKES, transposed, constant_gradient,
    shape,
    probabilities, momentum, adam, no_change, bias_with_bias, sign, sum_vs_mean, off_by_n,
    factor_two, relu_at_zero, derivative_argument_mixup, last_derivative, stale, weight_decay,
    l2_factor, bias_decay_in_loss, bias_missing, flatten_order, padding_side, kernel_flip,
    maxpool_to_all, *LAYER_MISTAKES,
    hidden_derivative, transpose_missing, one_hot_missing, constant_factor,
)


def diagnose(ctx: Context, first: Comparison | None) -> Diagnosis | None:
    """The first hypothesis that the numbers confirm for the first divergence, if any."""
    if first is None:
        return None
    key = (first.stage, first.name)
    if key not in ctx.user:
        return None
    from .norm_diagnose import NORM_HYPOTHESES  # here: it builds on this module

    with np.errstate(all="ignore"):
        for hypothesis in (*HYPOTHESES, *NORM_HYPOTHESES):
            found = hypothesis(ctx, key)
            if found is not None:
                return found
            # a variant is a whole run of the reference: keep only the one several share
            ctx.variants = {k: v for k, v in ctx.variants.items() if k in SHARED_VARIANTS}
    return None
