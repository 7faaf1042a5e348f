"""The suite stays under Linux's default ``vm.max_map_count`` with no root step: JAX's compiled
programs hold memory maps until its caches are cleared, and the guard after each test
(``memory_maps.MapGuard``) clears them past a threshold and stops the run past its budget."""

from __future__ import annotations

import numpy as np
import pytest
from memory_maps import BUDGET, DEFAULT_LIMIT, MapGuard, count_maps

from nnparity.backends import registry
from nnparity.reference import init_params
from nnparity.reference.cnn_spec import CNNSpec

needs_proc = pytest.mark.skipif(count_maps() is None, reason="no /proc/self/maps (not Linux)")


@needs_proc
@pytest.mark.jax
def test_clearing_jaxs_caches_unmaps_its_compiled_programs() -> None:
    jax_backend = registry.get("jax")
    start = count_maps()
    for dense in (5, 6, 7):  # a program per spec: each maps code and constants of its own
        spec = CNNSpec.tiny(dense=(dense,))
        rng = np.random.default_rng(dense)
        x, y = rng.uniform(size=(2, *spec.input_shape)), rng.integers(0, 3, 2)
        jax_backend.gradients(spec, init_params(spec, seed=dense), x, y)
    grown = count_maps()
    assert grown > start + 100, (start, grown)
    guard = MapGuard(clear_at=grown - 1)
    guard.after_test("this test")
    assert guard.clears == 1 and guard.peak >= grown
    assert count_maps() < start + (grown - start) // 2, (start, grown, count_maps())


def test_a_process_over_the_budget_stops_the_run_naming_the_count() -> None:
    cleared = []
    guard = MapGuard(count=lambda: 60_000, clear=lambda: cleared.append(1))
    with pytest.raises(pytest.exit.Exception, match=r"60,000 memory maps .* after t::x, JAX"):
        guard.after_test("t::x")
    assert cleared == [1] and guard.peak == 60_000
    assert BUDGET < DEFAULT_LIMIT


def test_maps_are_counted_at_most_every_interval_and_cleared_only_past_the_threshold() -> None:
    counts, cleared = iter([15_000, 25_000, 9_000, 12_000]), []  # 9,000 after clearing
    guard = MapGuard(count=lambda: next(counts), clear=lambda: cleared.append(1), clear_at=20_000,
                     every=0)
    guard.after_test("a")
    assert cleared == [] and guard.peak == 15_000
    guard.after_test("b")
    assert cleared == [1] and guard.peak == 25_000
    guard.every = 3600
    guard.after_test("c")  # within the interval: not counted
    assert next(counts) == 12_000
    assert "at most 25,000 in this process" in (guard.summary() or "")
