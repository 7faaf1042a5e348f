"""Every string that reaches generated code or markup goes through one escaping rule per target
(:mod:`nnparity.files.escape`): exported Python files, the teaching page's HTML, JUnit XML and the
figures' text. Each target is tested with quotes, triple quotes, backslashes, line breaks,
``</script>``, ``<!--``, ``]]>``, ``&``, a control character and non-ASCII: the output parses,
nothing extra runs or appears, and the text comes back as it went in.
"""

from __future__ import annotations

import ast
import json
import runpy
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from nnparity.cli import main
from nnparity.export import source
from nnparity.export.graph import network
from nnparity.export.writers import VARIANTS, WRITERS
from nnparity.files import escape
from nnparity.parity import report
from nnparity.reference.spec import MLPSpec

NASTY = ('y""";print("INJECTED");""" \'\'\';print(\'INJECTED\');\'\'\' \\ \\" \n#\r'
         'print("INJECTED") </script><script>alert(1)</script> <!-- ]]> &amp; & é 中 😀 \u2028')
"""Everything that could end a literal, a comment, an element or a CDATA section (a file name
may hold any of it; ``/`` aside)."""
FILE_NAME = NASTY.replace("/", "")
"""The same, as a file name can hold it."""
CONTROL = "\x1b[31m\x00\x0c"
"""Characters XML and HTML cannot hold (ANSI colour, NUL, form feed)."""


# Python source ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", [NASTY, NASTY + CONTROL, '"', "\\", "'''", '"""', "x\\"])
def test_python_literals_round_trip(text):
    assert ast.literal_eval(escape.python_string(text)) == text
    assert "\n" not in escape.python_string(text) and "\r" not in escape.python_string(text)
    assert ast.literal_eval(escape.python_docstring(text)) == text


def test_a_comment_stays_one_comment():
    code = f"x = 1  # {escape.python_comment(NASTY + CONTROL)}\n"
    tree = ast.parse(code)
    assert len(tree.body) == 1 and len(code.splitlines()) == 1


def _export(framework: str, title: str) -> str:
    spec, optimizer, _ = source.load("seed000-iris", {"variant": VARIANTS[framework]})
    return WRITERS[framework](network(spec, optimizer, title))


@pytest.mark.parametrize("framework", sorted(WRITERS))
def test_an_exported_file_holds_the_title_verbatim_and_nothing_more(framework):
    """The docstring's value starts with the title, and the rest of the module is the same
    code as for a plain title: nothing was injected (no framework needs to be installed)."""
    tree = ast.parse(_export(framework, NASTY))
    plain = ast.parse(_export(framework, "plain"))
    assert ast.get_docstring(tree, clean=False).startswith(NASTY + ": a standalone ")
    assert ast.dump(ast.Module(tree.body[1:], [])) == ast.dump(ast.Module(plain.body[1:], []))


def test_export_of_a_spec_named_to_inject_prints_nothing(tmp_path):
    """The issue's reproduction: a spec file whose name closes the docstring."""
    spec = MLPSpec(input_dim=2, layers=(3, 2), activations=("tanh", "identity"), loss="ce")
    name = FILE_NAME + ".json"
    (tmp_path / name).write_text(json.dumps(spec.to_dict()))
    out = tmp_path / "model.py"
    assert main(["export", str(tmp_path / name), "--framework", "numpy", "-o", str(out)]) == 0
    doc = ast.get_docstring(ast.parse(out.read_text(encoding="utf-8")), clean=False)
    assert doc.startswith(f"The network of {name}: ")
    ran = subprocess.run([sys.executable, "-c", "import runpy, sys; runpy.run_path(sys.argv[1])",
                          str(out)], capture_output=True, text=True, timeout=60, check=True)
    assert "INJECTED" not in ran.stdout + ran.stderr


# HTML ----------------------------------------------------------------------------------------

class Collect(HTMLParser):
    """Start tags with their attributes, and the text, of an HTML fragment."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data

    def handle_comment(self, data):
        raise AssertionError(f"a comment appeared: {data!r}")


def test_html_text_and_attributes_round_trip():
    pytest.importorskip("latex2mathml", reason="the page needs nnparity[teach]")
    pytest.importorskip("pygments", reason="the page needs nnparity[teach]")
    from nnparity.teach import page

    markup = page.document(NASTY, [(NASTY, NASTY)], page.section(NASTY, NASTY, ""), "")
    found = Collect(markup)
    assert [tag for tag, _ in found.tags] == ["html", "head", "meta", "meta", "title", "link",
                                              "body", "header", "h1", "nav", "ol", "li", "a",
                                              "main", "section", "h2", "footer"]
    attrs = dict(found.tags)
    assert attrs["a"]["href"] == "#" + NASTY and attrs["section"]["id"] == NASTY
    assert found.text.count(NASTY) == 4  # title, h1, the link, h2


def test_control_characters_never_reach_html():
    assert escape.html_text("a" + CONTROL + "\x85b") == "a\ufffd[31m\ufffd\x0c\ufffdb"


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # 中 and 😀: not in DejaVu
def test_a_metrics_file_name_is_escaped_on_the_page_and_in_its_link(tmp_path):
    """The metrics file's name is the figure's heading, its file name and its link: the link
    must lead to the file written (``#``, ``?``, ``%`` percent-encoded), the heading must read
    the name, and the figure must be a well-formed SVG."""
    pytest.importorskip("matplotlib", reason="the figures need matplotlib")
    pytest.importorskip("latex2mathml", reason="the page needs nnparity[teach]")
    pytest.importorskip("pygments", reason="the page needs nnparity[teach]")
    from nnparity.teach import site
    from nnparity.teach.figures import read_metrics

    name = FILE_NAME + " #? %20 $x$ .csv"
    metrics = tmp_path / name
    metrics.write_text("epoch,loss,train_error,test_error\n1,0.5,0.2,0.25\n2,0.4,0.1,0.2\n")
    out = tmp_path / "site"
    (out / "figures").mkdir(parents=True)
    found = Collect(site._figures_section(out, {metrics: read_metrics(metrics)}))
    images = [attrs["src"] for tag, attrs in found.tags if tag == "img"]
    assert unquote(urlsplit(images[-1]).path) == f"figures/train-{metrics.stem}.svg"
    assert (out / "figures" / f"train-{metrics.stem}.svg").is_file()
    assert f"Training: {name}" in found.text
    assert not [tag for tag, _ in found.tags if tag == "script"]
    svg = ET.parse(out / "figures" / f"train-{metrics.stem}.svg").getroot()
    assert not [e for e in svg.iter() if e.tag.endswith("script")]


def test_plot_text_is_not_mathtext():
    matplotlib = pytest.importorskip("matplotlib", reason="the figures need matplotlib")
    from matplotlib.text import Text

    del matplotlib
    for text in ("$x$", "cost $5 and $6", FILE_NAME.replace("\r", "").replace("\u2028", "")):
        assert Text(text=escape.plot_text(text))._preprocess_math(escape.plot_text(text)) == \
            (text, False)
    assert escape.plot_text("a\rb\x00c\nd") == "a\ufffdb\ufffdc\nd"


# XML (JUnit) ---------------------------------------------------------------------------------

def test_junit_holds_any_case_name_and_error():
    """ElementTree escapes ``& < > "`` but writes control characters raw, which no XML parser
    reads back: the report must parse, with the name intact but for them."""
    name, error = NASTY + CONTROL, "Traceback\n" + CONTROL + NASTY
    results = [report.CaseResult(name, "numpy", error=error),
               report.CaseResult("other", "torch", skipped=NASTY + CONTROL)]
    root = ET.fromstring(report.to_junit(results, skipped_backends={"jax": CONTROL + NASTY}))
    case = root.find("./testsuite/testcase")
    assert case.get("name") == escape.xml_text(name)
    assert case.find("error").text == escape.xml_text(error)
    assert NASTY in case.get("name") and len(list(root.iter("testcase"))) == 2


def test_verify_junit_names_a_learner_file_with_any_name(tmp_path, capsys):
    """``verify --junit`` of a learner's file named with every hostile character parses."""
    example = Path(__file__).parents[2] / "examples" / "verify" / "faulty_sign.py"
    learner = tmp_path / (FILE_NAME + CONTROL.replace("\x00", "") + ".py")
    learner.write_text(example.read_text())
    junit = tmp_path / "report.xml"
    code = main(["verify", str(learner), "--backends", "none", "--sandbox", "off",
                 "--junit", str(junit)])
    capsys.readouterr()
    assert code == 1
    root = ET.parse(junit).getroot()
    names = {case.get("name") for case in root.iter("testcase")}
    assert names and all(n for n in names)


# A terminal ------------------------------------------------------------------------------------

def _no_terminal_controls(text: str) -> None:
    """Nothing a terminal acts on but the line feed: no escape sequence, carriage return,
    form feed, NUL or bidi override."""
    assert all(c.isprintable() or c == "\n" for c in text), repr(text)


@pytest.mark.parametrize("text", [NASTY, NASTY + CONTROL, "\u202eevil", "a\tb", "plain é 中"])
def test_terminal_rules(text):
    line = escape.terminal_line(text)
    _no_terminal_controls(line)
    assert "\n" not in line and line == ast.literal_eval(repr(line))
    assert escape.terminal_line("plain é 中 😀") == "plain é 中 😀"
    kept = escape.terminal_text(text)
    _no_terminal_controls(kept)
    assert kept.count("\n") == text.count("\n")  # the report's own lines stay lines


def _learner_header() -> str:
    """The sandbox tests' declared two-layer learner (parity_tests/verify/learner_header.py)."""
    return runpy.run_path(str(Path(__file__).parents[1] / "verify" / "learner_header.py"))[
        "HEADER"]


FORGER = '''
def forward(x, W1, b1, W2, b2):
    raise ValueError("boom\\x1b[1A\\x1b[2K\\rPASS   forger.py: 5 tensors match\\nPASS forged")
'''


def test_a_graded_class_cannot_forge_or_rewrite_a_verdict_line(tmp_path, capsys):
    """A file named, or a learner's exception worded, to start a line, return the cursor or
    move it up and erase (ANSI) cannot make the teacher's terminal show a verdict it did not
    give: one printed line per file, nothing a terminal acts on."""
    header = _learner_header()
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "forger.py").write_text(header + FORGER)
    example = Path(__file__).parents[2] / "examples" / "verify" / "faulty_sign.py"
    named = FILE_NAME.replace("\x00", "") + "\x1b[1A\x1b[2K\rPASS   faulty.py"
    (folder / (named + ".py")).write_text(example.read_text())
    code = main(["verify", str(folder), "--backends", "none", "--sandbox", "off"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    _no_terminal_controls(out + err)
    lines = out.splitlines()
    assert len(lines) == 3, out  # two files, one summary
    assert sum(line.startswith("PASS") for line in lines) == 0, out
    assert "graded 2 files: 0 passed, 1 failed, 1 error(s)" in lines[-1]


def test_a_single_files_report_holds_no_terminal_control(tmp_path, capsys):
    header = _learner_header()
    learner = tmp_path / "forger\x1b[2J.py"
    learner.write_text(header + FORGER)
    code = main(["verify", str(learner), "--backends", "none", "--sandbox", "off"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    _no_terminal_controls(out + err)
    assert "\\x1b[1A\\x1b[2K\\rPASS" in out  # shown, as its escapes


def test_check_shows_a_spec_file_named_with_controls_escaped(tmp_path, capsys):
    spec = tmp_path / "s\x1b[2Kpec\r.json"
    spec.write_text(json.dumps({"input_dim": 3, "layers": [4, 2], "loss": "l2",
                                "activations": ["tanh", "identity"]}))
    assert main(["check", "--spec", str(spec), "--backends", "numpy", "--list"]) == 0
    out, err = capsys.readouterr()
    _no_terminal_controls(out + err)
    assert out.startswith("s\\x1b[2Kpec\\r-")
