"""Dropout in a learner's network: verify draws each dropout layer's 0/1 mask and hands it to the
learner's code (``mask1, mask2, ...`` and the list ``masks``, one per dropout layer in order,
``[N, D]``, ``[D, N]`` in column layout); the reference applies the same mask, so the mask's
use and its ``1 / keep_prob`` scaling are checked. A learner's own random draw cannot be
reproduced (no two RNGs agree), which is why the mask is handed over, not declared.

The problem's spec is a :class:`MaskedSpec`: the declared spec whose dropout layers hold their
mask (:class:`MaskedDropout`), so that every run of the reference, the mistakes' variants
included, applies it. The classic mistakes, built in for :mod:`nnparity.verify.diagnose`:
no dropout at all, the ``1 / keep_prob`` scaling left out, and the backward without the
mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nnparity.reference.dropout import draw_mask, dropout
from nnparity.reference.family import Spec
from nnparity.reference.layers import Dropout, Run

from .mistakes import NetVariant, _init_fields, with_layers

Params = dict[str, np.ndarray]
MASK_STREAM = 7  # the masks' own generator, [seed, 7]: the batch's and weights' draws unchanged


@dataclass(frozen=True)
class MaskedDropout(Dropout):
    """A dropout layer applying its own ``mask [N, D]`` (training: ``x * mask / keep_prob``),
    whatever the pass's; its output is traced."""

    traced_without_mask: bool = True
    mask: np.ndarray = field(default_factory=lambda: np.ones((0, 0)), compare=False,
                             repr=False)

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        return dropout(x, self.mask, self.keep_prob), None

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return dropout(dy, self.mask, self.keep_prob), {}


class MaskedSpec(NetVariant):
    """``spec`` with each dropout layer holding its mask (``masks``: layer name -> ``[N, D]``);
    :meth:`with_` keeps the masks."""

    def __init__(self, spec: Spec, masks: dict[str, np.ndarray]) -> None:
        super().__init__(spec, tuple(
            MaskedDropout(**{**_init_fields(layer), "traced_without_mask": True},
                          mask=masks[layer.name]) if isinstance(layer, Dropout) else layer
            for layer in spec.net))
        self.masks = masks

    def with_(self, **changes: Any) -> MaskedSpec:
        """The spec with fields changed, the same masks applied."""
        return MaskedSpec(self.spec.with_(**changes), self.masks)


def with_masks(spec: Spec, seed: int, n: int) -> Spec:
    """``spec`` with each dropout layer's mask drawn (seeded by ``seed``, ``n`` rows, its keep
    probability), or ``spec`` itself without dropout."""
    layers = [layer for layer in spec.net if isinstance(layer, Dropout)]  # none in a block
    if not layers:
        return spec
    rng = np.random.default_rng([seed, MASK_STREAM])
    shapes = dict(zip((layer.name for layer in spec.net), spec.layer_shapes, strict=False))
    return MaskedSpec(spec, {layer.name: draw_mask(rng, (n, *shapes[layer.name]),
                                                   layer.keep_prob, spec.dtype)
                             for layer in layers})


BACKENDS_SKIPPED = ("a network with dropout: the frameworks' training steps draw their own "
                    "masks, verify's are handed to your code only")


def masks_of(spec: Spec) -> list[np.ndarray]:
    """The masks handed to the learner, one per dropout layer in order (none without)."""
    return list(spec.masks.values()) if isinstance(spec, MaskedSpec) else []


def _changed(spec: Spec, change: Any) -> NetVariant | None:
    if not isinstance(spec, MaskedSpec):
        return None
    return with_layers(spec, lambda layer: change(layer) if isinstance(layer, MaskedDropout)
                       else layer)


def without_dropout(spec: Spec) -> Spec | None:
    """The declared spec, whose dropout is the identity without a mask (the learner's code
    applying none: evaluation's pass where training's is checked)."""
    return spec.spec if isinstance(spec, MaskedSpec) else None


def unscaled(spec: Spec) -> NetVariant | None:
    """``spec`` whose dropout applies its mask without the ``1 / keep_prob`` scaling."""
    return _changed(spec, lambda layer: replace(layer, keep_prob=1.0))


@dataclass(frozen=True)
class UnmaskedBackward(MaskedDropout):
    """Dropout whose backward scales by ``1 / keep_prob`` but forgets the mask: dropped units
    get a gradient."""

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return dy / dy.dtype.type(self.keep_prob), {}


def unmasked_backward(spec: Spec) -> NetVariant | None:
    """``spec`` whose dropout backward leaves the mask out."""
    return _changed(spec, lambda layer: UnmaskedBackward(**_init_fields(layer)))
