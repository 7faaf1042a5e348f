"""The documentation site builds from the checkout with ``mkdocs build --strict`` (no broken link,
no missing page), loads nothing from the internet, documents every command, option and public
name, and the README stays a short front door whose links all resolve."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

from nnparity.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README_MAX_LINES = 250
SITE_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
REMOTE = re.compile(r"^\s*(https?:)?//", re.I)
LOADING = {"script": ("src",), "link": ("href",), "img": ("src", "srcset"),
           "iframe": ("src",), "source": ("src", "srcset"), "audio": ("src",),
           "video": ("src", "poster"), "embed": ("src",), "object": ("data",)}
POINTING = {"canonical", "prev", "next", "alternate", "author", "license", "help", "search"}


def _missing_site_tools() -> list[str]:
    missing = []
    for name in SITE_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


needs_site_tools = pytest.mark.skipif(
    bool(_missing_site_tools()),
    reason=f"the docs extra is not installed (missing {', '.join(_missing_site_tools())}): "
    "pip install -e '.[docs]'")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built from the checkout into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}{proc.stderr}"
    return out


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Loads(HTMLParser):
    """The URLs an HTML page loads (not the ones it links to) and its elements' classes and ids."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.markers: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and set((values.get("rel") or "").split()) & POINTING:
            return  # a <link rel="prev"> and the like point at a page, they load nothing
        self.loaded += [values[a] or "" for a in LOADING.get(tag, ()) if values.get(a)]
        self.markers |= set((values.get("class") or "").split())
        self.markers |= {f"data-md-component={values.get('data-md-component')}"}


def _pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command and subcommand (``nnparity data fetch``) with its parser."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found[sub.prog] = sub
                found |= _commands(sub)
    return found


@needs_site_tools
def test_the_site_has_a_page_for_every_user_journey(site: Path) -> None:
    pages = {str(page.relative_to(site)) for page in _pages(site)}
    for page in ("index.html", "guide/check/index.html", "guide/verify/index.html",
                 "guide/models/index.html", "guide/teach/index.html", "guide/ci/index.html",
                 "guide/training/index.html", "conventions/index.html", "tolerances/index.html",
                 "benchmarks/index.html", "reproduction/index.html", "cli/index.html",
                 "api/index.html", "development/index.html", "architecture/index.html"):
        assert page in pages, f"the site has no {page}"
    assert not (site / "hooks.py").exists(), "the build hooks were published as a page asset"


@needs_site_tools
def test_no_page_loads_a_script_style_or_font_from_the_internet(site: Path) -> None:
    for page in _pages(site):
        parser = _Loads()
        parser.feed(page.read_text())
        remote = [url for url in parser.loaded if REMOTE.match(url)]
        assert not remote, f"{page.relative_to(site)} loads {remote}"
        # material fetches these only for mermaid diagrams and a repository widget
        assert "mermaid" not in parser.markers, f"{page.relative_to(site)} has a mermaid diagram"
        assert "data-md-component=source" not in parser.markers, "a repository widget (GitHub API)"
    for sheet in site.rglob("*.css"):
        text = sheet.read_text()
        remote = re.findall(r"""(?:url\(\s*['"]?|@import\s+['"]?)((?:https?:)?//[^'")\s]+)""",
                            text, re.I)
        assert not remote, f"{sheet.relative_to(site)} loads {remote}"


@needs_site_tools
def test_every_command_and_option_has_an_entry_on_the_cli_page(site: Path) -> None:
    page = (site / "cli" / "index.html").read_text()
    for prog, parser in _commands(build_parser()).items():
        anchor = prog.replace(" ", "-")
        assert f'id="{anchor}"' in page, f"the CLI page has no section for `{prog}`"
        section = page[page.index(f'id="{anchor}"'):]
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help", "--debug"):
                    assert flag in section, f"the CLI page has no entry for `{prog} {flag}`"


@needs_site_tools
def test_every_public_name_has_an_api_entry(site: Path) -> None:
    import nnparity

    page = (site / "api" / "index.html").read_text()
    for name in nnparity.__all__:
        assert f'id="nnparity.{name}"' in page, f"the API page has no entry for nnparity.{name}"


def test_the_readme_is_a_short_front_door_whose_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    for command in ("python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e "
                    "'.[all]' && .venv/bin/nnparity check",
                    "python3 -m pip install 'tox>=4' && python3 -m tox -e all,lint"):
        assert command in readme, f"the README lost one of its two commands: {command}"
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert links, "the README links to the documentation"
    for link in links:
        if re.match(r"^[a-z]+:", link) or link.startswith("#"):
            continue
        target = ROOT / link.split("#")[0]
        assert target.exists(), f"README.md links to {link}, which does not exist"


def test_the_verify_page_documents_every_declaration_key() -> None:
    from nnparity.verify.adapters import KEYS, OPTIMIZER_KEYS

    page = (DOCS / "guide" / "verify.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    for key in (*KEYS, *OPTIMIZER_KEYS):
        assert any(f"`{key}`" in row.split(" | ")[0] for row in rows), \
            f"docs/guide/verify.md has no table row for the declaration key {key!r}"


@needs_site_tools
def test_help_text_is_escaped_once_for_markdown(hooks: ModuleType) -> None:
    assert hooks.text("a <b> & c_d *e* `x_<y>` [z]") == (
        r"a &lt;b&gt; &amp; c\_d \*e\* `x_<y>` \[z\]")
    assert hooks.code("a`b") == "`` a`b ``"


@needs_site_tools
def test_the_cli_reference_follows_the_parser(hooks: ModuleType) -> None:
    parser = argparse.ArgumentParser(prog="tool")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run it", description="run it, described")
    run.add_argument("--mode", choices=["a", "b"], help="how (default %(default)s)", default="a")
    run.add_argument("--size", metavar="N", choices=[1, 2], help="how big")
    run.add_argument("path", help="the <file>")
    nested = sub.add_parser("data", help="data actions").add_subparsers(dest="action")
    nested.add_parser("list", help="list them")
    text = hooks.command_reference(parser)
    assert "## tool run\n\nrun it, described" in text
    assert "- `--mode {a,b}`: how (default a)\n" in text
    assert "- `--size N`: how big (one of: 1, 2)\n" in text
    assert "- `path`: the &lt;file&gt;" in text
    assert "### tool data list\n\nlist them" in text


@needs_site_tools
def test_the_package_is_laid_out_as_installed_for_the_api_page(hooks, tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "gone.py").write_text("")
    (tmp_path / "math").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools.package-dir]\n"nnparity" = "pkg"\n"nnparity.reference" = "math"\n')
    out = tmp_path / "out"
    hooks.lay_out_package(tmp_path, out)
    (tmp_path / "pkg" / "gone.py").unlink()
    hooks.lay_out_package(tmp_path, out)  # a second build: same links, the removed module gone
    laid = out / "nnparity"
    assert sorted(p.name for p in laid.iterdir()) == ["__init__.py", "reference"]
    assert (laid / "reference").readlink() == tmp_path / "math"
