"""Every CNN exercise (convolution, max-pool, flatten and the layers after them) has what the MLP
ones have: a solution that passes ``nnparity verify``, a planted bug, one line of it changed,
that fails with its named diagnosis, and on the page the bug, verify's verdict on it and the
solution in a ``<details>`` fold; the stub holds neither."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from nnparity.files.escape import python_literal
from nnparity.teach import cnn_exercises, exercises
from nnparity.teach.cnn_exercises import EXERCISES, source


def _run(exercise: cnn_exercises.CNNExercise, variant: str, folder: Path) -> tuple[int, dict]:
    path = folder / f"{variant}_{exercise.file_name}"
    path.write_text(source(exercise, variant))
    return exercises.verify_file(path, exercise.options)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_the_solution_passes_and_the_planted_bug_is_diagnosed(exercise, tmp_path: Path) -> None:
    code, result = _run(exercise, "solution", tmp_path)
    assert (code, result["status"], result["diagnosis"]) == (0, "pass", []), result
    code, result = _run(exercise, "bug", tmp_path)
    assert code == 1 and result["status"] == "fail", result
    assert result["diagnosis"], result["first_divergence"]
    assert result["diagnosis"][0]["code"] == exercise.diagnosis, result["diagnosis"]


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_the_bug_changes_the_solution_at_its_line_only(exercise) -> None:
    line, planted = exercise.bug
    assert line in exercise.solution and planted not in exercise.solution
    assert "#" in planted  # a comment says what is wrong
    assert exercise.planted.replace(planted, line) == exercise.solution
    stub = source(exercise)
    assert source(exercise, "bug") == stub.replace(cnn_exercises.stubs(exercise),
                                                   exercise.planted)
    assert exercise.solution not in stub and exercise.planted not in stub


def test_a_bug_line_missing_from_its_solution_is_refused() -> None:
    from dataclasses import replace

    broken = replace(EXERCISES[0], bug=("no such line", "x"))
    with pytest.raises(ValueError, match="not in the solution"):
        broken.planted  # noqa: B018


def test_each_cnn_section_shows_its_bug_verdict_and_folded_solution(site: Path) -> None:
    text = (site / "index.html").read_text()
    sections = dict(re.findall(r'<section id="([^"]+)" class="block">(.*?)</section>', text,
                               re.S))
    for exercise in EXERCISES:
        body = sections[exercise.key]
        assert f"diagnosis [{exercise.diagnosis}]" in html.unescape(body)
        fold = re.search(r"<details><summary>solution</summary>(.*?)</details>", body, re.S)
        assert fold is not None, exercise.key
        shown = html.unescape(re.sub(r"<[^>]+>", "", fold.group(1)))
        assert shown.strip() == exercise.solution.strip()
        planted = html.unescape(re.sub(r"<[^>]+>", "", body))
        assert exercise.bug[1] in planted


def test_the_gelu_and_average_pool_sections_have_exercises() -> None:
    newer = {"gelu", "gelu-tanh", "avgpool", "global-avgpool"}
    assert newer <= set(cnn_exercises.BY_KEY)
    assert not newer & set(exercises.WITHOUT_EXERCISE)
    gelus = [cnn_exercises.BY_KEY[key] for key in ("gelu", "gelu-tanh")]
    assert [e.declaration()["spec"]["net"][1]["approximate"] for e in gelus] == ["none", "tanh"]
    for exercise in gelus:  # NumPy has no erf: the file gives one, on math.erf
        assert "import math\n" in source(exercise) and "def erf(x):" in source(exercise)
    assert "import math" not in source(cnn_exercises.BY_KEY["avgpool"])


def test_a_declaration_with_a_boolean_is_a_python_literal() -> None:
    """A declaration is written as a Python dict, not JSON (``true`` is no Python literal)."""
    import ast

    value = {"net": [{"kind": "avgpool", "count_include_pad": True}], "x": [False, None],
             "s": 'a "true" \\ null\n\u00e9'}
    assert ast.literal_eval(python_literal(value)) == value


def test_a_residual_block_with_a_projection_is_exit_2(tmp_path: Path, capsys) -> None:
    """verify refuses a residual block with a projection (exit 2): its W and b have no z or
    delta of their own to compare (an identity block is numbered: test_verifyres_*)."""
    from nnparity.cli import main

    exercise = cnn_exercises.BY_KEY["flatten"]
    declared = cnn_exercises.declaration_source(exercise)
    block = {"kind": "residual", "projection": True,
             "net": [{"kind": "conv2d", "filters": 3, "kernel": 1}, {"kind": "tanh"}]}
    spec = exercise.declaration()["spec"]
    net = [*spec["net"][:2], block, *spec["net"][2:]]
    residual = {**exercise.declaration(), "spec": {**spec, "net": net}}
    path = tmp_path / "residual.py"
    path.write_text(source(exercise, "solution").replace(
        declared, f"NNPARITY = {python_literal(residual)}"))
    assert main(["verify", str(path), "--backends", "none", "--sandbox", "off"]) == 2
    assert "cannot hand to your code" in capsys.readouterr().err
