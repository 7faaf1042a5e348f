"""Notebooks as submissions: code cells in order, magics and shell lines skipped with a note, the
declaration in any cell, messages citing the cell; converted in verify's process, so the
sandboxed child needs NumPy only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebooks need nbformat (the notebooks extra)")
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook  # noqa: E402
from test_grading_imports import _course_venv  # noqa: E402  (beside this file)

from nnparity.cli import main  # noqa: E402
from nnparity.verify.notebook import convert  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"
EXAMPLE = EXAMPLES / "correct_notebook.ipynb"


def cells() -> list:
    return nbformat.read(str(EXAMPLE), as_version=4).cells


def write(tmp_path: Path, name: str, notebook_cells: list) -> Path:
    notebook = new_notebook()
    notebook.cells = notebook_cells
    path = tmp_path / name
    nbformat.write(notebook, str(path))
    return path


def test_the_example_notebook_passes_with_notes(tmp_path, capsys):
    report = tmp_path / "r.json"
    code = main(["verify", str(EXAMPLE), "--backends", "none", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    warnings = json.loads(report.read_text())["cases"]["correct_notebook.ipynb"]["backends"][
        "yours"]["warnings"]
    assert "correct_notebook.ipynb, cell 2, line 1: skipped the IPython line `%matplotlib " \
           "inline`" in warnings
    assert any("cell 7, line 1: skipped the IPython line `!pip" in w for w in warnings)


def test_a_failure_cites_the_cell_and_its_line(tmp_path, capsys):
    source = cells()
    source[3].source = source[3].source.replace("grads['b1'] = np.sum(dz1, axis=0)",
                                                "grads['b1'] = np.sum(dz1, axis=0)[7]")
    source.append(new_code_cell("%%time\nfor i in range(3):\n    pass"))
    path = write(tmp_path, "broken.ipynb", source)
    code = main(["verify", str(path), "--backends", "none"])
    out = capsys.readouterr().out
    assert code == 1
    line = source[3].source.splitlines().index(
        "        grads['b1'] = np.sum(dz1, axis=0)[7]") + 1
    assert f"broken.ipynb, cell 4, line {line} in gradient" in out, out
    assert "broken.ipynb.py" not in out


@pytest.mark.parametrize("name", [r"hw\1.ipynb", r"a\g<0>b.ipynb", "x$1.ipynb"])
def test_a_notebook_named_like_a_regex_template_is_cited_by_its_name(tmp_path, capsys, name):
    """A backslash and digit (or ``\\g<0>``) in a notebook's name is text: it was read as a
    group reference of the citation's substitution, a traceback instead of a verdict."""
    source = cells()
    source.append(new_code_cell("raise ValueError('boom')"))
    path = write(tmp_path, name, source)
    code = main(["verify", str(path), "--backends", "none"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err and "re.error" not in err, out + err
    assert f"error: {name}, cell {len(source)}, line 1: importing the file raised " \
           "ValueError: boom" in out, out


def test_the_declaration_may_sit_in_any_cell_and_errors_cite_it(tmp_path, capsys):
    source = cells()
    declaration = source.pop(5)
    source.append(declaration)  # the last cell
    path = write(tmp_path, "last.ipynb", source)
    assert main(["verify", str(path), "--backends", "none"]) == 0
    capsys.readouterr()
    source[-1] = new_code_cell("x = 1\nNNPARITY = {'spec': [1, 2]} + {}")
    path = write(tmp_path, "bad.ipynb", source)
    assert main(["verify", str(path), "--backends", "none"]) == 2
    assert "bad.ipynb, cell 7, line 2: NNPARITY must be a literal" in capsys.readouterr().err


def test_magics_and_shell_lines_become_pass_and_keep_the_lines():
    script = convert(EXAMPLE)
    lines = script.source.splitlines()
    assert lines[0] == "pass" and "!pip" not in script.source
    assert script.where(1) == "correct_notebook.ipynb, cell 2, line 1"
    assert script.cite("correct_notebook.ipynb.py:1: boom") == \
        "correct_notebook.ipynb, cell 2, line 1: boom"


def test_a_folder_grades_notebooks_too(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.ipynb").write_bytes(EXAMPLE.read_bytes())
    (folder / "bob.py").write_text((EXAMPLES / "correct_class_gradient.py").read_text())
    (folder / "notes.txt").write_text("not a submission")
    assert main(["verify", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "PASS   alice.ipynb" in out and "graded 2 files: 2 passed" in out


def test_not_a_notebook_is_exit_2(tmp_path, capsys):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    assert main(["verify", str(path)]) == 2
    assert "not a notebook nbformat can read" in capsys.readouterr().err


def test_the_child_needs_numpy_only(tmp_path, capsys):
    """The notebook runs under an interpreter with NumPy and no nbformat."""
    python = _course_venv(tmp_path / "numpy-only")
    code = main(["verify", str(EXAMPLE), "--backends", "none", "--python", str(python)])
    assert code == 0, capsys.readouterr().out


def test_markdown_cells_are_not_run(tmp_path, capsys):
    source = cells()
    source.insert(1, new_markdown_cell("raise SystemExit  # prose, not code"))
    path = write(tmp_path, "prose.ipynb", source)
    assert main(["verify", str(path), "--backends", "none"]) == 0
    capsys.readouterr()


def test_init_drafts_a_declaration_for_a_notebook(capsys):
    assert main(["verify", "--init", str(EXAMPLE)]) == 0
    drafted = capsys.readouterr().out
    assert '"model": "TwoLayerNet(4, 5, 3)"' in drafted
    assert '"backward": "model.gradient(x, y)"' in drafted
