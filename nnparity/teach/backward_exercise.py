"""What the exercises of one layer's backward pass share (the batch and layer normalisation's,
:mod:`nnparity.teach.norm_exercises`; the residual block's,
:mod:`nnparity.teach.residual_exercise`): the learner writes ``function`` inside a small network
file for ``nnparity verify`` whose forward, other layers and update are given. Each variant of
the file (``stub`` to complete, ``solution``, ``bug``: the planted mistake) differs only in that
function; the file opens with the task and the command that checks it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnparity.files.escape import python_docstring, python_string

from .exercises import verify_file


@dataclass(frozen=True)
class BackwardExercise:
    """``key`` (the page section), ``task``, ``function`` (the backward to write), ``given``
    (its forward, correct), ``solution`` and ``bug`` (the backward, correct and with the
    planted mistake), ``diagnosis`` (verify's code for the bug), ``options`` of ``nnparity
    verify``."""

    key: str
    task: str
    function: str
    given: str
    solution: str
    bug: str
    diagnosis: str
    options: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        """The stub's file name (``--exercises DIR``)."""
        return f"{self.key}.py"


def stub(exercise: BackwardExercise) -> str:
    """The backward with its body left to the learner."""
    signature = exercise.solution.split("\n", 1)[0]
    return f"{signature}\n    raise NotImplementedError({python_string(exercise.task)})\n"


def your_part(exercise: BackwardExercise, variant: str) -> str:
    """The learner's function in ``variant``: ``stub``, ``solution`` or ``bug``."""
    return {"stub": stub(exercise), "solution": exercise.solution, "bug": exercise.bug}[variant]


def header(exercise: BackwardExercise, network: str) -> str:
    """The file's docstring: the task, the command that checks it, then ``network`` (what the
    rest of the file gives, in which layout)."""
    command = " ".join(("nnparity verify", exercise.file_name, *exercise.options))
    return python_docstring(
        f"Exercise {exercise.key}: {exercise.task}\n\nComplete {exercise.function} below, then "
        f"check it with\n\n    {command}\n\n{network}")


def verify_variant(exercise: BackwardExercise, variant: str, text: str,
                   folder: Path) -> tuple[int, dict[str, Any]]:
    """Write the exercise's file ``text`` (in ``variant``) into ``folder`` and verify it
    (:func:`nnparity.teach.exercises.verify_file`)."""
    path = folder / f"{variant}_{exercise.file_name}"
    path.write_text(text)
    return verify_file(path, exercise.options)


def file_text(exercise: BackwardExercise, variant: str, *, network: str, declaration: str,
              constants: list[str], after_given: list[str]) -> str:
    """The exercise's file in ``variant``: its docstring (:func:`header` with ``network``),
    NumPy, the ``NNPARITY`` ``declaration``, the module's ``constants`` lines, the learner's
    part, then the given forward and ``after_given`` (the rest of the network)."""
    return "\n".join([
        header(exercise, network), "", "import numpy as np", "", declaration, "",
        *constants, "", "",
        "# --- your part " + "-" * 60, "", "", your_part(exercise, variant), "",
        "# --- given " + "-" * 64, "", "", exercise.given, "", *after_given])
