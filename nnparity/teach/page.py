"""The HTML of the teaching page: one function per part, plain strings, no templates.

Math is LaTeX converted to native MathML by ``latex2mathml`` (no script, no CDN), code is
highlighted by Pygments; every value shown is passed in by :mod:`.site`, which computed it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from latex2mathml.converter import convert
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from nnparity.files.escape import html_text as esc
from nnparity.files.escape import html_url

from .measure import Framework, Measurement
from .networks import SeedNetwork
from .sources import Source
from .traps import Table

FORMATTER = HtmlFormatter(cssclass="hl")


def math(latex: str) -> str:
    """Native MathML for ``latex`` (display style), without the namespace URL HTML needs not."""
    return re.sub(r'\s*xmlns="[^"]*"', "", convert(latex, display="block"))


def code(source: str) -> str:
    """Highlighted Python."""
    return highlight(source, PythonLexer(), FORMATTER)


def helpers_of(function: Callable[..., Any], module: ModuleType) -> list[Callable[..., Any]]:
    """The functions of ``module`` that ``function`` calls by name (shown before it)."""
    names: list[str] = []
    stack = [inspect.unwrap(function).__code__]  # through jax.jit and other wrappers
    while stack:
        current = stack.pop()
        names += current.co_names
        stack += [c for c in current.co_consts if inspect.iscode(c)]
    found = []
    for name in dict.fromkeys(names):
        value = getattr(module, name, None)
        plain = inspect.unwrap(value) if callable(value) else None
        if inspect.isfunction(plain) and plain.__module__ == module.__name__ and value is not \
                function:
            found.append(value)
    return found


def source_of(function: Callable[..., Any], module: ModuleType) -> str:
    """The source of ``function`` preceded by its helpers' (live, from the module)."""
    parts = [inspect.getsource(f) for f in (*helpers_of(function, module), function)]
    return "\n".join(parts)


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], attrs: str = "") -> str:
    """A plain HTML table."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def parity_table(key: str, results: list[tuple[Framework, str | list[Measurement]]]) -> str:
    """Max abs / max rel per framework and dtype; a missing framework gets its reason."""
    rows = []
    for framework, outcome in results:
        if isinstance(outcome, str):
            rows.append(f'<tr class="missing"><td>{esc(framework.title)}</td>'
                        f'<td colspan="7">not installed: {esc(outcome)}</td></tr>')
            continue
        for m in outcome:
            w = m.worst
            verdict = "PASS" if all(c.passed for c in m.comparisons) else "FAIL"
            names = ", ".join(c.name for c in m.comparisons)
            rows.append(
                f'<tr data-framework="{esc(framework.key)}" data-dtype="{esc(m.dtype)}">'
                f"<td>{esc(framework.title)}</td><td>{esc(m.dtype)}</td><td>{esc(names)}</td>"
                f"<td>{esc(w.name)}</td><td class=\"abs\">{w.max_abs:.1e}</td>"
                f"<td class=\"rel\">{w.max_rel:.1e}</td><td>{w.tol:.0e}</td>"
                f'<td class="{verdict.lower()}">{verdict}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("framework", "dtype", "tensors compared",
                                             "worst", "max abs", "max rel", "tol", "result"))
    return (f'<table class="parity" id="parity-{esc(key)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def columns(items: list[tuple[str, str]]) -> str:
    """Side-by-side code columns (stacked on a narrow screen): ``(title, html)`` each."""
    cells = "".join(f'<div class="column"><h4>{esc(t)}</h4>{body}</div>' for t, body in items)
    return f'<div class="columns">{cells}</div>'


def fold(summary: str, body: str) -> str:
    """A ``<details>`` fold, closed, titled ``summary`` (text), holding ``body`` (HTML)."""
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def derivation(steps: Iterable[tuple[str, str]]) -> str:
    """The derivation: each step's prose (text) and its formula (LaTeX, as MathML)."""
    parts = "".join(f'<p>{esc(prose)}</p><div class="formula">{math(latex)}</div>'
                    for prose, latex in steps)
    return f'<div class="derivation"><h4>Derivation</h4>{parts}</div>'


def citations(sources: list[Source]) -> str:
    """The section's sources as links to the list of sources (or a note that none has it)."""
    if not sources:
        return '<p class="cite">Sources: none of the source documents covers this block.</p>'
    links = "; ".join(f'<a href="#source-{esc(s.key)}">{esc(s.nickname)}</a>' for s in sources)
    return f'<p class="cite">Sources: {links}.</p>'


def source_list(sources: Iterable[Source]) -> str:
    """The full citations, each with its anchor."""
    items = "".join(f'<li id="source-{esc(s.key)}"><b>{esc(s.nickname)}</b>: '
                    f'{esc(s.parts()[0])}<cite lang="zh">{esc(s.parts()[1])}</cite>'
                    f"{esc(s.parts()[2])}</li>" for s in sources)
    return ("<p>The documents this project was created from; the page refers to each by the "
            f"nickname in bold.</p><ol>{items}</ol>")


def verdict(result: dict) -> str:
    """What ``nnparity verify`` said about a file, as it prints it (its JSON report's ``yours``
    entry: first divergence, diagnosis with detail and evidence)."""
    lines = [f"first divergence: {result.get('first_divergence')}"]
    for diagnosis in result.get("diagnosis") or []:  # report schema 2: a list of objects
        lines += [f"diagnosis [{diagnosis['code']}]: {diagnosis['message']}",
                  f"  checked: {diagnosis['evidence']}"]
    if not result.get("diagnosis"):
        lines.append("diagnosis: none")
    return f'<pre class="verdict">{esc(chr(10).join(lines))}</pre>'


def exercise(task: str, file_name: str, function: str, declaration: str, stub: str, bug: str,
             solution: str, result: dict, options: str = "") -> str:
    """An exercise: the task, the stub's function and declaration, the command that checks it
    (with ``options``), the planted bug with verify's diagnosis of it, the solution in a
    fold."""
    command = (f"nnparity teach --exercises exercises\nnnparity verify exercises/{file_name}"
               + (f" {options}" if options else ""))
    anchor = "exercise-" + file_name.removesuffix(".py")
    return (f'<div class="exercise" id="{esc(anchor)}"><h3><a href="#{esc(anchor)}">Exercise'
            f"</a></h3><p>{esc(task)}</p>"
            f"<p>Complete <code>{esc(function)}</code> in <code>{esc(file_name)}</code>:</p>"
            f"{code(stub)}"
            + fold("the file's NNPARITY declaration (where verify finds your numbers)",
                   code(declaration))
            + f"<p>Check it:</p><pre>{esc(command)}</pre>"
            f"<p>A planted bug:</p>{code(bug)}"
            "<p>What verify says about it (run while this page was built):</p>"
            f"{verdict(result)}" + fold("solution", code(solution)) + "</div>")


def section(key: str, title: str, body: str, kind: str = "block") -> str:
    """One ``<section>`` with an anchor."""
    return f'<section id="{esc(key)}" class="{esc(kind)}"><h2>{esc(title)}</h2>{body}</section>'


def network_section(seed: SeedNetwork) -> str:
    """The diagram of shapes and the links to the exported files."""
    boxes = "".join(f'<li><span class="label">{esc(s.label)}</span>'
                    f'<span class="shape">[N, {", ".join(map(str, s.shape))}]</span></li>'
                    for s in seed.stages)
    links = " · ".join(f'<a href="{html_url(path)}">{esc(fw)}</a>'
                       for fw, path in seed.files.items())
    net = seed.net
    facts = (f"loss {net.loss} ({net.reduction}), weight decay {net.weight_decay}, "
             f"{net.dtype}; optimiser {net.optimizer.name}, learning rate {net.optimizer.lr}")
    return (f"<p>Preset <code>{esc(seed.preset)}</code>: {esc(facts)}.</p>"
            f'<ol class="diagram">{boxes}</ol>'
            f"<p>Model files (<code>nnparity export --framework FRAMEWORK {esc(seed.preset)}"
            f"</code>): {links}</p>")


def trap_body(text: str, source: str, result: Table) -> str:
    """A trap: its text, the code that measured it, the live table."""
    rows = table(result.headers, result.rows, ' class="trap"')
    return (f"<p>{esc(text)}</p>{rows}"
            f"<details><summary>the code that measured this</summary>{code(source)}</details>")


def document(title: str, nav: list[tuple[str, str]], body: str, footer: str) -> str:
    """The whole page."""
    links = "".join(f'<li><a href="#{esc(key)}">{esc(label)}</a></li>' for key, label in nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)}</title><link rel="stylesheet" href="style.css"></head><body>'
            f"<header><h1>{esc(title)}</h1></header>"
            f'<nav><ol>{links}</ol></nav><main>{body}</main>'
            f"<footer>{footer}</footer></body></html>\n")


def stylesheet(base: str) -> str:
    """The page's CSS plus Pygments' highlighting rules."""
    return base + "\n" + FORMATTER.get_style_defs(".hl") + "\n"
