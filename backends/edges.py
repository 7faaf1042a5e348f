"""What crosses a backend's edges besides parameters: inputs, dropout masks, labels, optimiser
state and results, converted the same way for every framework backend.

- inputs: checked by the spec (``spec.as_input``), NHWC images become NCHW for ``torch``;
- dropout masks: checked ``[N, spec.dropout_units]`` 0/1 masks, the trainers' mask-drawing rule,
  and the order of the framework's dropout input;
- labels: class indices or dense targets, validated by the reference's ``as_targets``;
- optimiser state: the reference's flat state (``"t"``, ``"m.W1"``, ``"v.W1"``) split per
  parameter and joined back;
- results: framework tensors named ``z.<layer>`` / ``h.<layer>`` assembled into
  :class:`Trace` / :class:`Gradients` in the canonical layout (:mod:`.layout`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnparity.reference.dropout import check_mask, draw_dropout_mask
from nnparity.reference.family import Spec
from nnparity.reference.losses import as_targets
from nnparity.reference.results import Gradients, Trace

from .layout import (
    from_framework,
    in_nchw_flatten_order,
    nchw_flatten_order,
    nhwc_to_nchw,
    owned_copy,
    tensor_from_framework,
)


class ConventionRefused(ValueError):
    """A layer setting the backend's framework has no setting for (torch's running variance is
    always the unbiased one, Keras' the biased one): the case is skipped with this reason."""


def check_spec(spec: Any, backend: str) -> None:
    """Raise ``ValueError`` unless ``spec`` is a model spec (one with a layer list,
    ``spec.net``)."""
    if not isinstance(getattr(spec, "net", None), tuple):
        raise ValueError(f"the {backend} backend cannot run {type(spec).__name__!r}: "
                         "not a model spec (no layer list)")


def check_variant(optimizer: Any, variant: str, backend: str, api: str) -> None:
    """Raise ``ValueError`` unless ``optimizer`` (a reference ``Optimizer``) uses the backend's
    native ``variant``, implemented by ``api`` (even plain SGD differs: Keras rounds the rate)."""
    if optimizer.variant != variant:
        raise ValueError(
            f"the {backend} backend implements the {variant!r} variant of {optimizer.name} "
            f"({api}), not {optimizer.variant!r}: use Optimizer(..., variant={variant!r})"
        )


def as_input(spec: Spec, x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy in the spec's dtype of ``x [N, *spec.input_shape]`` (``[N, D]`` for
    the MLP, NHWC images for the CNN); the shape is checked by the spec."""
    return owned_copy(spec.as_input(x))


def input_to_framework(framework: str, spec: Spec, x: np.ndarray) -> np.ndarray:
    """:func:`as_input`, then NHWC -> NCHW for a ``torch`` CNN."""
    x = as_input(spec, x)
    return nhwc_to_nchw(x) if framework == "torch" and x.ndim == 4 else x


def as_dropout_mask(spec: Spec, mask: np.ndarray | None, n: int) -> np.ndarray | None:
    """A checked 0/1 mask ``[n, spec.dropout_units]`` in the spec's dtype, or ``None``
    (evaluation). The MLP has no dropout: a mask for it is an error."""
    if mask is None:
        return None
    if not spec.dropout_units:
        raise ValueError("this network has no dropout: dropout_mask must be None")
    return owned_copy(check_mask(mask, (n, spec.dropout_units)).astype(spec.dtype))


def dropout_mask_to_framework(framework: str, spec: Spec,
                              mask: np.ndarray | None) -> np.ndarray | None:
    """A canonical mask ``[N, units]`` in the order of the framework's dropout input: permuted
    to NCHW flatten order for a torch CNN whose dropout follows the flatten directly (no hidden
    dense layer), else unchanged."""
    if mask is None or not in_nchw_flatten_order(framework, spec, "h.dropout"):
        return mask
    return owned_copy(mask[:, nchw_flatten_order(*spec.flat_map)])


def training_mask(spec: Spec, n: int, mask: np.ndarray | None,
                  rng: np.random.Generator) -> np.ndarray | None:
    """The mask of one training step, by the reference trainer's rule (``NumpyTrainer.step``):
    the given ``mask``, else for a spec with ``keep_prob < 1`` a fresh one drawn from ``rng`` by
    ``draw_dropout_mask``, else ``None``. Same ``rng`` seed -> same masks in every backend."""
    if mask is None and spec.keep_prob < 1:
        mask = draw_dropout_mask(spec, n, rng)
    return as_dropout_mask(spec, mask, n)


def split_labels(
    loss: str, y: np.ndarray, n: int, k: int, dtype: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(targets [n, k] of dtype, indices [n] int64 or None)`` from labels ``y``.

    Labels are validated by the reference's ``as_targets``. Class indices ``[n]`` for ``ce``
    (the frameworks' sparse cross-entropy path) come back as int64 ``indices`` as well; the
    dense targets are always given, for losses that need them.
    """
    targets = as_targets(loss, y, n, k, np.dtype(dtype))
    y = np.asarray(y)
    sparse = loss == "ce" and y.ndim == 1 and y.dtype.kind in "biu"
    return targets, (y.astype(np.int64) if sparse else None)


def split_state(state: dict[str, np.ndarray]) -> tuple[int, dict[str, dict[str, np.ndarray]]]:
    """Reference state -> ``(t, {param: {slot: array}})``, e.g. ``{"W1": {"m": .., "v": ..}}``.

    ``t`` is Adam's step count (0 when the state has none). Slots stay in the canonical layout.
    """
    t = int(state.get("t", 0))
    slots: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        if key == "t":
            continue
        slot, _, name = key.partition(".")
        if not name:
            raise ValueError(
                f"unknown optimizer state entry {key!r} (expected 't' or 'm.W1')"
            )
        slots.setdefault(name, {})[slot] = value
    return t, slots


def join_state(
    t: int | None, slots: dict[str, dict[str, np.ndarray]], order: Sequence[str]
) -> dict[str, np.ndarray]:
    """Inverse of :func:`split_state`: ``t`` (``None`` for no step count) and per-param slots
    -> the reference's flat state, ordered as the reference orders it: ``"t"`` first, then
    per parameter (in ``order``) its ``m`` before its ``v``."""
    state: dict[str, np.ndarray] = {} if t is None else {"t": np.array(t)}
    for name in order:
        per = slots.get(name, {})
        for slot in sorted(per, key=lambda s: (s != "m", s)):
            state[f"{slot}.{name}"] = per[slot]
    return state


def make_trace(framework: str, spec: Spec, tensors: dict[str, np.ndarray]) -> Trace:
    """A :class:`Trace` from framework-layout tensors keyed ``z.<layer>`` / ``h.<name>`` in
    forward order; the output is the last ``h``."""
    trace = Trace(output=np.empty(0))
    for key, value in tensors.items():
        kind, _, name = key.partition(".")
        getattr(trace, kind)[name] = tensor_from_framework(framework, spec, key, value)
    trace.output = list(trace.h.values())[-1]
    return trace


def make_gradients(
    framework: str,
    spec: Spec,
    loss: float,
    grads: dict[str, np.ndarray],
    deltas: dict[str, np.ndarray],
    output: np.ndarray,
) -> Gradients:
    """A :class:`Gradients` from framework-layout ``grads`` (by canonical name, in the spec's
    parameter order) and ``deltas`` ``dL/dz`` (by layer name), converted to the canonical
    layout."""
    return Gradients(
        loss=float(loss),
        grads={k: from_framework(framework, k, g, spec) for k, g in grads.items()},
        deltas={k: tensor_from_framework(framework, spec, f"z.{k}", d) for k, d in deltas.items()},
        output=owned_copy(output),
    )
