"""The tensorflow backend's one table (``backends/keras_layers.py``) covers every layer kind of
the reference (``reference.layers.KINDS``), and nothing else."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from nnparity.reference.layers import KINDS

pytestmark = pytest.mark.tensorflow


def table_gaps(table: Iterable[str]) -> list[str]:
    """One line per kind of ``KINDS`` without an entry in ``table``, and per entry that is no
    kind of ``KINDS``."""
    table = list(table)
    return ([f"no Keras layer for the layer kind {kind!r}" for kind in KINDS if kind not in table]
            + [f"an entry for {kind!r}, which is no layer kind" for kind in table
               if kind not in KINDS])


def test_every_layer_kind_has_one_keras_entry() -> None:
    from nnparity.backends.keras_layers import LAYERS

    assert not table_gaps(LAYERS), "; ".join(table_gaps(LAYERS))


def test_a_missing_or_unknown_kind_is_named() -> None:
    table = [kind for kind in KINDS if kind != "prelu"] + ["softplus"]
    assert table_gaps(table) == ["no Keras layer for the layer kind 'prelu'",
                                 "an entry for 'softplus', which is no layer kind"]
