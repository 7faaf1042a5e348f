"""``nnparity bench``'s rows each in a process of their own (:mod:`nnparity.bench.rows`): the row
runs in a child that imports only its own framework, answers each timing request, and ends with
the table; a row that cannot start is one clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nnparity.bench.rows import Row, RowProcess, rows_of, time_rows
from nnparity.errors import InputError


def test_a_row_runs_in_a_child_that_imports_only_its_own_framework() -> None:
    process = RowProcess(Row("numpy", ("epoch", "0", "100"), "cpu"))
    try:
        assert process.process.pid != os.getpid()
        assert process.first_step > 0 and process.time_once() > 0
        maps = Path(f"/proc/{process.process.pid}/maps")
        modules = maps.read_text() if maps.exists() else ""
        assert "libtorch" not in modules and "_pywrap_tensorflow" not in modules
    finally:
        process.close()
    assert process.process.poll() is not None


def test_rows_take_turns_and_every_child_ends() -> None:
    rows = rows_of(["numpy", "numpy floor"], ("epoch", "0", "100"), "cpu")
    measured = time_rows(rows, repeats=2)
    assert set(measured) == {"numpy", "numpy floor"}
    assert all(0 < m.best < float("inf") and m.first_step > 0 for m in measured.values())


def test_a_row_that_cannot_start_is_one_error() -> None:
    with pytest.raises(InputError, match=r"bench row 'numpy' \(nosuch\) ended without a result"):
        time_rows([Row("numpy", ("nosuch",), "cpu")], repeats=1)


def test_a_stop_kills_every_row_at_once(monkeypatch) -> None:
    """An interrupt while the rows take turns kills each child instead of waiting for its run."""
    started: list[RowProcess] = []
    real_init = RowProcess.__init__

    def tracked(self, row):
        real_init(self, row)
        started.append(self)

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(RowProcess, "__init__", tracked)
    monkeypatch.setattr(RowProcess, "time_once", interrupted)
    with pytest.raises(KeyboardInterrupt):
        time_rows(rows_of(["numpy", "numpy floor"], ("epoch", "0", "100"), "cpu"), repeats=1)
    assert len(started) == 2
    assert all(p.process.poll() == -9 for p in started)
