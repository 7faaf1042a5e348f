"""The layer kinds' sections of the teaching page (batch normalisation, layer normalisation,
GELU in both forms, the average pools, the residual block) and their traps: on the page, with
numbers that come from the measurement made while the page is built (a changed reference
changes them; a fresh measurement shows the same cells)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("latex2mathml", reason="the page needs nnparity[teach]")
pytest.importorskip("pygments", reason="the page needs nnparity[teach]")

from nnparity.reference.layers import avgpool as avgpool_layer
from nnparity.reference.layers import batchnorm as batchnorm_layer
from nnparity.reference.layers import gelu as gelu_layer
from nnparity.reference.layers import layernorm as layernorm_layer
from nnparity.teach import page, traps
from nnparity.teach.measure import FRAMEWORKS, load
from nnparity.teach.sections import blocks

NEW_BLOCKS = ("batchnorm", "layernorm", "gelu", "gelu-tanh", "avgpool", "global-avgpool",
              "residual")
NEW_TRAPS = {"trap-bn-momentum": traps.batchnorm_momentum,
             "trap-ln-epsilon": traps.layernorm_epsilon, "trap-gelu-forms": traps.gelu_forms,
             "trap-avgpool-pad": traps.avgpool_padding}


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _section(page_html: str, key: str) -> str:
    match = re.search(rf'<section id="{re.escape(key)}".*?</section>', page_html, re.S)
    assert match, f"no section {key}"
    return match.group(0)


def _loaded() -> dict:
    return {k: m for k, m in ((f.key, load(f)) for f in FRAMEWORKS) if not isinstance(m, str)}


def _rendered(key: str, modules: dict) -> str:
    trap = next(t for t in traps.TRAPS if t.key == key)
    return _text(page.trap_body(trap.text, "", trap.run(modules)))


def test_the_new_blocks_and_traps_are_on_the_page_with_the_measured_cells(site: Path) -> None:
    page_html = (site / "index.html").read_text()
    keys = {block.key for block in blocks()}
    assert set(NEW_BLOCKS) <= keys
    for key in NEW_BLOCKS:
        assert '<table class="parity"' in _section(page_html, key)
    modules = _loaded()
    for key, measure in NEW_TRAPS.items():
        shown = _text(_section(page_html, key))
        table = measure(modules)  # measured again now: the same cells
        for row in table.rows:
            for cell in row:
                assert cell in shown, f"{key}: {cell!r} not on the page"


def test_no_formula_holds_a_control_character() -> None:
    """A LaTeX string written without r'' loses its backslash commands (\\f, \\t) silently."""
    for block in blocks():
        for formula in (block.forward, block.backward):
            assert not re.search(r"[\x00-\x1f]", formula), f"{block.key}: {formula!r}"


def test_the_batchnorm_trap_reads_the_reference_update(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _rendered("trap-bn-momentum", {})
    mean = traps.batchnorm_momentum({}).rows[0][1]
    assert mean in before

    def running_update(self, running_mean, running_var, mu, var, m):
        return running_mean + 1, running_var  # a changed rule: the mean counts the steps
    monkeypatch.setattr(batchnorm_layer.BatchNorm, "running_update", running_update)
    after = traps.batchnorm_momentum({})
    assert after.rows[0][1] == "10.0000" and after.rows[0][1] in _rendered("trap-bn-momentum", {})


def test_the_layernorm_trap_reads_the_epsilons(monkeypatch: pytest.MonkeyPatch) -> None:
    assert all(float(row[1]) > 1e-4 for row in traps.layernorm_epsilon({}).rows)
    monkeypatch.setattr(layernorm_layer, "KERAS_EPSILON", layernorm_layer.TORCH_EPSILON)
    assert all(row[1] == "0.0e+00" for row in traps.layernorm_epsilon({}).rows)


def test_the_gelu_trap_reads_the_reference_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    z = np.linspace(-6.0, 6.0, 1201)
    exact, tanh = (gelu_layer.gelu(z, gelu_layer.gelu_inner(z, f), f)
                   for f in gelu_layer.GELU_FORMS)
    assert traps.gelu_forms({}).rows[0][1] == f"{np.max(np.abs(tanh - exact)):.1e}"
    monkeypatch.setattr(gelu_layer, "TANH_CUBIC", 0.0)
    assert traps.gelu_forms({}).rows[0][1] != f"{np.max(np.abs(tanh - exact)):.1e}"


def test_the_avgpool_trap_reads_the_reference_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = traps.avgpool_padding({}).rows
    assert rows[0][1:] == ("1.0000", "0.0e+00") and rows[1][1] == f"{4 / 9:.4f}"
    shown = avgpool_layer.avgpool2d

    def doubled(*args, **kwargs):
        return 2 * shown(*args, **kwargs)
    monkeypatch.setattr(avgpool_layer, "avgpool2d", doubled)
    assert traps.avgpool_padding({}).rows[0][1] == "2.0000"


def test_the_traps_show_what_the_frameworks_do() -> None:
    modules = _loaded()
    if "torch" in modules and "keras" in modules:
        rows = {row[0]: row for row in traps.batchnorm_momentum(modules).rows}
        assert float(rows["PyTorch BatchNorm1d(momentum=0.1)"][3]) < 1e-12
        verbatim = rows["Keras BatchNormalization(momentum=0.1): copied verbatim"]
        mapped = rows["Keras BatchNormalization(momentum=0.9): mapped to 1 - 0.1"]
        assert float(verbatim[3]) > 0.1 and float(mapped[3]) < 1e-12
        assert 1e-3 < float(mapped[4]) < 0.2  # the biased estimator: m/(m-1) per batch
        defaults = traps.layernorm_epsilon(modules)
        assert "eps=1e-05" in defaults.headers[2] and "eps=0.001" in defaults.headers[2]
    if "torch" in modules and "keras" in modules:
        pools = {row[0]: row for row in traps.avgpool_padding(modules).rows}
        assert float(pools["PyTorch AvgPool2d(3, 2, padding=1)"][2]) > 0.5  # zeros counted
        assert float(pools["PyTorch AvgPool2d(3, 2, padding=1), count_include_pad=False"][2]) \
            < 1e-12
        assert float(pools['Keras AveragePooling2D(3, 2, padding="same")'][2]) < 1e-12
    gelu = {row[0]: row for row in traps.gelu_forms(modules).rows}
    if "torch" in modules:
        assert float(gelu["PyTorch F.gelu(z)"][1]) < 1e-12  # exact by default
    if "jax" in modules:
        assert float(gelu["JAX jax.nn.gelu(z)"][3]) < 1e-12  # tanh by default
    if not modules:
        pytest.skip("no framework installed")
