"""Diagnoses of hand-written normalisation layers, each confirmed by the reference re-run with
the mistake built in (:mod:`nnparity.verify.norm_mistakes`). Codes (stable):

- ``batchnorm-mean-path`` / ``layernorm-mean-path``: the backward without the terms through the
  mean (``dmu`` left out of ``dx``);
- ``batchnorm-variance-path`` / ``layernorm-variance-path``: without the terms through the
  variance (``dvar`` left out);
- ``batchnorm-constant-statistics`` / ``layernorm-constant-statistics``: without both
  (``dx = gamma * dy / sqrt(var + eps)``, the statistics taken as constants);
- ``running-variance-estimator``: the running variance updated with the other estimator
  (biased where the declared one is unbiased, or the reverse);
- ``running-momentum-inverted``: the running statistics with the momentum on the batch's value
  (torch's convention) where it weighs the old one (CS231n's, Keras'), or the reverse.
"""

from __future__ import annotations

from dataclasses import replace

from .diagnose import Context, Diagnosis, Hypothesis, _agreement, _full, _label
from .mistakes import with_spec
from .norm_mistakes import DROPS, inverted_momentum, other_variance, without_path

PATHS = {
    "mean": ("mean-path", "backward without the path through the mean",
             "leaves out the terms through the {stat} mean (dmu of the computational graph: "
             "dx gets dmu / m from every value). With them, dx = gamma / (m sqrt(var + eps)) * "
             "(m dy - sum(dy) - xhat * sum(dy * xhat)): your dx lacks the - sum(dy) term"),
    "variance": ("variance-path", "backward without the path through the variance",
                 "leaves out the terms through the {stat} variance (dvar of the computational "
                 "graph: dx gets 2 (x - mu) / m * dvar). With them, dx = gamma / (m sqrt(var + "
                 "eps)) * (m dy - sum(dy) - xhat * sum(dy * xhat)): your dx lacks the - xhat * "
                 "sum(dy * xhat) term"),
    "both": ("constant-statistics", "backward with the statistics taken as constants",
             "treats the {stat} mean and variance as constants (dx = gamma * dy / sqrt(var + "
             "eps)): both depend on x, so dx = gamma / (m sqrt(var + eps)) * (m dy - sum(dy) - "
             "xhat * sum(dy * xhat))"),
}
STATISTICS = {"batchnorm": "batch's (per feature, over the batch)",
              "layernorm": "row's (per sample, over its features)"}


def path_diagnosis(kind: str, drop: str, label: str, agreement: str) -> Diagnosis:
    """The diagnosis of ``kind``'s backward without ``drop``'s path, reproducing ``label``."""
    _, title, detail = PATHS[drop]
    return Diagnosis(f"{kind}-{PATHS[drop][0]}", f"{kind} {title}",
                     f"Your {kind} backward {detail.format(stat=STATISTICS[kind])}.",
                     f"the reference with that {kind} backward reproduces your {label} "
                     f"({agreement})")


def variance_diagnosis(declared: str, label: str, agreement: str) -> Diagnosis:
    """The diagnosis of a running variance taking the other estimator than ``declared``."""
    other = "unbiased" if declared == "biased" else "biased"
    formula = ("var * m / (m - 1), np.var(x, axis=0, ddof=1)" if other == "unbiased"
               else "mean((x - mu)^2), np.var(x, axis=0)")
    return Diagnosis(
        "running-variance-estimator", "running variance with the other estimator",
        f"Your running variance takes the {other} batch variance ({formula}); the declared "
        f"estimator is {declared} (the batchnorm's 'variance': 'biased' is CS231n's and "
        "Keras', 'unbiased' torch's). The normalisation itself always uses the biased one.",
        f"the reference with the {other} running variance reproduces your {label} "
        f"({agreement})")


def momentum_diagnosis(m: float, label: str, agreement: str) -> Diagnosis:
    """The diagnosis of running statistics weighing the batch's value by the momentum ``m``."""
    return Diagnosis(
        "running-momentum-inverted", "momentum convention inverted in the running statistics",
        f"Your running statistics weigh the batch's value by {m:g} and the old one by "
        f"{1 - m:g}; the declared momentum {m:g} weighs the old one: running = {m:g} * running "
        f"+ {1 - m:g} * batch (CS231n's and Keras' convention; torch's momentum is the "
        f"weight of the batch: torch's momentum={1 - m:g} is declared {m:g}).",
        f"the reference with the momentum inverted reproduces your {label} ({agreement})")


def missing_path(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """A normalisation's backward without the terms through its mean, variance or both."""
    spec = ctx.problem.spec
    kinds = [kind for kind in STATISTICS if any(layer.kind == kind for layer in spec.net)]
    if key[0] in ("forward", "loss"):
        return None
    for kind in kinds:
        for drop in DROPS:
            result = _full(ctx, key, f"{kind}-{PATHS[drop][0]}",
                           with_spec(without_path(spec, kind, drop)))
            if result is not None:
                return path_diagnosis(kind, drop, _label(key), _agreement(result))
    return None


def running_statistics(ctx: Context, key: tuple[str, str]) -> Diagnosis | None:
    """A running mean or variance with the other estimator or the other momentum convention."""
    spec = ctx.problem.spec
    if key[0] != "update" or not key[1].endswith((".mean", ".var")):
        return None
    layer = next((lay for lay in spec.net if key[1].split(".", 1)[1].startswith(f"{lay.name}.")
                  and lay.kind == "batchnorm"), None)
    if layer is None:
        return None
    if key[1].endswith(".var"):
        result = _full(ctx, key, "running-variance-estimator",
                       problem=replace(ctx.problem, spec=other_variance(spec)))
        if result is not None:
            return variance_diagnosis(layer.variance, _label(key), _agreement(result))
    inverted = inverted_momentum(spec)
    if inverted is None:
        return None
    result = _full(ctx, key, "running-momentum-inverted",
                   problem=replace(ctx.problem, spec=inverted))
    if result is None:
        return None
    return momentum_diagnosis(layer.momentum, _label(key), _agreement(result))


NORM_HYPOTHESES: tuple[Hypothesis, ...] = (running_statistics, missing_path)
CODES = (*(f"{kind}-{PATHS[drop][0]}" for kind in STATISTICS for drop in PATHS),
         "running-variance-estimator", "running-momentum-inverted")
