"""The delta-debugging loop: a failing spec made smaller while it still fails.

Candidates, smallest change to the spec's size first: drop a run of layers (halves, then
quarters, ... then single layers), then simplify one field (an integer field to 1 or halved, the
input's dimensions halved, weight decay to 0). A candidate that
:class:`reference.netspec.NetSpec` refuses is passed over without a run; the first one that still
fails replaces the spec and the search starts again, until no candidate fails or ``budget``
runs are spent. The result is 1-minimal in layers when the budget allows: removing any one layer
makes it pass or invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nnparity.reference.netspec import NetSpec

Spec = dict[str, Any]
SHRINK_BUDGET = 60  # runs of a candidate per finding
INTEGER_FIELDS = ("units", "filters", "kernel", "size", "stride")


@dataclass(frozen=True)
class Shrunk:
    """The smallest failing spec found and the candidate runs it took."""

    spec: Spec
    runs: int


def _valid(spec: Spec) -> bool:
    try:
        NetSpec.from_dict(spec)
    except (ValueError, TypeError):
        return False
    return True


def _without_layers(spec: Spec) -> Iterator[Spec]:
    net = spec["net"]
    size = len(net) // 2
    while size >= 1:
        for start in range(0, len(net) - size + 1):
            yield {**spec, "net": net[:start] + net[start + size:]}
        size //= 2


def _smaller(value: int) -> list[int]:
    return [v for v in dict.fromkeys((1, value // 2)) if 1 <= v < value]


def _simpler_fields(spec: Spec) -> Iterator[Spec]:
    net = spec["net"]
    for i, layer in enumerate(net):
        for field in INTEGER_FIELDS:
            value = layer.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                for smaller in _smaller(value):
                    yield {**spec, "net": [*net[:i], {**layer, field: smaller}, *net[i + 1:]]}
    shape = spec["input_shape"]
    for axis, value in enumerate(shape):
        for smaller in _smaller(value):
            yield {**spec, "input_shape": [*shape[:axis], smaller, *shape[axis + 1:]]}
    if spec.get("weight_decay"):
        yield {**spec, "weight_decay": 0.0}


def candidates(spec: Spec) -> Iterator[Spec]:
    """Every simplification of ``spec`` tried, in the module docstring's order (some invalid)."""
    yield from _without_layers(spec)
    yield from _simpler_fields(spec)


def shrink(spec: Spec, still_fails: Callable[[Spec], bool], budget: int = SHRINK_BUDGET) -> Shrunk:
    """The smallest spec reached from the failing ``spec`` by :func:`candidates` for which
    ``still_fails`` holds, spending at most ``budget`` calls of it."""
    runs = 0
    while runs < budget:
        for candidate in candidates(spec):
            if not _valid(candidate):
                continue
            runs += 1
            if still_fails(candidate):
                spec = candidate
                break
            if runs >= budget:
                break
        else:
            break
    return Shrunk(spec, runs)
