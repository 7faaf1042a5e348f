"""``nnparity verify --init FILE``: the file run once in the sandbox, a draft declaration guessed
from its arrays (by name and shape), each guess commented; pasted in, the draft verifies."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nnparity.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"


def bare(example: str, folder: Path) -> Path:
    """The example without its declaration."""
    source = (EXAMPLES / f"{example}.py").read_text()
    start = source.index("NNPARITY = {")
    end = source.index("\n}\n", start) + 3
    path = folder / f"{example}.py"
    path.write_text(source[:start] + source[end:])
    return path


@pytest.mark.parametrize("example", ["correct_class_gradient", "correct_layers"])
def test_the_draft_of_a_class_verifies(example, tmp_path, capsys):
    path = bare(example, tmp_path)
    assert main(["verify", "--init", str(path)]) == 0
    drafted = capsys.readouterr().out
    declaration = ast.literal_eval(drafted[drafted.index("{"):drafted.rindex("}") + 1])
    assert declaration["spec"]["layers"] == [5, 3] and declaration["W"].endswith("{l}']")
    assert "# spec from the weights' shapes" in drafted and "# where the weights live" in drafted
    path.write_text(path.read_text() + "\n" + drafted)
    assert main(["verify", str(path), "--backends", "none"]) == 0, capsys.readouterr().out


def test_a_file_without_recognisable_weights_gets_a_commented_skeleton(tmp_path, capsys):
    path = bare("correct_class_row", tmp_path)
    assert main(["verify", "--init", str(path)]) == 0
    drafted = capsys.readouterr().out
    compile(drafted, "draft", "exec")
    assert "no weights found by name and shape" in drafted


def test_learner_names_stay_inside_strings_and_comments(tmp_path, capsys):
    path = bare("correct_class_gradient", tmp_path)
    path.write_text(path.read_text().replace("'w1'", "\"x'\\n#w1\""))
    assert main(["verify", "--init", str(path)]) == 0
    drafted = capsys.readouterr().out
    compile(drafted, "draft", "exec")
    assert drafted.count("\n") == 13  # every learner name inside a string or a comment
    declaration = ast.literal_eval(drafted[drafted.index("{"):drafted.rindex("}") + 1])
    assert declaration["W"] == ["model.dict[\"x'\\n#w1\"]", "model.dict['w2']"]


def test_a_file_that_fails_on_import_is_exit_1(tmp_path, capsys):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\nraise RuntimeError('boom')\n")
    assert main(["verify", "--init", str(path)]) == 1
    assert "importing the file raised RuntimeError: boom" in capsys.readouterr().err


def test_init_takes_one_file(tmp_path, capsys):
    bare("correct_layers", tmp_path)
    assert main(["verify", "--init", str(tmp_path)]) == 2
    assert "--init takes one Python file or notebook" in capsys.readouterr().err
