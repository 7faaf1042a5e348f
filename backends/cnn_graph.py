"""The CNN forward graph both framework CNN models run, on the framework's own tensors.

Written once so that the torch and Keras models cannot disagree on the order of operations,
the dropout placement or the names under which tensors are traced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nnparity.reference.cnn_spec import CNNSpec


def trace_cnn(
    spec: CNNSpec,
    x: Any,
    blocks: Sequence[Callable[[Any], tuple[Any, Any, Any]]],
    flatten: Callable[[Any], Any],
    dense: Sequence[tuple[Callable[[Any], Any], Callable[[Any], Any]]],
    dropout_mask: Any = None,
) -> dict[str, Any]:
    """The CNN forward pass both framework models run, on the framework's own tensors.

    ``blocks``: per conv block ``a -> (z, h, pooled or None)``; ``flatten``: the last map ->
    ``[N, D]``; ``dense``: per fc layer ``(linear, activation)``. Dropout on the output layer's
    input is ``h * (mask / keep_prob)`` with the given 0/1 mask (none: evaluation). Returns every
    ``z``/``h`` in forward order under the reference's keys: ``z.conv1``, ``h.conv1``,
    ``h.pool1``, ..., ``h.flatten``, ``z.fc1``, ``h.fc1``, ..., ``h.dropout``, ``z.fcM``,
    ``h.fcM`` (in the framework's layout: see :func:`edges.make_trace`).
    """
    out: dict[str, Any] = {}
    a = x
    for i, (name, block) in enumerate(zip(spec.conv_names, blocks, strict=True), 1):
        out[f"z.{name}"], out[f"h.{name}"], pooled = block(a)
        a = out[f"h.{name}"]
        if pooled is not None:
            a = out[f"h.pool{i}"] = pooled
    h = out["h.flatten"] = flatten(a)
    last = len(spec.fc_names) - 1
    for j, (name, (linear, activation)) in enumerate(zip(spec.fc_names, dense, strict=True)):
        if j == last:
            if dropout_mask is not None:
                h = h * (dropout_mask / spec.keep_prob)
            out["h.dropout"] = h
        z = out[f"z.{name}"] = linear(h)
        h = out[f"h.{name}"] = activation(z)
    return out
