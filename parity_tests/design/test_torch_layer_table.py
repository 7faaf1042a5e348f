"""The torch backend's layer table covers the reference's layer vocabulary: every kind of
``reference.layers.KINDS`` has exactly one row in ``backends/torch_layers.py`` (a kind missing
fails naming it; a row for no kind is dead code), and each row maps every parameter its layer
declares to a torch variable."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from nnparity.reference.layers import KINDS

pytestmark = pytest.mark.torch


def kinds_without_a_row(table: Iterable[str]) -> list[str]:
    """The kinds of ``KINDS`` that ``table`` (its kind names) has no row for."""
    return sorted(set(KINDS) - set(table))


def test_every_kind_has_a_row() -> None:
    from nnparity.backends.torch_layers import LAYERS

    missing = kinds_without_a_row(LAYERS)
    assert not missing, f"backends/torch_layers.py has no row for {', '.join(missing)}"
    orphans = sorted(set(LAYERS) - set(KINDS))
    assert not orphans, f"backends/torch_layers.py has rows for no kind: {', '.join(orphans)}"


def test_a_missing_kind_is_named() -> None:
    from nnparity.backends.torch_layers import LAYERS

    table = {kind: row for kind, row in LAYERS.items() if kind != "prelu"}
    assert kinds_without_a_row(table) == ["prelu"]


def test_every_declared_parameter_has_a_torch_variable() -> None:
    """Each parameter kind in one network: every canonical name comes back from the table, as
    a parameter of its layer's module with the layer's canonical element count."""
    import math

    from nnparity.backends import torch_layers
    from nnparity.reference.netspec import NetSpec

    spec = NetSpec((6, 6, 2), [{"kind": "conv2d", "filters": 3, "kernel": 3},
                               {"kind": "prelu", "slopes": "unit"}, {"kind": "flatten"},
                               {"kind": "dense", "units": 4}, {"kind": "prelu"},
                               {"kind": "dense", "units": 2, "use_bias": False}])
    found = {}
    for layer, shape in zip(spec.net, spec.layer_shapes, strict=False):
        module = torch_layers.build(layer, shape, spec)
        found.update(torch_layers.variables(layer, shape, module))
    shapes = spec.param_shapes()
    assert list(found) == list(shapes)
    for name, parameter in found.items():
        assert parameter.numel() == math.prod(shapes[name]), name
