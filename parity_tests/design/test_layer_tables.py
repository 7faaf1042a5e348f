"""Every layer kind has a row in every table that renders layers outside the reference: a kind
missing one fails here, naming the table and the kind (the backends' tables have their own
tests beside their modules' design tests)."""

from __future__ import annotations

import pytest

from nnparity.export.graph import PLACERS
from nnparity.reference.layers import KINDS
from nnparity.reference.netspec import PREFIXES

TABLES = {"nnparity.export.graph.PLACERS": PLACERS}


@pytest.mark.parametrize("table", TABLES)
def test_every_kind_has_a_row(table: str) -> None:
    missing = sorted(set(KINDS) - set(TABLES[table]))
    assert not missing, f"{table} has no row for layer kind(s) {', '.join(missing)}"


def test_every_kind_that_is_not_an_activation_has_a_name_prefix() -> None:
    missing = sorted(kind for kind, cls in KINDS.items()
                     if cls.role != "activation" and kind not in PREFIXES)
    assert not missing, f"reference.netspec.PREFIXES has no prefix for {', '.join(missing)}"
