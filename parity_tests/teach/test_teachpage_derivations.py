"""Each section derives its deltas in prose and MathML and cites its sources; the page lists the
source documents by their full titles (as the documents give them), never by file path."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

pytest.importorskip("latex2mathml", reason="the page needs nnparity[teach]")
pytest.importorskip("pygments", reason="the page needs nnparity[teach]")

from nnparity.teach.derivations import CITES, DERIVATIONS
from nnparity.teach.sections import blocks
from nnparity.teach.sources import BY_KEY, SOURCES

# the titles as the source documents print them (their first pages)
TITLES = ("算法篇：神经网络与BP算法", "神经网络基础-numpy实现 C16", "BP 神经网络",
          "神经网络实现-numpy", "人工神经网络模型与算法", "基于numpy手工实现多层感知机模型")


def _section(page: str, key: str) -> str:
    match = re.search(rf'<section id="{re.escape(key)}".*?</section>', page, re.S)
    assert match, f"no section {key}"
    return match.group(0)


def test_every_section_has_a_derivation_and_cites_known_sources(site: Path) -> None:
    page = (site / "index.html").read_text()
    assert set(DERIVATIONS) == set(CITES) == {block.key for block in blocks()}
    for block in blocks():
        section = _section(page, block.key)
        derivation = re.search(r'<div class="derivation">(.*?)</div>\s*<p class="cite">', section,
                               re.S)
        assert derivation, f"{block.key}: no derivation"
        assert derivation.group(1).count("<math") == len(DERIVATIONS[block.key]) >= 1
        for key in CITES[block.key]:
            assert f'href="#source-{key}"' in section
        if not CITES[block.key]:
            assert "none of the source documents" in section


def test_the_chain_rule_reaches_each_delta() -> None:
    """The layer, activation and loss derivations end in the gradient they send down."""
    for key in ("dense", "sigmoid", "softmax-ce", "log-loss"):
        last = DERIVATIONS[key][-1][1] + DERIVATIONS[key][0][1]
        assert r"\partial L" in last or r"\delta" in last, key


def test_the_sources_are_listed_by_full_title(site: Path) -> None:
    page = (site / "index.html").read_text()
    listed = html.unescape(_section(page, "sources"))
    for title in TITLES:
        assert title in listed, title
    for source in SOURCES:
        assert f'id="source-{source.key}"' in listed and source.title in listed
    assert set(BY_KEY) >= {key for keys in CITES.values() for key in keys}
    assert "seeds/" not in page and "/work/shared" not in page and ".txt" not in listed
