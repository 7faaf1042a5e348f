"""The README regenerator's cell merge: re-measured cells replace only themselves."""

from __future__ import annotations

import datetime
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "update_readme.py"

CURRENT = """Produced by `nnparity reproduce -k cnn`:

| configuration | preset | reported | numpy | torch |
|---|---|---|---|---|
| Net A | `a` | 98 % | 97.00 % · 10.0 s/run | – |
| Net B | `b` | 90 % | 89.00 % · 20.0 s/run | 89.50 % · 5.0 s/run |

Row `a` re-measured by `x` on 2026-01-01 (m).

Row `b`, column torch: re-measured by `y --backend torch` on 2026-01-01 (m).
"""


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("update_readme", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fresh(header: list[str], *rows: list[str]) -> str:
    """A block as ``nnparity reproduce --markdown`` writes it."""
    lines = ["| " + " | ".join(cells) + " |" for cells in [header, *rows]]
    lines.insert(1, "|---" * len(header) + "|")
    return "Produced by `x`:\n\n" + "\n".join(lines) + "\n"


def test_a_new_column_keeps_every_other_cell_and_marks_unmeasured_ones(script) -> None:
    body = fresh(["configuration", "preset", "reported", "jax"],
                 ["Net B", "`b`", "90 %", "89.70 % · 7.0 s/run"])
    merged = script.merge_rows(CURRENT, body, "nnparity reproduce -k '^b$' --backend jax", "m")
    header, rows, _, after = script.parse_table(merged)
    assert header == ["configuration", "preset", "reported", "numpy", "torch", "jax"]
    assert rows["a"][3:] == ["97.00 % · 10.0 s/run", "–", "–"]
    assert rows["b"][3:] == ["89.00 % · 20.0 s/run", "89.50 % · 5.0 s/run", "89.70 % · 7.0 s/run"]
    notes = [line for line in after if line.strip()]
    assert len(notes) == 3  # both older notes still describe cells that were not re-measured
    assert notes[-1] == (f"Row `b`, column jax: re-measured by `nnparity reproduce -k '^b$' "
                         f"--backend jax` on {datetime.date.today()} (m).")


def test_re_measured_cells_replace_theirs_and_the_notes_they_supersede(script) -> None:
    body = fresh(["configuration", "preset", "reported", "torch"],
                 ["Net B", "`b`", "90 %", "89.90 % · 4.0 s/run"])
    merged = script.merge_rows(CURRENT, body, "cmd", "m")
    _, rows, _, after = script.parse_table(merged)
    assert rows["b"][3:] == ["89.00 % · 20.0 s/run", "89.90 % · 4.0 s/run"]
    assert rows["a"][3:] == ["97.00 % · 10.0 s/run", "–"]
    notes = [line for line in after if line.strip()]
    assert not any("--backend torch" in note for note in notes)  # superseded: dropped
    assert any(note.startswith("Row `a` re-measured") for note in notes)  # numpy's: kept


def test_a_row_the_table_lacks_is_added(script) -> None:
    body = fresh(["configuration", "preset", "reported", "numpy"],
                 ["Net C", "`c`", "(no figure)", "50.00 % · 1.0 s/run"])
    _, rows, _, _ = script.parse_table(script.merge_rows(CURRENT, body, "cmd", "m"))
    assert list(rows) == ["a", "b", "c"]
    assert rows["c"] == ["Net C", "`c`", "(no figure)", "50.00 % · 1.0 s/run", "–"]


@pytest.mark.parametrize(("note", "presets", "columns", "covered"), [
    ("Row `a` re-measured by `x` on d.", {"a"}, {"numpy"}, True),
    ("Row `a` re-measured by `x` on d.", {"a"}, {"torch"}, False),
    ("Rows `a`, `b`, column torch: re-measured by `x` on d.", {"a"}, {"torch"}, False),
    ("Rows `a`, `b`, columns numpy, jax: re-measured by `x`.", {"a", "b"}, {"numpy", "jax"}, True),
])
def test_a_note_is_covered_only_when_all_its_cells_are_re_measured(
        script, note: str, presets: set[str], columns: set[str], covered: bool) -> None:
    assert script.note_covers(note, presets, columns) is covered
