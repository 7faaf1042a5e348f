"""Helpers for the model-file tests: the examples' paths and a one-call check."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnparity.models import check
from nnparity.models.source import load
from nnparity.parity.report import CaseResult

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"


def _example(target: str) -> str:
    return str(EXAMPLES / target)


@pytest.fixture
def example():
    """``example("torch_mlp.py:model")``: the absolute ``examples/models`` target."""
    return _example


@pytest.fixture
def check_file():
    """``check_file("torch_mlp.py:model", dtype=None) -> CaseResult``."""
    def run(target: str, dtype: str | None = None, **kwargs) -> CaseResult:
        source = load(_example(target), loss="ce")
        return check.check(check.adapt(source, dtype, kwargs.get("weights")), source.label)
    return run
