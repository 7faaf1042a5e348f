"""The teaching page, built once per test session (about half a minute) for the page tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built page: the folder holding ``index.html``."""
    pytest.importorskip("latex2mathml", reason="the page needs nnparity[teach]")
    pytest.importorskip("pygments", reason="the page needs nnparity[teach]")
    from nnparity.teach.site import build

    out = tmp_path_factory.mktemp("site")
    build(out)
    return out
