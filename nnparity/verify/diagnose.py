"""Likely causes of a first divergence, each confirmed numerically before it is reported.

Every hypothesis predicts what the diverging tensor would be *if* the learner had made that
mistake, computed by the reference with the mistake built in, and is reported only when the
learner's tensor matches that prediction within the tolerance of
:func:`nnparity.backends.compare.tolerance`:

- ``sum-vs-mean``: the reference run with the other reduction (off by exactly the batch size N);
- ``sign``: the negated reference gradient;
- ``transposed``: the transpose of the learner's tensor against the reference;
- ``bias-with-bias``: ``b - lr * b`` (the NumPy blog's update) instead of ``b - lr * db``;
- ``relu-at-zero``: the reference with relu'(0) = 1 at the batch's exact zeros of ``z``;
- ``softmax-overflow``: a non-finite tensor where ``exp`` of the reference logits overflows;
- ``last-derivative``: the reference without the last layer's activation derivative;
- ``l2-factor``: the L2 gradient ``c * W`` fitted by least squares (the fit must be exact).

Updated parameters are checked through their gradient: ``p - lr * g`` with ``g`` the predicted
gradient. Declaring softmax probabilities as the output (``probabilities``) is recognised too; a
non-finite or mis-shaped tensor nothing explains gets a plain description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from nnparity.backends.compare import Comparison, Tensors, compare_tensor, tolerance
from nnparity.reference.activations import get_activation
from nnparity.reference.losses import probabilities as predict_probabilities
from nnparity.reference.results import Trace

from .problem import Problem, reference_tensors

RELU_FAMILY = ("relu", "leaky_relu")
NICE_L2_FACTORS = {"0": 0.0, "1/2": 0.5, "2": 2.0}  # c / lambda, named in the message


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
    variants: dict[str, Tensors] = field(default_factory=dict, repr=False)

    @cached_property
    def tol(self) -> float:
        return tolerance(self.problem.spec.dtype, self.problem.spec.family)

    def matches(self, key: tuple[str, str], predicted: np.ndarray) -> Comparison:
        """The learner's tensor at ``key`` against a prediction, at the standard tolerance."""
        predicted = np.asarray(predicted, dtype=np.asarray(self.reference[key]).dtype)
        return compare_tensor(key[0], key[1], self.user.get(key), predicted, self.tol)

    def variant(self, mistake: str, **kwargs: Any) -> Tensors:
        """The reference with ``mistake`` built into its backward pass (computed once)."""
        if mistake not in self.variants:
            self.variants[mistake] = reference_tensors(self.problem, **kwargs)
        return self.variants[mistake]

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
    logits = np.asarray(ctx.reference[("forward", f"h.layer{spec.depth}")])
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
    if stage != "update" or not param.startswith("b"):
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
    result = ctx.check(key, _negated(ctx.reference))
    if result is None or key[0] == "loss":
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
    result = ctx.check(key, ctx.variant(other, backward_spec=spec.with_(reduction=other)))
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
    layers = [name for name, act in zip(spec.layer_names, spec.activations, strict=True)
              if act in RELU_FAMILY]
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
    result = ctx.check(key, ctx.variant("relu-at-zero", backward_trace=nudge))
    if result is None:
        return None
    where = ", ".join(f"{count} in z.{k}" for k, count in zeros.items() if count)
    return Diagnosis(
        "relu-at-zero", "relu derivative at 0",
        "Your relu derivative is 1 at z = 0 (a mask like `z >= 0` or `dz[z < 0] = 0`, as in "
        "the NumPy blog). The convention here, as in the BP lecture, PyTorch and TensorFlow, is "
        "relu'(0) = 0: use `z > 0` (or `dz[z <= 0] = 0`).",
        f"the batch has exact zeros ({where}); the reference with "
        f"relu'(0) = 1 reproduces your {_label(key)} ({_agreement(result)})",
    )


def last_derivative(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """The output layer's activation derivative left out of delta_L."""
    spec = ctx.problem.spec
    last = spec.activations[-1]
    if get_activation(last).name == "identity":
        return None
    variant = spec.with_(activations=(*spec.activations[:-1], "identity"))
    result = ctx.check(key, ctx.variant("last-derivative", backward_spec=variant))
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
    plain = ctx.variant("no-l2", backward_spec=spec.with_(weight_decay=0.0))
    lam = spec.weight_decay
    candidates = [(label, f * lam) for label, f in NICE_L2_FACTORS.items() if lam]
    if stage == "loss" and lam:
        penalty = (ctx.reference[key] - plain[key]) / lam  # 0.5 * sum(W^2)
        found = next(((label, c, r) for label, c in candidates
                      if (r := ctx.matches(key, plain[key] + c * penalty)).passed), None)
        what, term = "the loss", "c/2 * sum(W^2)"
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
        hint = f"the L2 term is missing from {what} (is it added only later?)"
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
    if key != ("forward", f"h.layer{spec.depth}") or spec.loss == "l2":
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
    return Diagnosis(
        "shape", "wrong shape",
        f"Your {_label(key)} has shape {user.shape}; the reference's is {ref.shape} "
        "(converted from your declared layout). Check the adapter's layout/bias_shape and that "
        "the expression names the tensor you mean.",
        f"shape {user.shape} != {ref.shape}",
    )


# Most specific first; each is tried on the first diverging tensor only.
HYPOTHESES: tuple[Hypothesis, ...] = (
    softmax_overflow, non_finite, transposed, shape, probabilities, bias_with_bias, sign,
    sum_vs_mean, relu_at_zero, last_derivative, l2_factor,
)


def diagnose(ctx: Context, first: Comparison | None) -> Diagnosis | None:
    """The first hypothesis that the numbers confirm for the first divergence, if any."""
    if first is None:
        return None
    key = (first.stage, first.name)
    if key not in ctx.user:
        return None
    with np.errstate(all="ignore"):
        for hypothesis in HYPOTHESES:
            found = hypothesis(ctx, key)
            if found is not None:
                return found
    return None
