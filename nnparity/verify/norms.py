"""The learner's normalisation layers (``batchnorm``, ``layernorm``) as verify numbers them: a
numbering of their own, from 1, beside the dense/conv one of :mod:`nnparity.verify.netview`.

A declaration names each norm layer's arrays with per-norm-layer roles (a ``{i}``/``{l}``
template over the norm layers, or a list), as it names ``W`` and ``b``:

- ``gamma``, ``beta``: where the learner keeps the scale and shift ``[D]`` (written before the
  first step, read back after each step as the updated parameters when updates are compared);
  ``gamma_new``, ``beta_new``: where the updated ones are, when not there;
- ``running_mean``, ``running_var``: where it keeps a batchnorm's running statistics ``[D]``
  (written before the first step, read after each step: ``update step<s>.<bn>.mean``/``.var``);
- ``norm_out``: the layer's output, read after the forward step (``forward z.<name>`` for a
  batchnorm, before the activation traced with it; ``h.<name>`` for a layernorm);
- ``dgamma``, ``dbeta``: read after the backward step (``grad <name>.gamma``/``.beta``).

Inputs handed over: ``gamma<l>``, ``beta<l>`` (and ``running_mean<l>``, ``running_var<l>`` for
a batchnorm), also as the lists ``gamma``, ``beta``, ``running_mean``, ``running_var``; values
read after a step are fed back under the same names for the next one.

The learner's batchnorm hyperparameters are the spec's layer fields (``momentum``, the weight
of the *old* running value as in CS231n and Keras; ``epsilon``; ``variance``: the estimator
the running variance takes from a batch, ``biased`` or ``unbiased``); in verify a batchnorm
entry without ``momentum`` takes CS231n's 0.9 (:data:`DEFAULT_MOMENTUM`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnparity.reference.family import Spec

NORM_KINDS = ("batchnorm", "layernorm")
PLACES = ("gamma", "beta", "running_mean", "running_var")
RUNNING = ("running_mean", "running_var")
UPDATED = {"gamma_new": "gamma", "beta_new": "beta"}  # role -> the place it updates
NORM_ROLES = (*PLACES, *UPDATED, "norm_out", "dgamma", "dbeta")
DEFAULT_MOMENTUM = 0.9  # CS231n's: running = 0.9 running + 0.1 batch


@dataclass(frozen=True)
class NormLayer:
    """Norm layer ``index`` (1-based among the norm layers): its ``name``, ``kind`` and the
    canonical names of its scale, shift and (batchnorm only) running statistics."""

    index: int
    name: str
    kind: str
    gamma: str
    beta: str
    mean: str | None
    var: str | None

    def canonical(self, role: str, step: int = 1) -> tuple[str, str]:
        """The canonical key of ``role`` (``KeyError`` for running statistics of a
        layernorm)."""
        if role == "norm_out":  # a batchnorm's activation, if any, is traced as its h
            return "forward", f"{'z' if self.kind == 'batchnorm' else 'h'}.{self.name}"
        if role in ("dgamma", "dbeta"):
            return "grad", self.gamma if role == "dgamma" else self.beta
        param = {"gamma": self.gamma, "beta": self.beta, "running_mean": self.mean,
                 "running_var": self.var}[role]
        if param is None:
            raise KeyError(f"{role}/{self.index}")
        return "update", f"step{step}.{param}"


def norm_layers(spec: Spec) -> list[NormLayer]:
    """The spec's normalisation layers, in order (top-level layers only)."""
    found = []
    for layer in spec.net:
        if layer.kind == "batchnorm":
            found.append(NormLayer(len(found) + 1, layer.name, layer.kind, layer.gamma,
                                   layer.beta, layer.mean, layer.var))
        elif layer.kind == "layernorm":
            found.append(NormLayer(len(found) + 1, layer.name, layer.kind, layer.weight,
                                   layer.bias, None, None))
    return found


def with_verify_defaults(data: Any) -> Any:
    """A spec's JSON with CS231n's momentum for each batchnorm entry that names none."""
    if not isinstance(data, dict) or not isinstance(data.get("net"), list):
        return data
    net = [{"momentum": DEFAULT_MOMENTUM, **entry}
           if isinstance(entry, dict) and entry.get("kind") == "batchnorm" else entry
           for entry in data["net"]]
    return {**data, "net": net}


def has_batchnorm(spec: Spec) -> bool:
    """True when the network normalises over the batch (its forward pass is a training one)."""
    return any(layer.kind == "batchnorm" for layer in spec.net)


def start_values(spec: Spec, params: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Non-trivial norm parameters to start from (in place): ``gamma`` in [0.5, 1.5], ``beta``
    around 0, a running mean around 0 and a running variance in [0.5, 1.5], so that a forgotten
    scale or shift, or an update that forgets the old running value, shows."""
    for layer in norm_layers(spec):
        shape, dtype = params[layer.gamma].shape, params[layer.gamma].dtype
        params[layer.gamma] = rng.uniform(0.5, 1.5, size=shape).astype(dtype)
        params[layer.beta] = (0.3 * rng.standard_normal(shape)).astype(dtype)
        if layer.mean is not None and layer.var is not None:
            params[layer.mean] = (0.5 * rng.standard_normal(shape)).astype(dtype)
            params[layer.var] = rng.uniform(0.5, 1.5, size=shape).astype(dtype)


def user_inputs(layers: list[NormLayer], params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``gamma<l>``, ``beta<l>``, ``running_mean<l>``, ``running_var<l>`` (flat ``[D]``)."""
    arrays = {}
    for layer in layers:
        for role in PLACES:
            param = {"gamma": layer.gamma, "beta": layer.beta, "running_mean": layer.mean,
                     "running_var": layer.var}[role]
            if param is not None:
                arrays[f"{role}{layer.index}"] = np.ascontiguousarray(params[param].reshape(-1))
    return arrays


def child_plan(layers: list[NormLayer], roles: dict[str, list[str | None]],
               compares_updates: bool) -> dict[str, list[list[Any]]]:
    """What the learner's process does for the norm roles: ``places`` (``[role, layer, expr]``,
    written after ``model``) and ``reads`` (``[role, layer, expr, when]``: after the first
    ``forward`` or ``backward`` step, or after every ``step``; an updated scale or shift
    under its place's role)."""
    places, reads = [], []
    for role, exprs in roles.items():
        for layer, expr in zip(layers, exprs, strict=True):
            if expr is None or (role in RUNNING and layer.mean is None):
                continue
            if role in PLACES:
                places.append([role, layer.index, expr])
            when = {"norm_out": "forward", "dgamma": "backward", "dbeta": "backward"}.get(role)
            if when is not None:
                reads.append([role, layer.index, expr, when])
            elif role in RUNNING or role in UPDATED or (
                    compares_updates and f"{role}_new" not in roles):
                reads.append([UPDATED.get(role, role), layer.index, expr, "step"])
    return {"places": places, "reads": reads}


def parse_key(key: str) -> tuple[str, int, int] | None:
    """``"dgamma/1"`` -> ``("dgamma", 1, 1)``, ``"running_var/2@3"`` -> ``("running_var", 2,
    3)``; None for a key of another role."""
    role, _, rest = key.partition("/")
    if role not in NORM_ROLES:
        return None
    layer, _, step = rest.partition("@")
    return role, int(layer), int(step or 1)


def canonical_of(layers: list[NormLayer], key: str) -> tuple[str, str] | None:
    """The canonical key of a raw norm key (None when ``key`` is not a norm role's;
    ``KeyError`` for a layer that does not exist)."""
    parsed = parse_key(key)
    if parsed is None:
        return None
    role, index, step = parsed
    if not 1 <= index <= len(layers):
        raise KeyError(key)
    return layers[index - 1].canonical(role, step)
