"""A layer-level check of a learner's normalisation: CS231n's ``batchnorm_forward(x, gamma,
beta, bn_param)`` / ``batchnorm_backward(dout, cache)`` pair (or a layernorm's) on its own, no
network around it.

The declaration has a ``layer`` entry instead of a ``spec``: ``kind`` (``batchnorm`` or
``layernorm``), ``input_dim`` (``D``, default 4) and the hyperparameters of
:mod:`nnparity.reference.layers` (``momentum``, weighing the old running value, default 0.9;
``epsilon`` 1e-5; ``variance`` ``biased``), and the expressions :data:`ROLES` besides ``model``,
``forward`` and ``backward``. verify hands the learner ``x [N, D]``, ``gamma``, ``beta [D]`` and
the upstream gradient ``dout [N, D]`` (all drawn from ``--seed``), writes the running statistics
where ``running_mean``/``running_var`` say, and compares ``norm_out`` (``forward out``), ``dx``
(``delta dx``), ``dgamma``, ``dbeta`` (``grad``) and the running statistics after the forward
pass (``update running_mean``, ``running_var``) with the reference's functions. A divergence is
diagnosed with the normalisations' codes (:mod:`nnparity.verify.norm_diagnose`), each confirmed
by the reference computed with the mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnparity.backends.compare import Tensors, compare_all, first_divergence, tolerance
from nnparity.errors import InputError
from nnparity.parity.report import CaseResult
from nnparity.reference.layers.batchnorm import (
    VARIANCES,
    batchnorm_backward,
    batchnorm_running,
    batchnorm_train,
)
from nnparity.reference.layers.layernorm import layernorm, layernorm_backward

from .diagnose import Diagnosis
from .edges import not_judged
from .norm_diagnose import momentum_diagnosis, path_diagnosis, variance_diagnosis
from .norm_mistakes import DROPS, dx_without
from .norms import DEFAULT_MOMENTUM
from .runner import run_user_file
from .session import MISSING, YOURS, Verdict, worst_elements

if TYPE_CHECKING:
    from .grade import Options

ROLES = {"norm_out": ("forward", "out", "forward"), "dx": ("delta", "dx", "backward"),
         "dgamma": ("grad", "dgamma", "backward"), "dbeta": ("grad", "dbeta", "backward"),
         "running_mean": ("update", "running_mean", "step"),
         "running_var": ("update", "running_var", "step")}
"""Role -> (stage, the tensor's name in the report, when the learner's process reads it)."""
KEYS = ("layer", "model", "forward", "backward", *ROLES)
LAYER_FIELDS = ("kind", "input_dim", "momentum", "epsilon", "variance")
KINDS = ("batchnorm", "layernorm")
DEFAULT_DIM = 4
MEMORY = 64 << 20  # bytes the learner's process may need: a few [N, D] arrays and NumPy


@dataclass(frozen=True)
class LayerCheck:
    """A validated layer-level declaration."""

    kind: str
    dim: int
    momentum: float
    epsilon: float
    variance: str
    calls: dict[str, str]
    roles: dict[str, str] = field(default_factory=dict)
    steps: int = 1

    def to_json(self) -> dict[str, Any]:
        """What the learner's process needs (:mod:`nnparity.verify.child`): the steps and the
        norm layer's places and reads, no weights."""
        places = [[role, 1, expr] for role, expr in self.roles.items() if role.startswith("run")]
        reads = [[role, 1, expr, ROLES[role][2]] for role, expr in self.roles.items()]
        return {"layout": "row", "bias_shape": "flat", "labels": "onehot", "lr": 0.1,
                "grads_after": "backward", "calls": self.calls, "steps": 1, "scalars": {},
                "roles": {}, "depth": 0, "bias": False, "slopes": 0,
                "norms": {"places": places, "reads": reads}}


def is_layer_check(declaration: dict[str, Any]) -> bool:
    """True for a declaration with a ``layer`` entry."""
    return "layer" in declaration


def build(declaration: dict[str, Any], where: str) -> LayerCheck:
    """Validate a layer-level declaration (exit 2 with one line for a bad one)."""
    unknown = sorted(set(declaration) - set(KEYS))
    if unknown:
        raise InputError(f"{where}: a layer check (NNPARITY['layer']) takes the keys "
                         f"{', '.join(KEYS)}, not {', '.join(map(repr, unknown))}")
    layer = declaration["layer"]
    if not isinstance(layer, dict) or layer.get("kind") not in KINDS:
        raise InputError(f"{where}: NNPARITY['layer'] must be a dict with 'kind' "
                         f"{' or '.join(KINDS)}, got {layer!r}")
    extra = sorted(set(layer) - set(LAYER_FIELDS))
    if extra:
        raise InputError(f"{where}: NNPARITY['layer'] takes {', '.join(LAYER_FIELDS)}, not "
                         f"{', '.join(map(repr, extra))}")
    dim = layer.get("input_dim", DEFAULT_DIM)
    momentum = layer.get("momentum", DEFAULT_MOMENTUM)
    epsilon = layer.get("epsilon", 1e-5)
    variance = layer.get("variance", "biased")
    if isinstance(dim, bool) or not isinstance(dim, int) or not 2 <= dim <= 4096:
        raise InputError(f"{where}: layer input_dim must be a whole number from 2 to 4096, "
                         f"got {dim!r}")
    for name, value, ok in (("momentum", momentum, lambda v: 0 <= v < 1),
                            ("epsilon", epsilon, lambda v: v > 0)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
            raise InputError(f"{where}: layer {name} must be a number "
                             f"({'in [0, 1)' if name == 'momentum' else 'above 0'}), "
                             f"got {value!r}")
    if variance not in VARIANCES:
        raise InputError(f"{where}: layer variance must be one of {', '.join(VARIANCES)}, "
                         f"got {variance!r}")
    exprs = {k: declaration[k] for k in (*ROLES, "model", "forward", "backward")
             if k in declaration}
    for key, expr in exprs.items():
        if not isinstance(expr, str) or not expr.strip():
            raise InputError(f"{where}: NNPARITY[{key!r}] must be a Python expression as a "
                             f"string, got {expr!r}")
    if layer["kind"] == "layernorm" and {"running_mean", "running_var"} & set(exprs):
        raise InputError(f"{where}: running statistics declared for a layernorm, which keeps "
                         "none")
    if "forward" not in exprs or not set(exprs) & set(ROLES):
        raise InputError(f"{where}: a layer check needs a 'forward' step and at least one of "
                         f"{', '.join(ROLES)}")
    if {"dx", "dgamma", "dbeta"} & set(exprs) and "backward" not in exprs:
        raise InputError(f"{where}: dx/dgamma/dbeta are declared but there is no 'backward' "
                         "step")
    calls = {k: exprs[k] for k in ("model", "forward", "backward") if k in exprs}
    return LayerCheck(layer["kind"], dim, float(momentum), float(epsilon), variance, calls,
                      {k: exprs[k] for k in ROLES if k in exprs})


@dataclass
class LayerProblem:
    """The inputs (``x``, ``gamma``, ``beta``, ``dout``, the running statistics to start
    from) and the check's hyperparameters."""

    check: LayerCheck
    arrays: dict[str, np.ndarray]

    def reference(self, drop: str | None = None, variance: str | None = None,
                  momentum: float | None = None) -> Tensors:
        """The reference's tensors (``drop``: a backward without that path; ``variance``,
        ``momentum``: the running statistics with another estimator or momentum)."""
        check, a = self.check, self.arrays
        x, gamma, beta, dout = a["x"], a["gamma"], a["beta"], a["dout"]
        if check.kind == "layernorm":
            y, (xhat, r) = layernorm(x, gamma, beta, check.epsilon)
            dx, dgamma, dbeta = layernorm_backward(dout, xhat, r, gamma, True)
            if drop is not None:
                dx = dx_without(dout * gamma, xhat, r, (1,), drop)
            return _keyed({"norm_out": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta})
        y, (xhat, inv, mu, var, m) = batchnorm_train(x, gamma, beta, check.epsilon)
        dx, dgamma, dbeta = batchnorm_backward(dout, xhat, inv, gamma)
        if drop is not None:
            dx = dx_without(dout, xhat, gamma * inv, (0,), drop)
        mean, running_var = batchnorm_running(
            a["running_mean1"], a["running_var1"], mu, var, m,
            check.momentum if momentum is None else momentum,
            (variance or check.variance) == "unbiased")
        return _keyed({"norm_out": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta,
                       "running_mean": mean, "running_var": running_var})


def _keyed(values: dict[str, np.ndarray]) -> Tensors:
    return {ROLES[role][:2]: value for role, value in values.items()}


def make_problem(check: LayerCheck, seed: int, batch: int) -> LayerProblem:
    """The seeded inputs: ``x [batch, D]`` around a non-zero mean, ``gamma`` in [0.5, 1.5],
    ``beta`` and ``dout`` random, a running mean around 0 and a variance in [0.5, 1.5]."""
    rng = np.random.default_rng([seed, 24])
    d = check.dim
    arrays = {"x": rng.standard_normal((batch, d)) * 2 + rng.standard_normal(d),
              "gamma": rng.uniform(0.5, 1.5, d), "beta": 0.3 * rng.standard_normal(d),
              "dout": rng.standard_normal((batch, d)),
              "running_mean1": 0.5 * rng.standard_normal(d),
              "running_var1": rng.uniform(0.5, 1.5, d)}
    return LayerProblem(check, arrays)


def diagnose(problem: LayerProblem, user: Tensors, key: tuple[str, str],
             tol: float) -> Diagnosis | None:
    """The normalisations' mistakes that reproduce the learner's first wrong tensor."""
    check = problem.check

    def agreement(variant: Tensors) -> str | None:
        result = compare_all({key: user[key]}, {key: variant[key]}, tol)[0]
        return f"max rel {result.max_rel:.1e} <= tol {tol:.0e}" if result.passed else None

    label = f"{key[0]} {key[1]}"
    if key == ("delta", "dx"):
        for drop in DROPS:
            if (found := agreement(problem.reference(drop=drop))) is not None:
                return path_diagnosis(check.kind, drop, label, found)
    if key[0] != "update":
        return None
    if key[1] == "running_var":
        other = "unbiased" if check.variance == "biased" else "biased"
        if (found := agreement(problem.reference(variance=other))) is not None:
            return variance_diagnosis(check.variance, label, found)
    if check.momentum > 0 and \
            (found := agreement(problem.reference(momentum=1 - check.momentum))) is not None:
        return momentum_diagnosis(check.momentum, label, found)
    return None


def verify_layer(path: Path, case: str, declaration: dict[str, Any],
                 options: Options) -> Verdict:
    """Run the learner's pair on the seeded inputs and judge each declared tensor."""
    check = build(declaration, str(path))
    problem = make_problem(check, options.seed, options.batch)
    inputs = {k: np.ascontiguousarray(v) for k, v in problem.arrays.items()}
    outcome = run_user_file(path, check, inputs, options.batch,  # type: ignore[arg-type]
                            timeout=options.timeout, sandbox=options.sandbox, memory=MEMORY,
                            root=options.root, python=options.python,
                            copies=options.copies)
    user: Tensors = {}
    for raw, value in outcome.raw.items():
        role = raw.split("/", 1)[0]
        if role in ROLES:
            user[ROLES[role][:2]] = np.asarray(value)
    unread = {ROLES[raw.split("/", 1)[0]][:2]: why for raw, why in outcome.missing.items()
              if raw.split("/", 1)[0] in ROLES}
    reference = problem.reference()
    expected = {k: v for k, v in reference.items() if k in user or k in unread}
    tol = tolerance("float64", {"dense"})
    comparisons = [c if (c.stage, c.name) not in unread else replace(c, note=MISSING)
                   for c in compare_all(user, expected, tol, sides=("your result",
                                                                     "the reference"))]
    result = CaseResult(case, YOURS, comparisons, seconds=outcome.seconds, error=outcome.error,
                        spec={"layer": {"kind": check.kind, "input_dim": check.dim,
                                        "momentum": check.momentum, "epsilon": check.epsilon,
                                        "variance": check.variance}})
    verdict = Verdict(case, [result], warnings=[*outcome.warnings, *unread.values()])
    first = first_divergence(comparisons)
    if first is not None and (first.stage, first.name) in user:
        key = (first.stage, first.name)
        with np.errstate(all="ignore"):
            verdict.diagnosis = diagnose(problem, user, key, tol)
        if verdict.diagnosis is None:
            verdict.worst_elements = worst_elements(user[key], reference[key])
    verdict.edges = not_judged(options.edge_cases, "a layer check runs one generic batch")
    return verdict
