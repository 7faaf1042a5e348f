"""verify checks a learner's PReLU: each PReLU layer's slope is handed to the learner's code like
the weights (``a1``, the list ``a``; numbered apart from ``W1, b1``), its gradient is read where
the declaration's ``da`` says and compared with the reference's; a slope gradient summed over
the wrong axes is named (``prelu-slope-axis``, in ``exercise_bugs.py``); the framework backends
run the same network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnparity.errors import InputError
from nnparity.reference.family import spec_from_dict
from nnparity.teach import cnn_exercises, exercises
from nnparity.verify.adapters import build_adapter
from nnparity.verify.problem import make_problem, reference_tensors
from nnparity.verify.slopes import SlopeLayer, slope_layers, slope_summed_elsewhere

EXERCISE = cnn_exercises.BY_KEY["prelu"]
DECLARED = EXERCISE.declaration()


def _file(folder: Path, name: str, edits: tuple[tuple[str, str], ...] = ()) -> Path:
    text = cnn_exercises.source(EXERCISE, "solution")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = folder / f"{name}.py"
    path.write_text(text)
    return path


def test_the_slopes_are_numbered_apart_and_handed_over_by_name(tmp_path: Path) -> None:
    spec = spec_from_dict(DECLARED["spec"])
    assert slope_layers(spec) == [SlopeLayer(1, "conv1", "conv1.a")]
    path = _file(tmp_path, "by_name", (('"forward(x, W, b, a)"', '"forward(x, W, b, [a1])"'),))
    code, result = exercises.verify_file(path)
    assert (code, result["status"]) == (0, "pass"), result
    compared = {(c["stage"], c["name"]) for c in result["comparisons"]}
    assert ("grad", "conv1.a") in compared


def test_a_wrong_slope_gradient_fails_at_it(tmp_path: Path) -> None:
    """``sum(d * z)`` where ``z < 0`` only belongs: everything else matches."""
    path = _file(tmp_path, "positive", (("np.minimum(z, 0)", "z"),))
    code, result = exercises.verify_file(path)
    assert code == 1 and result["first_divergence"].startswith(
        "forward, loss and deltas match; grad of conv1.a differs"), result


def test_a_slope_gradient_of_another_shape_summed_over_the_batch_is_named(tmp_path) -> None:
    code, result = exercises.verify_file(_file(tmp_path, "batch", (EXERCISE.bug,)))
    assert code == 1 and result["diagnosis"][0]["code"] == "prelu-slope-axis", result
    assert "the batch only" in result["diagnosis"][0]["title"]


def test_da_lists_one_expression_per_prelu_layer() -> None:
    with pytest.raises(InputError, match="lists 2 expressions for 1 layers"):
        build_adapter({**DECLARED, "da": ["back[4][0]", "back[4][1]"]}, None, "test")
    adapter = build_adapter(DECLARED, None, "test")
    assert adapter.roles["da"] == ["back[4][0]"] and adapter.to_json()["slopes"] == 1


@pytest.mark.parametrize("axes", ["every", "batch"])
def test_each_slope_mistake_changes_the_slope_gradient(axes: str) -> None:
    problem = make_problem(spec_from_dict(DECLARED["spec"]), edges=False)
    variant = slope_summed_elsewhere(problem.spec, axes)
    assert variant is not None
    from dataclasses import replace

    from nnparity.verify.mistakes import no_update

    right = reference_tensors(problem)[("grad", "conv1.a")]
    wrong = reference_tensors(replace(problem, spec=variant), no_update)[
        ("grad", "conv1.a")]
    assert np.shape(wrong) != np.shape(right)
    shared = spec_from_dict({**DECLARED["spec"], "net": [
        {**layer, "slopes": "shared"} if layer["kind"] == "prelu" else layer
        for layer in DECLARED["spec"]["net"]]})
    assert slope_summed_elsewhere(shared, axes) is None


def test_a_wrong_input_gradient_is_judged_not_an_error(tmp_path: Path) -> None:
    """The derivative hypotheses skip a PReLU (left out of a variant, its slope would vanish):
    a wrong dL/dz is a failure at the delta below, never an exit 2 from the diagnosis."""
    path = _file(tmp_path, "dz", (("dz = d * np.where(z > 0, 1.0, a)", "dz = d * (z > 0)"),))
    code, result = exercises.verify_file(path)
    assert code == 1 and "delta of conv1 differs" in result["first_divergence"], result


def test_verify_writes_the_slope_where_a_says(tmp_path: Path) -> None:
    """A model keeping its own slopes (drawn, here zeros) gets the reference's written there."""
    path = _file(tmp_path, "kept", (
        ('"forward(x, W, b, a)"', '"forward(x, W, b, SLOPES)", "a": "SLOPES[{i}]"'),
        ("LR = 0.1", "LR = 0.1\nSLOPES = [np.zeros(3)]")))
    code, result = exercises.verify_file(path)
    assert (code, result["status"]) == (0, "pass"), result
