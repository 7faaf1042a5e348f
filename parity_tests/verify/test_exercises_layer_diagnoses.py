"""verify takes a learner's network with GELU (exact or tanh, as declared), an average pool (VALID
or SAME, ``count_include_pad`` as declared) and a global average pool, and names each one's
classic mistake, confirmed by the reference re-run with the mistake built in
(:mod:`nnparity.verify.layer_mistakes`), and dropout's, whose masks it hands over
(:mod:`nnparity.verify.dropout_masks`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from exercise_bugs import AVGPOOL_LAYER, BUGS, ExerciseBug

from nnparity.reference.family import Spec, spec_from_dict
from nnparity.teach import cnn_exercises, exercises
from nnparity.verify import dropout_masks, layer_mistakes
from nnparity.verify.diagnose import CODES, HYPOTHESES, LAYER_MISTAKES
from nnparity.verify.problem import make_problem, reference_tensors


@pytest.mark.parametrize("name", sorted(BUGS))
def test_each_layer_mistake_is_named(name: str, tmp_path: Path) -> None:
    bug = BUGS[name]
    code, result = exercises.verify_file(bug.write(tmp_path, name))
    assert code == 1 and result["status"] == "fail", result
    assert result["diagnosis"], result["first_divergence"]
    assert result["diagnosis"][0]["code"] == bug.code, result["diagnosis"]
    assert "reproduces your" in result["diagnosis"][0]["evidence"]


@pytest.mark.parametrize(("padding", "counted"), [("valid", False), ("same", True)])
def test_an_average_pool_passes_as_declared(padding: str, counted: bool, tmp_path: Path) -> None:
    """The VALID pool, and a SAME pool declared to count its padding whose code divides by
    k * k, pass: verify checks the pool the declaration names."""
    edits = (("/ real[:, rows, cols].sum()", "/ size**2"),) if counted else ()
    bug = ExerciseBug("avgpool", edits, "", AVGPOOL_LAYER,
                      (("padding", padding), ("count_include_pad", counted)))
    code, result = exercises.verify_file(bug.write(tmp_path, f"{padding}_{counted}"))
    assert (code, result["status"], result["diagnosis"]) == (0, "pass", []), result


def _spec(exercise_key: str) -> Spec:
    return spec_from_dict(cnn_exercises.BY_KEY[exercise_key].declaration()["spec"])


@pytest.mark.parametrize(("build", "key"), [
    (layer_mistakes.gelu_without_pdf, "gelu"),
    (layer_mistakes.gelu_without_pdf, "gelu-tanh"),
    (layer_mistakes.gelu_other_form, "gelu"),
    (layer_mistakes.avgpool_undivided, "avgpool"),
    (layer_mistakes.avgpool_other_count, "avgpool"),
    (layer_mistakes.global_avgpool_undivided, "global-avgpool"),
    (dropout_masks.without_dropout, "dropout"),
    (dropout_masks.unscaled, "dropout"),
    (dropout_masks.unmasked_backward, "dropout"),
])
def test_each_mistake_changes_the_reference(build, key: str) -> None:
    """A variant equal to the reference would confirm any tensor: each differs on its
    exercise's problem, in the backward pass at least."""
    problem = make_problem(_spec(key), edges=False)
    variant = build(problem.spec)
    assert variant is not None
    right = reference_tensors(problem)
    wrong = reference_tensors(replace(problem, spec=variant))
    assert not np.allclose(right[("delta", "conv1")], wrong[("delta", "conv1")])


def test_a_network_without_the_layer_has_no_variant() -> None:
    spec = _spec("flatten")
    for build in (layer_mistakes.gelu_without_pdf, layer_mistakes.gelu_other_form,
                  layer_mistakes.avgpool_undivided, layer_mistakes.avgpool_other_count,
                  layer_mistakes.global_avgpool_undivided, dropout_masks.without_dropout,
                  dropout_masks.unscaled, dropout_masks.unmasked_backward):
        assert build(make_problem(spec).spec) is None


def test_a_valid_pool_has_no_count_variant() -> None:
    """Without padding both counts agree: no ``avgpool-count-pad`` to confirm."""
    bug = ExerciseBug("avgpool", (), "", AVGPOOL_LAYER, (("padding", "valid"),))
    spec = spec_from_dict(bug.exercise().declaration()["spec"])
    assert layer_mistakes.avgpool_other_count(spec) is None


def test_the_layer_mistakes_are_listed_and_tried_before_the_generic_factor() -> None:
    for mistake in LAYER_MISTAKES:
        assert mistake.code in CODES
        assert HYPOTHESES.index(mistake) < HYPOTHESES.index(
            next(h for h in HYPOTHESES if getattr(h, "__name__", "") == "constant_factor"))
