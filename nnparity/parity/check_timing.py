"""Where ``nnparity check``'s time goes (``check --verbose``): importing each backend, compiling,
computing.

- import: each backend's ``registry.get`` (the framework's import and its first set-up).
- compile: JAX's tracing, lowering and XLA compilation of each program, or its load from the
  persistent cache (:mod:`nnparity.jax_cache`), summed from JAX's own monitoring events. torch
  runs eagerly; TensorFlow's ``tf.function`` tracing is not reported by TensorFlow and counts as
  compute.
- compute: the rest of the cases' time (every backend and the reference).

With backends in worker processes (``check --jobs``), the imports and compile times are each
worker's, added up, and the cases' time is the longest worker's: the line says how many workers
ran side by side.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

JAX_COMPILE_EVENTS = frozenset({
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
})
"""JAX's duration events of one compilation: trace, lower to MLIR, XLA compile (or cache load)."""


@dataclass
class CheckTiming:
    """Seconds spent importing each backend, compiling and in all (the cases' loop)."""

    imports: dict[str, float] = field(default_factory=dict)
    compile: float = 0.0
    cases: float = 0.0
    workers: int = 1

    @contextlib.contextmanager
    def importing(self, name: str) -> Iterator[None]:
        """Time the import and set-up of backend ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.imports[name] = time.perf_counter() - start

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Time the cases' loop, adding up JAX's compile events inside it (when JAX is loaded)."""
        def listen(event: str, seconds: float, **_: object) -> None:
            if event in JAX_COMPILE_EVENTS:
                self.compile += seconds

        monitoring = None
        if "jax" in sys.modules:  # a backend imported it
            import jax.monitoring as monitoring

            monitoring.register_event_duration_secs_listener(listen)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.cases = time.perf_counter() - start
            if monitoring is not None:
                monitoring.unregister_event_duration_listener(listen)

    def line(self) -> str:
        """One line: ``time: import 6.1 s (torch 1.9, tensorflow 3.2, jax 1.0), compile 2.0 s,
        compute 18.3 s``."""
        each = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.imports.items())
        total = sum(self.imports.values())
        side = f" ({self.workers} workers side by side)" if self.workers > 1 else ""
        return (f"time{side}: import {total:.1f} s ({each}), compile {self.compile:.1f} s (JAX), "
                f"compute {max(self.cases - self.compile, 0.0):.1f} s")
