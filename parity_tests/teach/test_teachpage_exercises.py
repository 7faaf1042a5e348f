"""The exercises: every MLP section has one whose solution passes ``nnparity verify`` and whose
planted bug fails with its named diagnosis; the stub fails (it is not done); ``nnparity teach
--exercises DIR`` writes one stub per exercise through the output rules."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.teach import exercises
from nnparity.teach.exercises import EXERCISES, WITHOUT_EXERCISE, source, verify


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_the_solution_passes_and_the_planted_bug_is_diagnosed(exercise, tmp_path: Path) -> None:
    code, result = verify(exercise, "solution", tmp_path)
    assert (code, result["status"], result["diagnosis"]) == (0, "pass", []), result
    code, result = verify(exercise, "bug", tmp_path)
    assert code == 1 and result["status"] == "fail", result
    assert result["diagnosis"], result["first_divergence"]
    assert result["diagnosis"][0]["code"] == exercise.diagnosis, result["diagnosis"]


def test_a_stub_is_not_a_pass(tmp_path: Path) -> None:
    code, result = verify(exercises.BY_KEY["adam"], "stub", tmp_path)
    assert code == 1 and result["status"] != "pass"
    assert "NotImplementedError" in result["first_divergence"]


def test_every_block_has_an_exercise_or_a_reason() -> None:
    from nnparity.teach.cnn_exercises import BY_KEY as CNN_EXERCISES
    from nnparity.teach.norm_exercises import BY_KEY as NORM_EXERCISES
    from nnparity.teach.residual_exercise import BY_KEY as RESIDUAL_EXERCISES
    from nnparity.teach.sections import blocks

    keys = ({block.key for block in blocks()} - set(CNN_EXERCISES) - set(NORM_EXERCISES)
            - set(RESIDUAL_EXERCISES))
    assert set(exercises.BY_KEY) | set(WITHOUT_EXERCISE) == keys
    assert not set(exercises.BY_KEY) & set(WITHOUT_EXERCISE)


def test_each_file_differs_from_the_solution_in_the_task_only() -> None:
    for exercise in EXERCISES:
        solution, stub = source(exercise, "solution"), source(exercise, "stub")
        assert solution.replace(exercise.solution, exercises.stub(exercise)) == stub
        assert "NotImplementedError" in stub and "NotImplementedError" not in solution
        tree = ast.parse(stub)
        declared = next(node for node in tree.body if isinstance(node, ast.Assign)
                        and node.targets[0].id == "NNPARITY")
        assert ast.literal_eval(declared.value) == exercise.declaration()


def test_teach_exercises_writes_one_stub_per_exercise(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "exercises"
    assert main(["teach", "--exercises", str(folder)]) == 0
    written = sorted(p.name for p in folder.iterdir())
    assert written == sorted(path.name for path in exercises.files(folder))
    for exercise in EXERCISES:
        assert (folder / exercise.file_name).read_text() == source(exercise, "stub")
    assert f"wrote {len(written)} exercises" in capsys.readouterr().out


def test_teach_exercises_refuses_a_missing_parent_and_a_folder_in_the_way(
        tmp_path: Path, capsys) -> None:
    assert main(["teach", "--exercises", str(tmp_path / "no" / "such")]) == 2
    assert not (tmp_path / "no").exists()
    folder = tmp_path / "exercises"
    folder.mkdir()
    last = exercises.files(folder)[-1].name
    (folder / last).mkdir()  # the last file is a folder: nothing is written
    assert main(["teach", "--exercises", str(folder)]) == 2
    assert os.listdir(folder) == [last]
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "Traceback" not in err


def test_teach_needs_an_output(capsys) -> None:
    assert main(["teach"]) == 2
    assert "--exercises" in capsys.readouterr().err
