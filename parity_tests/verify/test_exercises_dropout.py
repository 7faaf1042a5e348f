"""verify checks a learner's dropout: it draws each dropout layer's mask (seeded, the same on the
generic and the edge-case batch), hands it to the learner's code (``mask1``, ``masks``), applies
it in the reference (its classic mistakes are named: ``exercise_bugs.py``, asserted in
``test_exercises_layer_diagnoses.py``); the frameworks are skipped with the reason (their
training steps draw their own masks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnparity.backends.compare import REORDERED_FLOAT64
from nnparity.cli import main
from nnparity.reference.family import spec_from_dict
from nnparity.teach import cnn_exercises, exercises
from nnparity.verify.dropout_masks import BACKENDS_SKIPPED, MaskedSpec, masks_of
from nnparity.verify.problem import make_problem, reference_tensors

EXERCISE = cnn_exercises.BY_KEY["dropout"]
SPEC = EXERCISE.declaration()["spec"]


def _file(folder: Path, name: str, edits: tuple[tuple[str, str], ...] = ()) -> Path:
    text = cnn_exercises.source(EXERCISE, "solution")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = folder / f"{name}.py"
    path.write_text(text)
    return path


def test_the_masks_are_handed_over_by_name_and_in_a_list(tmp_path: Path) -> None:
    """``mask1`` is ``masks[0]``: a declaration handing it over by name passes too."""
    path = _file(tmp_path, "by_name",
                 (('"forward(x, W, b, masks)"', '"forward(x, W, b, [mask1])"'),))
    status, result = exercises.verify_file(path)
    assert (status, result["status"]) == (0, "pass"), result


def test_the_masks_are_seeded_shared_by_both_batches_and_drop_units() -> None:
    spec = spec_from_dict(SPEC)
    generic, edge = (make_problem(spec, seed=3, edges=e) for e in (False, True))
    assert isinstance(generic.spec, MaskedSpec)
    (mask,) = masks_of(generic.spec)
    np.testing.assert_array_equal(mask, masks_of(edge.spec)[0])
    assert mask.shape == (5, 36) and set(np.unique(mask)) == {0.0, 1.0}
    assert not np.array_equal(mask, masks_of(make_problem(spec, seed=4).spec)[0])
    plain = make_problem(spec_from_dict({**SPEC, "net": [
        layer for layer in SPEC["net"] if layer["kind"] != "dropout"]}), seed=3, edges=False)
    assert masks_of(plain.spec) == [] and not isinstance(plain.spec, MaskedSpec)
    # the batch and weights are drawn as without dropout
    np.testing.assert_array_equal(generic.x, plain.x)


def test_the_reference_applies_the_mask_and_the_spec_changes_keep_it() -> None:
    problem = make_problem(spec_from_dict(SPEC), edges=False)
    (mask,) = masks_of(problem.spec)
    tensors = reference_tensors(problem)
    dropped = tensors[("forward", "h.dropout1")]
    np.testing.assert_array_equal(dropped == 0, (mask == 0) | (dropped == 0))
    kept = mask == 1
    np.testing.assert_allclose(dropped[kept], 2 * tensors[("forward", "h.flatten1")][kept])
    other = problem.spec.with_(reduction="mean")
    assert isinstance(other, MaskedSpec) and masks_of(other)[0] is mask


def test_the_frameworks_are_skipped_with_the_reason(tmp_path: Path, capsys) -> None:
    path = _file(tmp_path, "solution")
    assert main(["verify", str(path), "--sandbox", "off"]) == 0
    out = capsys.readouterr().out
    assert f"torch: skipped ({BACKENDS_SKIPPED})" in out


def test_golden_vectors_stay_the_evaluation_pass(tmp_path: Path) -> None:
    """A vector holds no mask: its tensors are the network's without dropout, as they read
    back (a masked reference would write tensors no program could reproduce)."""
    from nnparity.verify.vectors import export, load_vector

    export(tmp_path, {"v": spec_from_dict(SPEC)}, 0, 5, 0.1)
    vector = load_vector(tmp_path, "v")
    assert not isinstance(vector.problem.spec, MaskedSpec)
    fresh = reference_tensors(vector.problem)
    for key, value in vector.expected.items():
        np.testing.assert_allclose(value, fresh[key], rtol=REORDERED_FLOAT64,
                                   atol=REORDERED_FLOAT64)
