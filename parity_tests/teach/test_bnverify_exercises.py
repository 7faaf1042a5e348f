"""The batchnorm and layernorm sections' exercises: the solution passes ``nnparity verify``,
the planted bug fails with its named diagnosis, the stub fails naming the function to write;
``teach --exercises`` writes their stubs; the sections no longer say why they have none."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.teach import backward_exercise, exercises, norm_exercises
from nnparity.teach.norm_exercises import EXERCISES, source, verify


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_the_solution_passes_and_the_planted_bug_is_diagnosed(exercise, tmp_path: Path) -> None:
    code, result = verify(exercise, "solution", tmp_path)
    assert (code, result["status"], result["diagnosis"]) == (0, "pass", []), result
    code, result = verify(exercise, "bug", tmp_path)
    assert code == 1 and result["status"] == "fail", result
    assert result["first_divergence"].startswith("forward and loss match; delta of dense1")
    assert [d["code"] for d in result["diagnosis"]] == [exercise.diagnosis]


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_the_stub_fails_naming_the_function(exercise, tmp_path: Path) -> None:
    code, result = verify(exercise, "stub", tmp_path)
    assert code == 1 and result["status"] != "pass"
    assert "NotImplementedError" in result["first_divergence"]
    assert exercise.function in result["first_divergence"]


def test_each_file_differs_from_the_solution_in_the_task_only() -> None:
    for exercise in EXERCISES:
        solution, stub = source(exercise, "solution"), source(exercise, "stub")
        assert solution.replace(exercise.solution, backward_exercise.stub(exercise)) == stub
        assert source(exercise, "bug").replace(exercise.bug, exercise.solution) == solution
        tree = ast.parse(stub)
        declared = next(node for node in tree.body if isinstance(node, ast.Assign)
                        and node.targets[0].id == "NNPARITY")
        assert ast.literal_eval(declared.value) == exercise.declaration()


def test_the_norm_sections_have_an_exercise_not_a_reason() -> None:
    assert {"batchnorm", "layernorm"} == set(norm_exercises.BY_KEY)
    assert not set(norm_exercises.BY_KEY) & set(exercises.WITHOUT_EXERCISE)


def test_teach_exercises_writes_the_norm_stubs(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "exercises"
    assert main(["teach", "--exercises", str(folder)]) == 0
    for exercise in EXERCISES:
        assert (folder / exercise.file_name).read_text() == source(exercise, "stub")


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_the_section_shows_the_exercise_and_the_bugs_diagnosis(exercise) -> None:
    import html

    from nnparity.teach.site import _exercise_part

    text = html.unescape(_exercise_part(exercise.key))
    assert "No exercise" not in text
    assert exercise.task in text and f"nnparity verify exercises/{exercise.file_name}" in text
    assert exercise.diagnosis.split("-")[0] in text and "path through the" in text
