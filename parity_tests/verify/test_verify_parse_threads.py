"""Declarations read by several grading threads at once never run the parser together:
CPython 3.11's ``ast.parse`` is not thread-safe (``SystemError: AST constructor recursion depth
mismatch`` once failed ``verify DIR --jobs 2`` in CI)."""

from __future__ import annotations

import ast
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nnparity.verify import adapters

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "verify" / "correct_layers.py"


def test_parses_run_one_at_a_time(monkeypatch) -> None:
    running, most, guard = 0, 0, threading.Lock()
    real = ast.parse

    def slow_parse(*args, **kwargs):
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        time.sleep(0.02)  # wide enough for another thread to enter, were it allowed
        try:
            return real(*args, **kwargs)
        finally:
            with guard:
                running -= 1

    monkeypatch.setattr(adapters.ast, "parse", slow_parse)
    with ThreadPoolExecutor(4) as pool:
        declarations = list(pool.map(adapters.read_declaration, [EXAMPLE] * 8))
    assert most == 1
    assert all(d == declarations[0] for d in declarations) and declarations[0]
