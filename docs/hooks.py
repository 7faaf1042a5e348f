"""mkdocs hooks for the documentation site (named in ``mkdocs.yml``; not a page of the site).

- ``on_config``: the API reference is read from the source by griffe (no import). The installed
  package maps ``nnparity.reference``, ``nnparity.backends`` and ``nnparity.datasets`` onto the
  top-level folders ``reference/``, ``backends/``, ``datasets/`` (``pyproject.toml``'s
  ``package-dir``), which griffe cannot follow; the hook lays the package out as installed, in
  symbolic links under ``build/docs-api`` (the ``paths`` that mkdocstrings searches).
- ``on_page_markdown``: the CLI page's ``<!-- cli-reference -->`` marker becomes the reference of
  every command and option, generated from the argparse parser itself, so it cannot go stale.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parent.parent
API_SOURCE = ROOT / "build" / "docs-api"
CLI_MARKER = "<!-- cli-reference -->"


def _link(place: Path, target: Path) -> None:
    """``place`` a symbolic link to ``target``, replaced atomically when it points elsewhere (two
    builds at once lay out the same links)."""
    if place.is_symlink() and place.readlink() == target:
        return
    temporary = place.with_name(f".{place.name}.{os.getpid()}.link")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    temporary.replace(place)


def lay_out_package(root: Path, target: Path) -> None:
    """Link ``root``'s packages into ``target`` as they are installed (``package-dir``): the
    ``nnparity`` folder's entries, and each mapped subpackage's folder beside them."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    package = target / "nnparity"
    package.mkdir(parents=True, exist_ok=True)
    wanted = {entry.name: entry for entry in (root / mapping["nnparity"]).iterdir()
              if entry.name != "__pycache__"}
    wanted |= {name.split(".", 1)[1]: root / folder for name, folder in mapping.items()
               if name.startswith("nnparity.")}
    laid = {path.name for path in package.iterdir() if not path.name.startswith(".")}
    for stale in laid - set(wanted):  # a module removed from the source since the last build
        (package / stale).unlink(missing_ok=True)
    for name, source in sorted(wanted.items()):
        _link(package / name, source)


def text(value: str) -> str:
    """Help text as Markdown: code spans kept as written; elsewhere HTML and Markdown's
    emphasis and link characters escaped, so a help string renders as it reads."""
    parts = re.split(r"(`[^`]*`)", value)
    return "".join(part if part.startswith("`") else
                   re.sub(r"([\\*_\[\]])", r"\\\1", html.escape(part, quote=False))
                   for part in parts)


def code(value: str) -> str:
    """``value`` as one Markdown code span (doubled backticks when it holds one)."""
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """``parser``'s subcommands: each one's parser and its one-line description."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found[name] = (sub, sub.description or helps.get(name, ""))
    return found


def _option(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """One option or argument of ``parser`` as a list item: its flags, value and help."""
    flags = ", ".join(action.option_strings) or action.metavar or action.dest
    if action.option_strings and action.nargs != 0:
        flags += " " + parser._get_formatter()._format_args(action, action.dest.upper())
    described = [parser._get_formatter()._expand_help(action)] if action.help else []
    if action.choices and action.metavar:  # choices the metavar hides
        described.append(f"(one of: {', '.join(str(c) for c in action.choices)})")
    return f"- {code(flags)}" + (f": {text(' '.join(described))}" if described else "")


def command_reference(parser: argparse.ArgumentParser, depth: int = 2) -> str:
    """Markdown for every subcommand of ``parser`` (recursively): a heading, its one-line help,
    its usage and each of its options (``--help`` and ``--debug``, which every command takes, are
    said once on the page)."""
    sections = []
    for sub, description in _subcommands(parser).values():
        lines = [f"{'#' * depth} {sub.prog}", "", text(description), "",
                 f"```\n{sub.format_usage().removeprefix('usage: ').strip()}\n```", ""]
        lines += [_option(sub, action) for action in sub._actions
                  if action.help != argparse.SUPPRESS and "--debug" not in action.option_strings
                  and not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)]
        if sub.epilog:
            lines += ["", text(sub.epilog)]
        sections.append("\n".join(lines).rstrip() + "\n")
        sections.append(command_reference(sub, depth + 1))
    return "\n".join(s for s in sections if s)


@event_priority(100)  # first: mkdocstrings keeps only the search paths that exist at its on_config
def on_config(config: Any) -> Any:
    """Lay out the package for griffe before mkdocstrings reads it."""
    lay_out_package(ROOT, API_SOURCE)
    return config


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Fill the CLI page's marker with the reference generated from the parser."""
    if CLI_MARKER not in markdown:
        return markdown
    from nnparity.cli import build_parser

    return markdown.replace(CLI_MARKER, command_reference(build_parser()))
