"""The framework panes show the code a user writes (modules, losses, backward, optimiser steps)
and no measuring harness, which stays in a fold; the page measures by running that very code."""

from __future__ import annotations

import html
import re

import pytest

pytest.importorskip("latex2mathml", reason="the page needs nnparity[teach]")
pytest.importorskip("pygments", reason="the page needs nnparity[teach]")

from nnparity.teach import site
from nnparity.teach.measure import FRAMEWORKS, load
from nnparity.teach.sections import blocks

HARNESS = ("leaf(", "built(", "_run(", "copy_(", "from_numpy", "set_weights", "tf.constant(",
           "no_grad", "requires_grad", "permute(", "numpy")
# framework -> what its panes use for the backward pass, one of them per block
BACKWARD = {"torch": ("backward(",), "keras": ("GradientTape",),
            "jax": ("jax.vjp", "jax.grad", "value_and_grad")}
IDIOMS = {  # (framework, block key) -> what the pane must show
    ("torch", "dense"): ("nn.Linear", "z.backward(dz)"),
    ("torch", "conv-same-stride2"): ("nn.Conv2d",),
    ("torch", "softmax-ce"): ("F.cross_entropy", "loss.backward()"),
    ("torch", "adam"): ("torch.optim.Adam", "loss.backward()", "optimizer.step()",
                        "optimizer.zero_grad()"),
    ("keras", "dense"): ("keras.layers.Dense", "tf.GradientTape"),
    ("keras", "adam"): ("keras.optimizers.Adam", "apply_gradients", "tf.GradientTape"),
    ("jax", "adam"): ("optax.adam", "jax.grad", "optax.apply_updates"),
    ("jax", "dense"): ("jax.vjp", "x @ W + b"),
}


def _modules() -> dict:
    loaded = {f.key: load(f) for f in FRAMEWORKS}
    return {key: module for key, module in loaded.items() if not isinstance(module, str)}


def _split(pane: str) -> tuple[str, str]:
    """The pane's visible text and the text of its folds."""
    folds = "".join(re.findall(r"<details>.*?</details>", pane, re.S))
    visible = re.sub(r"<details>.*?</details>", "", pane, flags=re.S)
    return (html.unescape(re.sub(r"<[^>]+>", "", visible)),
            html.unescape(re.sub(r"<[^>]+>", "", folds)))


def test_framework_panes_show_user_code_and_fold_the_harness() -> None:
    modules = _modules()
    if not modules:
        pytest.skip("no framework installed")
    for block in blocks():
        for key, feed in modules.items():
            visible, folded = _split(site._framework_pane(block, feed))
            for marker in HARNESS:
                assert marker not in visible, f"{key} {block.key}: {marker!r} in view"
            assert not re.search(r"\bnp\.", visible), f"{key} {block.key}: NumPy in view"
            assert any(m in visible for m in BACKWARD[key]), f"{key} {block.key}"
            for marker in IDIOMS.get((key, block.key), ()):
                assert marker in visible, f"{key} {block.key}: {marker!r} not shown"
            assert f"def {block.function}(" in visible
            assert "the harness that feeds it" in folded or "harness" in folded


def test_the_torch_harness_is_in_the_fold() -> None:
    feed = _modules().get("torch")
    if feed is None:
        pytest.skip("torch is not installed")
    dense = next(b for b in blocks() if b.key == "dense")
    _, folded = _split(site._framework_pane(dense, feed))
    assert "copy_(" in folded and "def linear(" in folded


def test_the_page_runs_the_code_it_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the shown torch function: its parity rows fail."""
    feed = _modules().get("torch")
    if feed is None:
        pytest.skip("torch is not installed")
    block = next(b for b in blocks() if b.key == "dense")
    shown = feed.BLOCKS.dense

    def dense(layer, x, dz):
        out = shown(layer, x, dz)
        return {**out, "dW": 2 * out["dW"]}

    modules = {f.key: f"{f.requires} left out by the test" for f in FRAMEWORKS}
    modules["torch"] = feed
    assert '<td class="fail">FAIL</td>' not in site._block_section(block, modules)
    monkeypatch.setattr(feed.BLOCKS, "dense", dense)
    assert '<td class="fail">FAIL</td>' in site._block_section(block, modules)
