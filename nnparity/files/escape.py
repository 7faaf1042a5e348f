"""The one escaping rule per target for every string that reaches generated code or markup
(file names, titles, layer and case names, metrics file names, learners' error messages).

- Python source (``nnparity export``, the teaching page's model files): :func:`python_string`
  and :func:`python_docstring` give literals whose value is exactly the text (backslashes and
  double quotes escaped, every non-printable character as its ``repr`` escape, so a newline or
  carriage return never ends the literal); :func:`python_comment` keeps a comment on one line;
  :func:`python_literal` writes a JSON-able value (a declaration dict) as a Python literal.
  Raw text is never put into a literal or a comment any other way.
- HTML text and attribute values (the teaching page): :func:`html_text` (``& < > " '`` escaped; the
  characters HTML forbids replaced); a file name used as a link: :func:`html_url`.
- XML (JUnit reports): :func:`xml_document` serialises an ``ElementTree`` whose text and
  attributes are first cleared of the characters XML 1.0 cannot hold (ElementTree escapes
  ``& < > "`` but writes control characters as they are, which no parser reads back, and a
  carriage return in text raw, which a parser reads as a line feed).
- A terminal (verify's and check's reports, the one-line errors): :func:`terminal_line` for a
  line (every non-printable character as its escape: a learner's file name or message cannot
  start a line, return the cursor or send an escape sequence that rewrites a verdict already
  shown) and :func:`terminal_text` for a report whose line feeds are its own.
- Text drawn by matplotlib (titles of the training and metrics figures, in PNG and SVG):
  :func:`plot_text`, so that ``$`` is not read as mathtext. matplotlib escapes its SVG output.

The teaching page embeds no script, so no JSON-in-``<script>`` rule is needed.
"""

from __future__ import annotations

import html as _html
import io
import json
import re
import tokenize
import xml.etree.ElementTree as ET
from urllib.parse import quote

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters outside XML 1.0's ``Char`` production (controls, lone surrogates, U+FFFE/F)."""
_NOT_HTML = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
"""Characters an HTML document may not hold (controls other than whitespace, lone surrogates)."""


def _python_char(char: str, newline: bool) -> str:
    if char in '\\"':
        return "\\" + char
    return char if newline and char == "\n" else _visible(char)  # \r, \x00, \u2028, ...


def python_string(text: str) -> str:
    """A one-line double-quoted Python literal whose value is ``text``."""
    return '"' + "".join(_python_char(c, newline=False) for c in text) + '"'


def python_docstring(text: str) -> str:
    """A triple-quoted Python literal whose value is ``text`` (newlines kept as lines)."""
    return '"""' + "".join(_python_char(c, newline=True) for c in text) + '"""'


def python_literal(value: object) -> str:
    """A JSON-able ``value`` (dicts, lists, strings, numbers, booleans, None) as a Python literal,
    laid out as ``json.dumps(value, indent=4)``: JSON's string escapes are Python's, and its
    ``true``, ``false`` and ``null`` (same length) become ``True``, ``False`` and ``None``."""
    names = {"true": "True", "false": "False", "null": "None"}
    tokens = tokenize.generate_tokens(io.StringIO(json.dumps(value, indent=4)).readline)
    return tokenize.untokenize(
        token._replace(string=names.get(token.string, token.string))
        if token.type == tokenize.NAME else token for token in tokens)


def _visible(text: str) -> str:
    """Every non-printable character of ``text`` as its ``repr`` escape (``\\n``, ``\\r``,
    ``\\x1b``, ``\\u202e``, ...)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def python_comment(text: str) -> str:
    """``text`` for a ``#`` comment: every non-printable character (a line break above all) as
    its escape, so the comment cannot end early and start code."""
    return _visible(text)


def terminal_line(text: object) -> str:
    """``text`` for one line of a terminal: every non-printable character as its escape."""
    return _visible(str(text))


def terminal_text(text: object) -> str:
    """``text`` for a terminal, its line feeds kept, every other non-printable character (a
    carriage return, an escape sequence) as its escape."""
    return "\n".join(_visible(line) for line in str(text).split("\n"))


def html_text(text: object) -> str:
    """``text`` for HTML text or a quoted attribute value."""
    return _html.escape(_NOT_HTML.sub(REPLACEMENT, str(text)), quote=True)


def html_url(path: str) -> str:
    """A relative file path for ``href``/``src``: percent-encoded, then escaped for HTML."""
    return html_text(quote(path, safe="/"))


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold replaced (ElementTree escapes the
    rest)."""
    return _NOT_XML.sub(REPLACEMENT, text)


def xml_document(root: ET.Element) -> str:
    """``root`` as an indented UTF-8 XML document, every text and attribute made XML-safe (a
    carriage return in text written as ``&#13;``, which parsers would read as a line feed)."""
    for element in root.iter():
        element.text = None if element.text is None else xml_text(element.text)
        element.tail = None if element.tail is None else xml_text(element.tail)
        for key, value in element.attrib.items():
            element.set(key, xml_text(value))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode").replace("\r", "&#13;")  # raw only in text
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def plot_text(text: str) -> str:
    """``text`` for a matplotlib title or label: ``$`` escaped (no mathtext), every
    non-printable character but the line feed replaced (no font draws them)."""
    shown = "".join(c if c.isprintable() or c == "\n" else REPLACEMENT for c in text)
    return shown.replace("$", r"\$")
