"""The documentation's table regenerator: re-measured cells replace only themselves, each table
keeps one dated provenance line, and a block is written into its own page."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "update_docs.py"

CURRENT = """Produced by `nnparity reproduce -k cnn`:

| configuration | preset | reported | numpy | torch |
|---|---|---|---|---|
| Net A | `a` | 98 % | 97.00 % · 10.0 s/run | – |
| Net B | `b` | 90 % | 89.00 % · 20.0 s/run | 89.50 % · 5.0 s/run |

Measured on 2026-01-01 (m).
"""


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("update_docs", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fresh(header: list[str], *rows: list[str]) -> str:
    """A block as ``nnparity reproduce --markdown`` writes it."""
    lines = ["| " + " | ".join(cells) + " |" for cells in [header, *rows]]
    lines.insert(1, "|---" * len(header) + "|")
    return "Produced by `x`:\n\n" + "\n".join(lines) + "\n"


def notes(block: str, script: ModuleType) -> list[str]:
    return [line for line in script.parse_table(block)[3] if line.strip()]


def test_a_new_column_keeps_every_other_cell_and_marks_unmeasured_ones(script) -> None:
    body = fresh(["configuration", "preset", "reported", "jax"],
                 ["Net B", "`b`", "90 %", "89.70 % · 7.0 s/run"])
    merged = script.merge_rows(CURRENT, body, "2026-02-03", "m")
    header, rows, before, _ = script.parse_table(merged)
    assert header == ["configuration", "preset", "reported", "numpy", "torch", "jax"]
    assert rows["a"][3:] == ["97.00 % · 10.0 s/run", "–", "–"]
    assert rows["b"][3:] == ["89.00 % · 20.0 s/run", "89.50 % · 5.0 s/run", "89.70 % · 7.0 s/run"]
    assert before[0] == "Produced by `nnparity reproduce -k cnn`:"


def test_re_measured_cells_replace_only_theirs(script) -> None:
    body = fresh(["configuration", "preset", "reported", "torch"],
                 ["Net B", "`b`", "90 %", "89.90 % · 4.0 s/run"])
    _, rows, _, _ = script.parse_table(script.merge_rows(CURRENT, body, "2026-01-01", "m"))
    assert rows["b"][3:] == ["89.00 % · 20.0 s/run", "89.90 % · 4.0 s/run"]
    assert rows["a"][3:] == ["97.00 % · 10.0 s/run", "–"]


def test_a_row_the_table_lacks_is_added(script) -> None:
    body = fresh(["configuration", "preset", "reported", "numpy"],
                 ["Net C", "`c`", "(no figure)", "50.00 % · 1.0 s/run"])
    _, rows, _, _ = script.parse_table(script.merge_rows(CURRENT, body, "2026-01-01", "m"))
    assert list(rows) == ["a", "b", "c"]
    assert rows["c"] == ["Net C", "`c`", "(no figure)", "50.00 % · 1.0 s/run", "–"]


def test_a_merge_keeps_one_provenance_line_spanning_its_dates_and_machines(script) -> None:
    body = fresh(["configuration", "preset", "reported", "torch"],
                 ["Net B", "`b`", "90 %", "89.90 % · 4.0 s/run"])
    once = script.merge_rows(CURRENT, body, "2026-02-03", "other, 8 cores")
    twice = script.merge_rows(once, body, "2026-01-15", "m")
    assert notes(twice, script) == [
        f"Measured on 2026-01-01 to 2026-02-03 (m; other, 8 cores), {script.MERGED}."]


@pytest.mark.parametrize(("previous", "merged", "line"), [
    (None, False, "Measured on 2026-03-04 (x86_64, 2 cores)."),
    ("Measured on 2026-01-01 (m).", False, "Measured on 2026-03-04 (x86_64, 2 cores)."),
    ("Measured on 2026-01-01 (m).", True,
     "Measured on 2026-01-01 to 2026-03-04 (m; x86_64, 2 cores), {merged}."),
    ("Measured on 2026-03-04 (x86_64, 2 cores), x.", True,
     "Measured on 2026-03-04 (x86_64, 2 cores), {merged}."),
])
def test_provenance_is_one_line(script, previous: str | None, merged: bool, line: str) -> None:
    made = script.provenance(previous, "2026-03-04", "x86_64, 2 cores", merged)
    assert made == line.format(merged=script.MERGED)


def test_every_block_is_in_its_page_and_a_splice_replaces_only_it(script, tmp_path) -> None:
    for name in script.COMMANDS:  # the committed pages hold every block the script writes
        assert script.block(script.page_of(name), name) is not None
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- bench:start -->\nold\n<!-- bench:end -->\noutro\n")
    with script.page_locked(page):
        script.splice(page, "bench", "new\n")
    assert page.read_text() == "intro\n<!-- bench:start -->\nnew\n<!-- bench:end -->\noutro\n"
    with pytest.raises(SystemExit, match="has no <!-- sweep:start --> block"):
        script.splice(page, "sweep", "x\n")


def test_the_sweep_plot_is_linked_from_its_page(script) -> None:
    plot = script.COMMANDS["sweep"][script.COMMANDS["sweep"].index("--plot") + 1]
    assert (script.ROOT / plot).is_file()
    assert "](sweep.png)" in script.block(script.page_of("sweep"), "sweep")
