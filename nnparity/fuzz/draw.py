"""Random ``net`` specs, the same ones for the same seed on any machine.

Spec ``index`` of a run seeded ``seed`` is drawn from ``numpy.random.default_rng([seed,
index])`` alone, so a spec does not depend on the others, on the order tasks run in or on the
machine. Each layer kind of :data:`reference.layers.KINDS` has one field generator in
:data:`GENERATORS` (a design test names a kind without one): given the per-sample shape reached
so far, it returns the layer's JSON fields, or ``None`` when the kind cannot follow there (an
activation only after a dense or conv2d layer, a pool only on a map that holds its window).
Shapes stay valid by construction; every spec is also validated by
:class:`reference.netspec.NetSpec` before it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnparity.parity.cases import OPTIMIZERS
from nnparity.reference.activations import ACTIVATIONS, PRELU_SLOPES
from nnparity.reference.layers import KINDS, make_layer
from nnparity.reference.layers.gelu import GELU_FORMS
from nnparity.reference.netspec import DTYPES, INITS, REDUCTIONS, NetSpec

Shape = tuple[int, ...]
MAX_BODY = 5  # layers drawn before the closing flatten/dense head
MAX_UNITS = 6
MAX_MAP = 8  # input height and width
MAX_CHANNELS = 3
WEIGHT_DECAYS = (0.0, 1e-3)
KEEP_PROBS = (0.5, 0.8)
ACTIVATE_AFTER_PARAM = 0.6  # an activation drawn right after a dense/conv2d layer this often
OUTPUT_ACTIVATION = 0.3  # an activation after the output layer this often
OUTPUTS = {"ce": (2, 5), "bce": (1, 1), "l2": (1, 4), "mse": (1, 4)}
"""Loss -> the range of output widths it takes (``ce`` at least two classes, ``bce`` one logit)."""


@dataclass(frozen=True)
class Slot:
    """Where the next layer goes: the per-sample ``shape`` so far (``(D,)`` or ``(H, W, C)``),
    whether the previous layer is a dense/conv2d/batchnorm one (``after_param``: an activation
    may follow) and the spec's one dropout ``keep_prob``."""

    rng: np.random.Generator
    shape: Shape
    after_param: bool
    keep_prob: float

    @property
    def is_map(self) -> bool:
        """True on an ``(H, W, C)`` map."""
        return len(self.shape) == 3

    def integer(self, low: int, high: int) -> int:
        """A uniform integer in ``[low, high]``."""
        return int(self.rng.integers(low, high + 1))

    def choice(self, options: tuple[Any, ...]) -> Any:
        """One of ``options``, uniformly."""
        return options[int(self.rng.integers(len(options)))]


Generator = Callable[[Slot], dict[str, Any] | None]


def _dense(slot: Slot) -> dict[str, Any] | None:
    return None if slot.is_map else {"units": slot.integer(1, MAX_UNITS)}


def _conv2d(slot: Slot) -> dict[str, Any] | None:
    if not slot.is_map:
        return None
    kernel = slot.integer(1, min(3, *slot.shape[:2]))
    return {"filters": slot.integer(1, MAX_CHANNELS), "kernel": kernel,
            "stride": slot.integer(1, 2), "padding": slot.choice(("same", "valid"))}


def _window(slot: Slot, paddings: tuple[str, ...]) -> dict[str, Any] | None:
    """A pool's size (2 or 3, within the map), stride (1 to size) and padding."""
    if not slot.is_map or min(slot.shape[:2]) < 2:
        return None
    size = slot.integer(2, min(3, *slot.shape[:2]))
    return {"size": size, "stride": slot.integer(1, size), "padding": slot.choice(paddings)}


def _maxpool(slot: Slot) -> dict[str, Any] | None:
    return _window(slot, ("same", "valid"))


def _avgpool(slot: Slot) -> dict[str, Any] | None:
    return _window(slot, ("valid",))


def _flatten(slot: Slot) -> dict[str, Any] | None:
    return {} if slot.is_map else None


def _dropout(slot: Slot) -> dict[str, Any] | None:
    return None if slot.is_map else {"keep_prob": slot.keep_prob}


def _activation(slot: Slot) -> dict[str, Any] | None:
    return {} if slot.after_param else None


def _prelu(slot: Slot) -> dict[str, Any] | None:
    return {"slopes": slot.choice(PRELU_SLOPES)} if slot.after_param else None


def _gelu(slot: Slot) -> dict[str, Any] | None:
    return {"approximate": slot.choice(GELU_FORMS)} if slot.after_param else None


def _batchnorm(slot: Slot) -> dict[str, Any] | None:
    """Anywhere: after a bias too, whose gradient then cancels to rounding noise (judged against
    its terms by the rounding judge, :mod:`nnparity.parity.rounding_judge`)."""
    return {"momentum": slot.choice((0.9, 0.99)), "epsilon": slot.choice((1e-5, 1e-3)),
            "variance": slot.choice(("biased", "unbiased"))}


def _layernorm(slot: Slot) -> dict[str, Any] | None:
    return None if slot.is_map else {"epsilon": slot.choice((1e-5, 1e-3))}


def _global_avgpool(slot: Slot) -> dict[str, Any] | None:
    return {} if slot.is_map else None


def _residual(slot: Slot) -> dict[str, Any] | None:
    """A block on a map (a residual takes no flattened map): a SAME stride-1 convolution and a
    tanh, projected when it changes the channels."""
    if not slot.is_map:
        return None
    filters = slot.integer(1, MAX_CHANNELS)
    kernel = slot.integer(1, min(3, *slot.shape[:2]))
    return {"net": [{"kind": "conv2d", "filters": filters, "kernel": kernel, "stride": 1,
                     "padding": "same"}, {"kind": "tanh"}],
            "projection": filters != slot.shape[2]}


GENERATORS: dict[str, Generator] = {
    "dense": _dense,
    "conv2d": _conv2d,
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "flatten": _flatten,
    "dropout": _dropout,
    "prelu": _prelu,
    "gelu": _gelu,
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "global_avgpool": _global_avgpool,
    "residual": _residual,
    **dict.fromkeys(ACTIVATIONS, _activation),
}
"""Layer kind -> its field generator (module docstring). A new kind of ``KINDS`` adds a row."""


@dataclass(frozen=True)
class Drawn:
    """Spec ``index`` of the run seeded ``seed``: the spec's JSON dict (the ``net`` family) and
    the optimiser it is trained with (one of ``check --spec``'s)."""

    seed: int
    index: int
    spec: dict[str, Any]
    optimizer: str


def _next_shape(shape: Shape, kind: str, fields: dict[str, Any]) -> Shape:
    """The per-sample shape after a layer of ``kind`` with ``fields``, by the layer's own rule
    (a residual block's: its sub-list's, which its skip path matches or projects to)."""
    if kind == "residual":
        for entry in fields["net"]:
            inner = {k: v for k, v in entry.items() if k != "kind"}
            shape = _next_shape(shape, entry["kind"], inner)
        return shape
    return make_layer(kind, "drawn", **fields).output_shape(shape)


def _layer(slot: Slot, kinds: list[str]) -> tuple[str, dict[str, Any]]:
    """A kind drawn uniformly among those whose generator fits ``slot``, with its fields."""
    while True:
        kind = slot.choice(tuple(kinds))
        fields = GENERATORS[kind](slot)
        if fields is not None:
            return kind, fields


def draw(seed: int, index: int) -> Drawn:
    """Spec ``index`` of the run seeded ``seed`` (module docstring)."""
    rng = np.random.default_rng([seed, index])
    kinds = [kind for kind in KINDS if kind in GENERATORS]
    activations = [kind for kind in kinds if KINDS[kind].role == "activation"]
    loss = str(rng.choice(list(OUTPUTS)))
    if rng.random() < 0.5:
        shape: Shape = (int(rng.integers(3, MAX_MAP + 1)), int(rng.integers(3, MAX_MAP + 1)),
                        int(rng.integers(1, MAX_CHANNELS + 1)))
    else:
        shape = (int(rng.integers(1, MAX_UNITS + 1)),)
    keep_prob = float(rng.choice(KEEP_PROBS))
    net: list[dict[str, Any]] = []
    after_param = False
    start = shape
    for _ in range(int(rng.integers(0, MAX_BODY + 1))):
        activate = after_param and rng.random() < ACTIVATE_AFTER_PARAM
        kind, fields = _layer(Slot(rng, shape, after_param, keep_prob),
                              activations if activate else kinds)
        net.append({"kind": kind, **fields})
        shape = _next_shape(shape, kind, fields)
        after_param = kind in ("dense", "conv2d", "batchnorm")
    if len(shape) == 3:
        net.append({"kind": "flatten"})
    low, high = OUTPUTS[loss]
    net.append({"kind": "dense", "units": int(rng.integers(low, high + 1))})
    if rng.random() < OUTPUT_ACTIVATION:
        kind, fields = _layer(Slot(rng, shape, True, keep_prob), activations)
        net.append({"kind": kind, **fields})
    spec = {"family": "net", "input_shape": list(start), "loss": loss,
            "reduction": str(rng.choice(REDUCTIONS)), "dtype": str(rng.choice(DTYPES)),
            "weight_decay": float(rng.choice(WEIGHT_DECAYS)), "init": str(rng.choice(INITS)),
            "net": net}
    NetSpec.from_dict(spec)  # valid by construction; a generator's bug raises here, loudly
    return Drawn(seed, index, spec, str(rng.choice(OPTIMIZERS)))
