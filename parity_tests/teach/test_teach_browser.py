"""The teaching page in a real browser: headless Chromium (Debian's ``chromium`` with
``chromium-driver``, through selenium) loads it from ``file://``, logs no console errors, renders
the MathML and shows every section; a screenshot is saved as a test artefact
(``$NNPARITY_ARTIFACTS``, else the test's temporary folder).

Skipped with its reason when chromium, its driver or selenium is missing; a failure instead when
``NNPARITY_REQUIRE_BROWSER=1`` (CI installs them).
"""

from __future__ import annotations

import os
from pathlib import Path

import browsers  # parity_tests/teach/, beside this file
import pytest


@pytest.fixture
def browser(tmp_path: Path):
    yield from browsers.driver(tmp_path / "profile", "--window-size=1280,900", browser_log=True)


def test_the_page_loads_renders_math_and_shows_every_section(site: Path, browser,
                                                             tmp_path: Path) -> None:
    browser.get((site / "index.html").as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    sections = browser.execute_script(
        "return [...document.querySelectorAll('section')].map(s => "
        "[s.id, s.getBoundingClientRect().height, getComputedStyle(s).display])")
    assert len(sections) > 20
    for key, height, display in sections:
        assert display != "none" and height > 50, f"section {key} is not visible"
    maths = browser.execute_script(
        "return [...document.querySelectorAll('math')].map(m => "
        "[m.getBoundingClientRect().width, m.getBoundingClientRect().height, "
        "m.querySelector('mfrac') ? m.querySelector('mfrac').getBoundingClientRect().height "
        ": null])")
    assert len(maths) >= 40
    assert all(w > 0 and h > 0 for w, h, _ in maths), "a formula has no size"
    fractions = [f for _, _, f in maths if f is not None]
    line = browser.execute_script("return parseFloat(getComputedStyle(document.body).fontSize)")
    assert fractions and max(fractions) > 1.5 * line, "MathML fractions are not laid out"
    folder = Path(os.environ.get("NNPARITY_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "teach-page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
