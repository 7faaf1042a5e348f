"""Bugs planted into the teaching page's CNN exercises (their solutions, by text substitution),
beside each exercise's own planted bug: the classic mistakes of GELU, the average pools,
dropout and PReLU, each with the diagnosis verify must name. Imported by the tests beside this
file; ``test_verify_examples.py`` counts their codes as diagnoses with an example."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from nnparity.teach import cnn_exercises


@dataclass(frozen=True)
class ExerciseBug:
    """Exercise ``key``'s solution with each ``(old, new)`` of ``edits`` applied (every
    occurrence; each must occur), its layer list's ``layer`` entry updated by ``declare`` (the
    declaration changed instead of the code); verify must name ``code``."""

    key: str
    edits: tuple[tuple[str, str], ...]
    code: str
    layer: int = 0
    declare: tuple[tuple[str, object], ...] = ()

    def exercise(self) -> cnn_exercises.CNNExercise:
        """The exercise as this bug's file declares it."""
        exercise = cnn_exercises.BY_KEY[self.key]
        if not self.declare:
            return exercise
        net = [dict(layer) for layer in exercise.net]
        net[self.layer].update(self.declare)
        return replace(exercise, net=tuple(net))

    def write(self, folder: Path, name: str) -> Path:
        """The faulty file ``<name>.py`` in ``folder``."""
        text = cnn_exercises.source(self.exercise(), "solution")
        for old, new in self.edits:
            assert old in text, f"{self.key}: {old!r} not found"
            text = text.replace(old, new)
        path = folder / f"{name}.py"
        path.write_text(text)
        return path


AVGPOOL_LAYER = 2  # the exercise's average pool in its layer list

BUGS = {
    "gelu_exact_without_pdf_term": ExerciseBug(
        "gelu", (("return d * (cdf + z * pdf)", "return d * cdf"),), "gelu-pdf-term"),
    "gelu_exact_where_tanh_declared": ExerciseBug(
        "gelu-tanh", (("return 0.5 * z * (1 + t)",
                       "return 0.5 * z * (1 + erf(z / np.sqrt(2)))"),), "gelu-form"),
    "avgpool_valid_undivided": ExerciseBug(
        "avgpool", (("/ real[:, rows, cols].sum()\n    return dap", "\n    return dap"),),
        "avgpool-undivided", AVGPOOL_LAYER, (("padding", "valid"),)),
    "avgpool_padding_counted": ExerciseBug(
        "avgpool", (("/ real[:, rows, cols].sum()", "/ size**2"),), "avgpool-count-pad"),
    "avgpool_padding_not_counted_where_declared": ExerciseBug(
        "avgpool", (), "avgpool-count-pad", AVGPOOL_LAYER, (("count_include_pad", True),)),
    "dropout_not_applied": ExerciseBug(
        "dropout", (("return h * mask / keep_prob", "return h"),
                    ("return d * mask / keep_prob", "return d")), "dropout-missing"),
    "dropout_backward_without_mask": ExerciseBug(
        "dropout", (("return d * mask / keep_prob", "return d / keep_prob"),),
        "dropout-backward-mask"),
    "dropout_unscaled_both_ways": ExerciseBug(
        "dropout", (("return h * mask / keep_prob", "return h * mask"),
                    ("return d * mask / keep_prob", "return d * mask")), "dropout-scale"),
    "prelu_slope_summed_over_every_axis": ExerciseBug(
        "prelu", (("axis=(0, 1, 2))", "axis=(0, 1, 2, 3))"),), "prelu-slope-axis"),
}
