"""Headless Chromium for the teaching page's browser tests, or the test skipped with its reason
(a failure under ``NNPARITY_REQUIRE_BROWSER=1``, as CI sets it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")


def missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install nnparity[teach])"
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            return f"{program} is not on the PATH (apt-get install chromium chromium-driver)"
    return None


def driver(profile: Path, *flags: str, browser_log: bool = False) -> Iterator[Any]:
    """A fixture's body: a Chromium driver with :data:`FLAGS` and ``flags``, its profile in
    ``profile`` (``browser_log``: the console kept for ``get_log``), quit afterwards."""
    why = missing()
    if why:
        if os.environ.get("NNPARITY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NNPARITY_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*FLAGS, *flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if browser_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    yield chrome
    chrome.quit()
