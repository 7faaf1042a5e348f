"""The optimiser formula written once: :meth:`Formula.written` (the text the exports carry) run
as Python gives :func:`optim.update`'s bits, for every optimiser and every known mistake of the
torch form, in both dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnparity.reference.optim import (
    OPTIMIZERS,
    Formula,
    Optimizer,
    constants,
    init_state,
    slots,
    step,
)

FORMULAS = {"variant": Formula(), "no-bias-correction": Formula(bias_correction=False),
            "eps-inside-root": Formula(eps_inside_root=True),
            "momentum-late": Formula(momentum="late"),
            "momentum-average": Formula(momentum="average")}


def _written_steps(opt: Optimizer, formula: Formula, params: dict, grads: list[dict]) -> dict:
    """The written statements run per parameter, state as the exports keep it."""
    code = compile("\n".join(formula.written(opt)).format(xp="np"), "<written>", "exec")
    state = {f"{slot}.{k}": np.zeros_like(p) for k, p in params.items() for slot in slots(opt)}
    for t, g in enumerate(grads, 1):
        new = {}
        for k, p in params.items():
            scope = {"np": np, "math": math, "t": t, "p": p, "g": g[k], **constants(opt),
                     **{slot: state[f"{slot}.{k}"] for slot in slots(opt)}}
            exec(code, scope)  # our own formula text
            new[k] = scope["p"]
            state |= {f"{slot}.{k}": scope[slot] for slot in slots(opt)}
        params = new
    return params


# l2 (torch.optim's weight_decay) exists in sgd, momentum and adam only
CONFIGURATIONS = [(name, l2) for name in OPTIMIZERS for l2 in (0.0, 0.05)
                  if not (l2 and name == "adamw")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mistake", FORMULAS)
@pytest.mark.parametrize(("name", "l2"), CONFIGURATIONS)
def test_written_formula_is_update_to_the_bit(name: str, l2: float, mistake: str,
                                              dtype: str) -> None:
    opt = Optimizer(name, lr=0.05, eps=1e-3, l2=l2)
    formula = FORMULAS[mistake]
    rng = np.random.default_rng(7)
    params = {"W1": rng.standard_normal((3, 4)).astype(dtype),
              "b1": rng.standard_normal((1, 4)).astype(dtype)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()}
             for _ in range(3)]
    expected, state = params, init_state(opt, params)
    for g in grads:
        expected, state = step(opt, expected, g, state, formula)
    actual = _written_steps(opt, formula, params, grads)
    for k in params:
        assert actual[k].dtype == expected[k].dtype
        assert np.array_equal(actual[k], expected[k]), f"{name} {mistake} {k}"


def test_only_the_torch_form_is_written() -> None:
    with pytest.raises(ValueError, match="torch form"):
        Formula().written(Optimizer("adam", variant="keras"))
    with pytest.raises(ValueError, match="torch form"):
        Formula(form="keras").written(Optimizer("momentum"))
