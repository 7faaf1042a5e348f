"""The JAX backend's layer table (``backends/jax_layers.LAYERS``) has a row for every layer kind of
``reference.layers.KINDS``: a kind added to the reference without one fails here, naming it."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from nnparity.reference.layers import KINDS

jax_layers = pytest.importorskip("nnparity.backends.jax_layers", reason="jax is not installed")


def missing_kinds(table: Iterable[str], kinds: Iterable[str]) -> list[str]:
    """The kinds that have no row in ``table``, in ``kinds``' order."""
    rows = set(table)
    return [kind for kind in kinds if kind not in rows]


def test_every_layer_kind_has_a_jax_row() -> None:
    missing = missing_kinds(jax_layers.LAYERS, KINDS)
    assert not missing, f"backends/jax_layers.LAYERS has no row for {', '.join(missing)}"


def test_the_table_has_no_kind_the_reference_lacks() -> None:
    assert not missing_kinds(KINDS, jax_layers.LAYERS)


def test_a_missing_kind_is_named() -> None:
    table = {kind: row for kind, row in jax_layers.LAYERS.items() if kind != "maxpool"}
    assert missing_kinds(table, KINDS) == ["maxpool"]


def test_building_a_kind_without_a_row_names_it() -> None:
    class Swish:
        kind, name = "swish", "layer1"

    with pytest.raises(ValueError, match="no layer kind 'swish'"):
        jax_layers.build(Swish())
