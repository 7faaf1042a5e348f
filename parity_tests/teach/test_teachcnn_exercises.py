"""The CNN exercises (convolution, max-pool, flatten): each stub fails ``nnparity verify`` naming
the function to write (not an adapter error), the same file with the solution filled in passes;
``teach --exercises`` writes them beside the MLP ones; the sections without an exercise say
why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.teach import cnn_exercises, exercises, norm_exercises, residual_exercise
from nnparity.teach.cnn_exercises import EXERCISES, source, stub_function

SOLUTIONS = {exercise.key: exercise.solution for exercise in EXERCISES}


def solved(exercise: cnn_exercises.CNNExercise) -> str:
    """The stub with its task's functions replaced by the solution."""
    stubs = "\n\n".join(stub_function(name) for name in exercise.functions)
    text = source(exercise)
    assert text.count(stubs) == 1
    assert text.replace(stubs, exercise.solution) == source(exercise, "solution")
    return source(exercise, "solution")


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_the_stub_fails_naming_its_task_and_the_solution_passes(exercise, tmp_path) -> None:
    stub = tmp_path / exercise.file_name
    stub.write_text(source(exercise))
    code, result = exercises.verify_file(stub, exercise.options)
    assert code == 1 and result["status"] == "fail", result
    message = result["first_divergence"]
    assert "NotImplementedError" in message and f"write {exercise.functions[0]}" in message
    assert message.startswith("raised ") and "NNPARITY['forward']" in message  # by the code
    # (exit 1: the learner's code raised; a declaration verify cannot use is exit 2)
    solution = tmp_path / f"solution_{exercise.file_name}"
    solution.write_text(solved(exercise))
    code, result = exercises.verify_file(solution, exercise.options)
    assert (code, result["status"], result["diagnosis"]) == (0, "pass", []), result


def test_a_wrong_solution_fails(tmp_path) -> None:
    """A max-pool routing a tie's gradient to its last maximum fails (on the edge-case batch,
    whose zero image ties every window)."""
    exercise = cnn_exercises.BY_KEY["maxpool"]
    wrong = tmp_path / "wrong.py"
    wrong.write_text(solved(exercise).replace(
        "window.argmax(axis=1)", "size * size - 1 - window[:, ::-1].argmax(axis=1)"))
    code, result = exercises.verify_file(wrong, exercise.options)
    assert code == 1 and result["status"] == "fail", result
    assert "delta of conv1 differs" in str(result), result


def test_a_flatten_backward_in_the_wrong_order_fails(tmp_path) -> None:
    exercise = cnn_exercises.BY_KEY["flatten"]
    wrong = tmp_path / "wrong.py"
    wrong.write_text(solved(exercise).replace(
        "return d.reshape(n, c, height, width).transpose(0, 2, 3, 1)", "return d.reshape(shape)"))
    code, result = exercises.verify_file(wrong)
    assert code == 1 and "delta of conv1 differs" in result["first_divergence"], result


def test_the_stub_declares_the_network_it_walks() -> None:
    for exercise in EXERCISES:
        tree = ast.parse(source(exercise))
        values = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
                  if isinstance(node, ast.Assign) and node.targets[0].id in ("NNPARITY", "NET")}
        assert values["NNPARITY"] == exercise.declaration()
        assert [entry[0] for entry in values["NET"]] == [
            ("pointwise" if layer.get("kernel") == 1 else "conv_cols" if exercise.im2col
             else "conv") if layer["kind"] == "conv2d"
            else "gelu_tanh" if layer.get("approximate") == "tanh" else layer["kind"]
            for layer in values["NNPARITY"]["spec"]["net"]]
        for name in SOLUTIONS[exercise.key].split("def ")[1:]:
            assert f"def {name.split('(')[0]}(" in source(exercise)


def test_no_stub_holds_its_solution() -> None:
    for exercise in EXERCISES:
        text = source(exercise)
        assert "np.tensordot(patch" not in text and "transpose(0, 3, 1, 2)" not in text
        assert "argmax" not in text and "dcols.reshape(n, ho, wo" not in text


def test_every_section_has_an_exercise_or_a_reason() -> None:
    from nnparity.teach.sections import blocks

    keys = {block.key for block in blocks()}
    covered = (set(exercises.BY_KEY) | set(cnn_exercises.BY_KEY) | set(norm_exercises.BY_KEY)
               | set(residual_exercise.BY_KEY))
    assert covered | set(exercises.WITHOUT_EXERCISE) == keys
    assert not covered & set(exercises.WITHOUT_EXERCISE)
    # of the sections verify could check before the new layer kinds, only these two lack one
    newer = {"batchnorm", "layernorm", "gelu", "gelu-tanh", "avgpool", "global-avgpool",
             "residual"}
    assert set(exercises.WITHOUT_EXERCISE) <= newer


def test_teach_exercises_writes_the_cnn_stubs_too(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "exercises"
    assert main(["teach", "--exercises", str(folder)]) == 0
    total = (len(exercises.EXERCISES) + len(EXERCISES) + len(norm_exercises.EXERCISES)
             + len(residual_exercise.EXERCISES))
    assert len(list(folder.iterdir())) == total == 27
    for exercise in EXERCISES:
        assert (folder / exercise.file_name).read_text() == source(exercise)
    assert f"wrote {total} exercises" in capsys.readouterr().out


def test_each_cnn_section_shows_its_exercise_and_the_others_say_why_not(site: Path) -> None:
    import html
    import re

    text = (site / "index.html").read_text()
    sections = dict(re.findall(r'<section id="([^"]+)" class="block">(.*?)</section>', text,
                               re.S))
    for exercise in EXERCISES:
        anchor = "exercise-" + exercise.file_name.removesuffix(".py")
        body = html.unescape(sections[exercise.key])
        assert f'id="{anchor}"' in body and f'href="#{anchor}"' in body
        assert f"nnparity verify exercises/{exercise.file_name}" in body
        assert f"diagnosis [{exercise.diagnosis}]" in body
    for key, reason in exercises.WITHOUT_EXERCISE.items():
        assert f"No exercise: {reason}." in html.unescape(sections[key])


def test_a_col2im_that_overwrites_overlapping_patches_fails(tmp_path) -> None:
    """col2im carries the gradient to the layer's input: the given 1x1 conv before it sees
    the mistake."""
    exercise = cnn_exercises.BY_KEY["conv-valid"]
    wrong = tmp_path / "wrong.py"
    wrong.write_text(solved(exercise).replace("dx[:, i:i + ho, j:j + wo, :] +=",
                                              "dx[:, i:i + ho, j:j + wo, :] ="))
    code, result = exercises.verify_file(wrong)
    assert code == 1 and "delta of conv1 differs" in result["first_divergence"], result


def test_a_strided_conv_backward_that_overwrites_its_input_gradient_fails(tmp_path) -> None:
    exercise = cnn_exercises.BY_KEY["conv-same-stride2"]
    wrong = tmp_path / "wrong.py"
    wrong.write_text(solved(exercise).replace("dxp[:, rows, cols, :] +=",
                                              "dxp[:, rows, cols, :] ="))
    code, result = exercises.verify_file(wrong)
    assert code == 1 and "delta of conv1 differs" in result["first_divergence"], result
