"""Model families: the kinds of spec (the source documents' MLP and CNN, and a network
written as a layer list), in one object each.

A :class:`Family` bundles a family's spec class, its init schemes and its default scheme. Every
spec builds a layer list (``spec.net``) and every family's model is the one walk over it,
:mod:`reference.network`. Code outside this module never branches on ``spec.family``: it asks
:func:`family_of` (or calls the spec's own methods: ``param_shapes``, ``is_weight``,
``param_kind``, ``as_input``, ``dropout_units``, ...), so adding a family means adding one
entry to :data:`FAMILIES`.

The model module has these functions::

    forward(spec, params, x, *, dropout_mask=None) -> Trace
    backward(spec, params, x, trace, y, ...) -> Gradients
    gradients(spec, params, x, y, *, dropout_mask=None) -> Gradients
    loss(spec, params, x, y, *, dropout_mask=None) -> float
    logits(spec, params, x) -> output [N, K] at evaluation
    predict(spec, params, x) -> probabilities (or raw outputs for l2)
    check_params(spec, params) -> None (ValueError naming the first bad parameter)
    preactivation_scale(spec, params, x, trace) -> {layer: sum |input * W| + |b| per unit}
    pool_ties(spec, trace, scales, tol) -> {layer: cells of h tied in a max-pool window}
    working_values(spec, rows, *, training=True) -> values a step (or logits) on rows holds

A spec without dropout (``spec.dropout_units == 0``) refuses a ``dropout_mask``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cnn_spec import CNNSpec
from .init import CNN_SCHEMES, NET_SCHEMES, SCHEMES, init_cnn, init_mlp, init_net
from .netspec import NetSpec
from .params import Params
from .spec import MLPSpec

Spec = MLPSpec | CNNSpec | NetSpec
"""Any model spec (the union grows with :data:`FAMILIES`)."""


@dataclass(frozen=True)
class Family:
    """One model family: ``name`` (the spec's ``family`` field), its spec class, its init
    function and schemes, and ``train_defaults``: the training options that differ from
    ``nnparity train``'s own when ``--model`` names the family (None: ``--model`` cannot name
    it; its spec class builds a run's spec by ``from_training``)."""

    name: str
    spec_class: type[MLPSpec] | type[CNNSpec] | type[NetSpec]
    init: Callable[[Any, str, int], Params]
    schemes: tuple[str, ...]
    default_scheme: str
    train_defaults: dict[str, Any] | None = None

    def init_params(self, spec: Spec, scheme: str | None = None, seed: int = 0) -> Params:
        """Fresh parameters by ``scheme`` (the spec's ``init``, else the family's default, when
        None) for ``seed``."""
        return self.init(spec, scheme or default_scheme(spec), seed)

    def spec_from_dict(self, data: dict[str, Any]) -> Spec:
        """The family's spec from its ``to_dict()`` form."""
        return self.spec_class.from_dict(data)


FAMILIES: dict[str, Family] = {
    "mlp": Family("mlp", MLPSpec, init_mlp, tuple(SCHEMES), "xavier", {}),
    "cnn": Family("cnn", CNNSpec, init_cnn, CNN_SCHEMES, "seed002",
                  {"layers": (1024, 10), "activations": ("relu", "identity"), "init": "seed002",
                   "reduction": "mean"}),
    "net": Family("net", NetSpec, init_net, NET_SCHEMES, "xavier"),
}


def family_named(name: str) -> Family:
    """The family called ``name``; ``ValueError`` listing the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_of(spec: Spec) -> Family:
    """The family of ``spec`` (by its ``family`` field)."""
    return family_named(getattr(spec, "family", None))


def default_scheme(spec: Spec) -> str:
    """The init scheme ``spec`` starts from without one named: its own ``init`` (a net spec's),
    else its family's default."""
    return getattr(spec, "init", None) or family_of(spec).default_scheme


def spec_from_dict(data: dict[str, Any]) -> Spec:
    """A spec from its ``to_dict()`` form, of the family its ``family`` key names (when absent:
    ``net`` for a dict with a ``net`` key, else ``mlp``, as files written before the CNN existed
    have no such key)."""
    if not isinstance(data, dict):
        raise ValueError(f"a spec must be a JSON object, got {type(data).__name__}")
    return family_named(data.get("family", "net" if "net" in data else "mlp")) \
        .spec_from_dict(data)


def init_params(spec: Spec, scheme: str | None = None, seed: int = 0) -> Params:
    """Fresh parameters for any spec: ``scheme`` of its family (default: ``xavier`` for the MLP,
    ``seed002`` for the CNN), reproducible for ``seed``."""
    return family_of(spec).init_params(spec, scheme, seed)
