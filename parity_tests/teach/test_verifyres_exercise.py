"""The residual section's exercise (:mod:`nnparity.teach.residual_exercise`): its stub fails
verify naming ``residual_backward``, its solution passes, its planted bug (the skip path's
gradient left out) is diagnosed ``residual-skip-gradient``; ``--exercises`` writes it and the
page shows it."""

from __future__ import annotations

import html
from pathlib import Path

from nnparity.cli import main
from nnparity.teach import backward_exercise, exercises, site
from nnparity.teach.residual_exercise import BY_KEY, source, verify

EXERCISE = BY_KEY["residual"]


def test_the_stub_fails_naming_the_function_to_write(tmp_path: Path) -> None:
    code, result = verify(EXERCISE, "stub", tmp_path)
    assert code == 1 and result["status"] == "fail"
    assert "NotImplementedError" in result["first_divergence"]
    assert "residual_backward" in result["first_divergence"]


def test_the_solution_passes(tmp_path: Path) -> None:
    code, result = verify(EXERCISE, "solution", tmp_path)
    assert (code, result["status"]) == (0, "pass"), result
    compared = {(c["stage"], c["name"]) for c in result["comparisons"]}
    assert {("delta", "dense2"), ("delta", "dense3"), ("grad", "dense2.W")} <= compared


def test_the_planted_bug_is_diagnosed(tmp_path: Path) -> None:
    code, result = verify(EXERCISE, "bug", tmp_path)
    assert code == 1, result
    assert [d["code"] for d in result["diagnosis"]] == [EXERCISE.diagnosis] \
        == ["residual-skip-gradient"]


def test_the_file_differs_from_the_solution_in_the_task_only() -> None:
    solution, stub = source(EXERCISE, "solution"), source(EXERCISE, "stub")
    assert solution.replace(EXERCISE.solution, backward_exercise.stub(EXERCISE)) == stub
    assert "NotImplementedError" in stub and "NotImplementedError" not in solution
    assert "+ dy" not in stub and "+ dy" not in EXERCISE.bug.split("#")[0]


def test_every_section_has_its_exercise(tmp_path: Path, capsys) -> None:
    assert "residual" not in exercises.WITHOUT_EXERCISE
    folder = tmp_path / "exercises"
    assert main(["teach", "--exercises", str(folder)]) == 0
    assert (folder / "residual.py").read_text() == source(EXERCISE)
    assert "wrote 27 exercises" in capsys.readouterr().out


def test_the_section_shows_the_bug_and_its_diagnosis() -> None:
    part = html.unescape(site._exercise_part("residual"))
    assert "No exercise" not in part
    assert "diagnosis [residual-skip-gradient]" in part
    assert "nnparity verify exercises/residual.py" in part
