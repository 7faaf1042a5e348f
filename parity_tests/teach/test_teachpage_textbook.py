"""The NumPy panes show the textbook form of each block (teach/textbook.py); each form equals the
reference's optimised code on random float64 inputs, and the reference's code is in a fold."""

from __future__ import annotations

import ast
import html
import inspect
import re

import numpy as np
import pytest

pytest.importorskip("latex2mathml", reason="the page needs nnparity[teach]")
pytest.importorskip("pygments", reason="the page needs nnparity[teach]")

from nnparity.teach import site, textbook
from nnparity.teach.sections import blocks

SEEDS = range(5)


def _visible(pane: str) -> str:
    """The pane's text without its folds."""
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<details>.*?</details>", "", pane,
                                                        flags=re.S)))


@pytest.mark.parametrize("block", blocks(), ids=lambda b: b.key)
def test_the_textbook_form_equals_the_reference(block) -> None:
    form = getattr(textbook, block.function)
    for seed in SEEDS:
        inputs = block.example(np.random.default_rng(seed), "float64")
        expected = block.reference(block.example(np.random.default_rng(seed), "float64"))
        got = form(**inputs)
        assert set(got) == set(expected), block.key
        for name, value in expected.items():
            mine = np.asarray(got[name], dtype=np.float64).reshape(np.shape(value))
            scale = np.max(np.abs(value))
            assert scale > 0, f"{block.key} {name}: a zero tensor proves nothing"
            rel = np.max(np.abs(mine - value)) / scale
            assert rel <= 1e-12, f"{block.key} {name} seed {seed}: max rel {rel:.1e}"


def test_a_wrong_textbook_form_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above can fail: Adam without the bias correction differs."""
    block = next(b for b in blocks() if b.key == "adam")

    def adam(W, grads, lr, beta1=0.9, beta2=0.999):
        m = v = 0.0
        for g in grads:
            m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g**2
            W = W - lr * m / (np.sqrt(v) + 1e-8)
        return {"W (torch formula)": W}

    inputs = block.inputs("float64")
    value = block.reference(block.inputs("float64"))["W (torch formula)"]
    assert np.max(np.abs(adam(**inputs)["W (torch formula)"] - value)) > 1e-3


def test_the_textbook_module_imports_numpy_only() -> None:
    tree = ast.parse(inspect.getsource(textbook))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"numpy", "__future__"}, imported


def test_the_numpy_pane_shows_the_textbook_form_and_folds_the_reference() -> None:
    for block in blocks():
        pane = site._numpy_pane(block)
        visible = _visible(pane)
        assert "def " + block.function + "(" in visible
        fold = re.search(r"<details><summary>how the reference makes it fast</summary>(.*?)"
                         r"</details>", pane, re.S)
        assert fold, f"{block.key}: no fold of the reference's code"
        for _, function in block.sources():
            assert function.__name__ in fold.group(1)
    adam = _visible(site._numpy_pane(next(b for b in blocks() if b.key == "adam")))
    assert "m_hat" in adam and "v_hat" in adam and "out=" not in adam


def test_the_flatten_pane_is_a_few_lines() -> None:
    block = next(b for b in blocks() if b.key == "flatten")
    text = _visible(site._numpy_pane(block))
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) <= 8, lines
