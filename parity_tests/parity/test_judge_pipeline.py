"""The one judge (:mod:`nnparity.parity.judge`): its runner records what the parity matrix and
users'
models compare, with the masks it is given, and its verdict is the tolerance table's."""

from __future__ import annotations

import numpy as np

from nnparity.backends import registry
from nnparity.backends.compare import tolerance_for
from nnparity.parity.judge import judge, lockstep, run
from nnparity.reference import MLPSpec, Optimizer
from nnparity.reference.dropout import draw_dropout_mask
from nnparity.reference.family import init_params

SPEC = MLPSpec(3, (4, 2), ("tanh", "identity"), "ce", keep_prob=0.5, dropout_after=(1,))
OPT = Optimizer("momentum", lr=0.1)


def _data(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    return [(rng.standard_normal((4, 3)), rng.integers(0, 2, 4)) for _ in range(count)]


def test_lockstep_records_every_loss_and_the_kept_params() -> None:
    losses, params = iter([3.0, 2.0, 1.0]), {"W1": np.ones(2)}
    updates = lockstep(lambda x, y: next(losses), lambda: params, _data(3), keep={1, 3})
    assert [label for label, _ in updates] == ["step1", "step2", "step3"]
    assert [list(u) for _, u in updates] == [["W1", "loss"], ["loss"], ["W1", "loss"]]
    assert [float(u["loss"]) for _, u in updates] == [3.0, 2.0, 1.0]
    assert updates[0][1]["W1"] is not params["W1"]  # a copy, not the trainer's array


def test_run_steps_with_the_masks_given_and_keeps_what_is_asked() -> None:
    reference, params, data = registry.get("numpy"), init_params(SPEC, seed=1), _data(3)
    rng = np.random.default_rng(9)
    masks = [draw_dropout_mask(SPEC, 4, rng) for _ in data]
    got = run(reference, SPEC, params, data, OPT, dropout_mask=masks[0], step_masks=masks,
              keep=range(1, 4), state=False).tensors
    trainer = reference.trainer(SPEC, params, OPT)
    for i, ((x, y), mask) in enumerate(zip(data, masks, strict=True), 1):
        loss = trainer.step(x, y, dropout_mask=mask)
        assert got[("update", f"step{i}.loss")] == loss
        for k, v in trainer.params().items():
            assert np.array_equal(got[("update", f"step{i}.{k}")], v)
    assert not any(name.startswith("state") for _, name in got)
    drawn = run(reference, SPEC, params, data, OPT).tensors  # the trainer's own masks
    assert ("update", "step2.W1") not in drawn and ("update", "state3.v.W1") in drawn
    assert not np.array_equal(drawn[("update", "step3.W1")], got[("update", "step3.W1")])


def test_judge_is_the_tolerance_tables_verdict() -> None:
    reference, params, data = registry.get("numpy"), init_params(SPEC, seed=1), _data(2)
    mask = draw_dropout_mask(SPEC, 4, np.random.default_rng(2))
    expected = run(reference, SPEC, params, data, OPT, dropout_mask=mask).tensors
    tol = tolerance_for(SPEC)
    off = {k: v * (1 + (10 * tol if k == ("grad", "W1") else 0)) for k, v in expected.items()}
    judged = judge(SPEC, params, data[0], mask, off, expected, OPT)
    assert [c.name for c in judged.comparisons if not c.passed] == ["W1"]
    assert judged.kinks == 0
    assert all(c.tol == tol for c in judged.comparisons)
