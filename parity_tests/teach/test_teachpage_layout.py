"""Readable on a projector and a laptop: no code pane scrolls sideways. Without a browser, the
stylesheet's rules that prevent it are asserted; in headless Chromium (when installed; required
by ``NNPARITY_REQUIRE_BROWSER=1``) every pane is measured at 1024x768 and at 1920x1080 with 150 %
zoom, and a screenshot of each is saved (``$NNPARITY_ARTIFACTS``, else the test's folder)."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import browsers  # parity_tests/teach/, beside this file
import pytest

# (name, CSS width, CSS height, device pixels per CSS pixel): 1920x1080 at 150 % is 1280x720
SIZES = (("1024x768", 1024, 768, 1.0), ("1920x1080-zoom150", 1280, 720, 1.5))

# Every pane and every code block inside it, with every fold opened: which one is wider than
# its box? (scrollWidth counts the content a box would have to scroll to show.)
OVERFLOWING = """
document.querySelectorAll('details').forEach(function (d) { d.open = true; });
var found = [];
document.querySelectorAll('.column, .column pre, pre').forEach(function (e) {
  if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) {
    var s = e.closest('section');
    found.push([s ? s.id : '', e.tagName, e.className, e.scrollWidth, e.clientWidth]);
  }
});
var page = document.documentElement;
if (page.scrollWidth > page.clientWidth + 1) {
  found.push(['page', 'HTML', '', page.scrollWidth, page.clientWidth]);
}
return found;
"""


def _rules(css: str, selector: str) -> str:
    """The declarations of every rule whose selector list names ``selector``."""
    found = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        if selector in [s.strip() for s in selectors.split(",")]:
            found.append(body)
    return " ".join(found)


def test_the_stylesheet_wraps_code_and_stacks_panes() -> None:
    css = resources.files("nnparity.teach").joinpath("style.css").read_text()
    pre = _rules(css, "pre")
    assert re.search(r"white-space:\s*pre-wrap", pre), "long code lines would not wrap"
    assert re.search(r"overflow-wrap:\s*anywhere", pre), "a long word would not break"
    assert "overflow-x: auto" not in pre, "code would scroll instead of wrapping"
    columns = _rules(css, ".columns")
    assert re.search(r"minmax\(min\(100%,", columns), "panes would not stack on a narrow page"
    assert re.search(r"min-width:\s*0", _rules(css, ".column")), "a pane could widen the grid"


def test_the_built_page_links_the_stylesheet(site: Path) -> None:
    page = (site / "index.html").read_text()
    assert '<link rel="stylesheet" href="style.css">' in page
    assert "white-space: pre-wrap" in (site / "style.css").read_text()


@pytest.fixture
def chromium(tmp_path: Path):
    yield from browsers.driver(tmp_path / "profile")


@pytest.mark.parametrize(("name", "width", "height", "scale"), SIZES, ids=[s[0] for s in SIZES])
def test_no_pane_scrolls_sideways(site: Path, chromium, tmp_path: Path, name: str, width: int,
                                  height: int, scale: float) -> None:
    chromium.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": scale, "mobile": False})
    chromium.get((site / "index.html").as_uri())
    assert chromium.execute_script("return window.innerWidth") == width
    panes = chromium.execute_script("return document.querySelectorAll('.column pre').length")
    assert panes > 60, "the page has too few code panes to measure"
    overflowing = chromium.execute_script(OVERFLOWING)
    folder = Path(os.environ.get("NNPARITY_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    for section in ("dense", "adam"):
        chromium.execute_script(f"document.getElementById('{section}').scrollIntoView()")
        shot = folder / f"teachpage-{name}-{section}.png"
        assert chromium.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
    assert not overflowing, f"at {name}, these scroll sideways: {overflowing}"
