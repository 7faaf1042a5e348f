"""Shared test set-up: the determinism profile, framework markers, hypothesis profiles, and the
parity assertion. The cases themselves come from :mod:`nnparity.parity.cases` and run through the
CLI's
runner (:mod:`nnparity.parity.runner`): the tests and ``nnparity check`` share one case system.

- Tests marked with a framework backend's name (``torch``, ``tensorflow``, ...) are skipped, with
  the registry's reason (``pytest -rs``), when that backend is not installed; tests marked
  ``gpu`` are skipped when there is no CUDA device.
- Fixtures: ``backend_name`` (each installed framework backend; missing ones skip with the
  reason), ``backend``, ``reference``; ``assert_parity`` asserts a runner result passed, naming
  the first divergence, and records its worst error.
- ``need_dataset(name)`` skips a real-data test when the dataset is not fetched, saying how to
  fetch it, and fails instead when ``NNPARITY_REQUIRE_DATA=1`` (CI fetches the data first).
- Hypothesis: profile ``default`` (quick) and ``ci`` (more examples; loaded when ``CI`` is set,
  or by ``--hypothesis-profile ci``).
- The worst relative error seen per backend and dtype is printed at the end of the run.
- Memory maps (:mod:`memory_maps`): after a test, JAX's caches are cleared once the process
  holds 10,000 maps, and the run stops past 50,000, under Linux's default ``vm.max_map_count``;
  the most counted is printed at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings
from memory_maps import MapGuard  # parity_tests/, beside this file

from nnparity.backends import registry
from nnparity.backends.determinism import apply_determinism
from nnparity.backends.protocol import Backend
from nnparity.datasets.catalog import get_dataset
from nnparity.datasets.sources import DatasetMissing, locate
from nnparity.parity.report import CaseResult

apply_determinism()

settings.register_profile("default", max_examples=20, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None)
# CI (the CI variable set) draws more examples; --hypothesis-profile still overrides this.
settings.load_profile("ci" if os.environ.get("CI") else "default")

FRAMEWORKS = tuple(name for name in registry.NAMES if name != "numpy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked with a framework whose backend is not installed, saying why."""
    reasons: dict[str, str | None] = {}
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            why = _no_gpu()
            if why:
                item.add_marker(pytest.mark.skip(reason=why))
        for name in FRAMEWORKS:
            if item.get_closest_marker(name) is None:
                continue
            if name not in reasons:
                reasons[name] = registry.reason(name)
            if reasons[name]:
                item.add_marker(pytest.mark.skip(reason=f"{name} backend {reasons[name]}"))


def _no_gpu() -> str | None:
    """Why GPU tests cannot run here, or None."""
    if registry.reason("torch"):
        return "no torch: GPU tests run the torch backend"
    import torch

    return None if torch.cuda.is_available() else "no CUDA device (torch.cuda.is_available())"


@pytest.fixture(params=[pytest.param(n, marks=getattr(pytest.mark, n), id=n) for n in FRAMEWORKS])
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each framework backend (not numpy); a missing one is skipped with the registry's reason."""
    why = registry.reason(request.param)
    if why:
        pytest.skip(f"{request.param} backend {why}")
    return request.param


@pytest.fixture
def backend(backend_name: str) -> Backend:
    """The backend object for ``backend_name``."""
    return registry.get(backend_name)


@pytest.fixture(scope="session")
def reference() -> Backend:
    """The NumPy reference backend."""
    return registry.get("numpy")


@pytest.fixture
def need_dataset() -> Callable[[str], dict[str, Path]]:
    """``need_dataset(name)`` -> the dataset's file paths, or skip (fail in CI) when absent."""

    def need(name: str) -> dict[str, Path]:
        try:
            return locate(get_dataset(name))[1]
        except DatasetMissing:
            message = f"{name} not fetched: run `nnparity data fetch {name}`"
            if os.environ.get("NNPARITY_REQUIRE_DATA") == "1":
                pytest.fail(f"{message} (NNPARITY_REQUIRE_DATA=1)")
            pytest.skip(message)

    return need


# --- the parity assertion ------------------------------------------------------------------------

_worst: dict[tuple[str, str, str], float] = {}


def record_and_assert(result: CaseResult) -> CaseResult:
    """Fail naming the case, backend and first divergence unless ``result`` passed; record the
    worst max relative error per family, backend and dtype for the end-of-run summary."""
    assert result.error is None, f"{result.case} on {result.backend}: {result.error}"
    assert result.skipped is None, f"{result.case} on {result.backend}: {result.skipped}"
    assert result.comparisons, f"{result.case} on {result.backend}: nothing compared"
    spec = result.spec or {}
    key = (spec.get("family", "mlp"), result.backend, spec.get("dtype", "float64"),
           result.comparisons[0].tol)
    _worst[key] = max(_worst.get(key, 0.0), max(c.max_rel for c in result.comparisons))
    assert result.passed, f"{result.case} on {result.backend}: {result.sentence}"
    return result


@pytest.fixture(scope="session")
def assert_parity() -> Callable[[CaseResult], CaseResult]:
    """:func:`record_and_assert`."""
    return record_and_assert


# --- memory maps ---------------------------------------------------------------------------------

_map_guard = MapGuard()


def pytest_runtest_logfinish(nodeid: str) -> None:
    """After each test (its fixtures torn down): keep the process's memory maps in bounds."""
    _map_guard.after_test(nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the most memory maps counted, and the worst max relative error per family,
    backend and dtype seen by the parity checks."""
    maps = _map_guard.summary()
    if maps:
        terminalreporter.section("memory maps")
        terminalreporter.write_line(maps)
    if not _worst:
        return
    terminalreporter.section("parity: worst max relative error")
    for (family, name, dtype, tol), value in sorted(_worst.items()):
        line = f"{family:<4} {name:<11} {dtype:<8} {value:.2e}  (tol {tol:g})"
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _reports_follow_the_schema(monkeypatch: pytest.MonkeyPatch):
    """Every JSON report written in a test is validated against the shipped schema."""
    from report_schema import validating_writes  # parity_tests/, beside this file

    with validating_writes(monkeypatch):
        yield
