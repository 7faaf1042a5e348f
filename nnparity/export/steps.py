"""The optimiser step written into the NumPy and JAX exports: the reference's own formula
(:meth:`reference.optim.Formula.written`, the ``torch`` form, which is also optax's) in a loop
over the parameters; state is flat, ``t``, ``m.<name>``, ``v.<name>``, as the reference keeps
it."""

from __future__ import annotations

from nnparity.files.escape import python_string
from nnparity.reference.optim import VARIANT_FORMULA, Optimizer, constants, slots

INDENT = " " * 8


def hyperparameters(opt: Optimizer) -> str:
    """The constants the step reads."""
    return "\n".join(f"{name} = {value!r}" for name, value in constants(opt).items())


INIT_DOCS = {(): "SGD keeps no state.", ("v",): "Zero velocities, one per parameter.",
             ("m", "v"): "Step count 0 and zero moments."}


def _init_state(names: tuple[str, ...], xp: str) -> str:
    lines = ["def init_state(params):", f'    """{INIT_DOCS[names]}"""']
    if not names:
        return "\n".join([*lines, "    return {}"])
    lines += ['    state = {"t": 0}' if "m" in names else "    state = {}",
              "    for k, p in params.items():"]
    lines += [f'        state[f"{slot}.{{k}}"] = {xp}.zeros_like(p)' for slot in names]
    return "\n".join([*lines, "    return state"])


def step_source(opt: Optimizer, xp: str) -> str:
    """``init_state`` and ``step`` for ``opt`` over the array module named ``xp``."""
    names = slots(opt)
    formula = [line.format(xp=xp) for line in VARIANT_FORMULA.written(opt)]
    counted = "m" in names
    state_keys = ", ".join(f'state[f"{slot}.{{k}}"]' for slot in names)
    new_keys = ", ".join(f'new_state[f"{slot}.{{k}}"]' for slot in names)
    lines = ["def step(params, state, grads):",
             f'    """One {opt.name} step: the reference\'s formula (torch\'s, also optax\'s)."""']
    if counted:
        lines.append('    t = state["t"] + 1')
    lines.append('    new_params, new_state = {}, {"t": t}' if counted
                 else "    new_params, new_state = {}, {}")
    lines += ["    for k, p in params.items():", f"{INDENT}g = grads[k]"]
    if names:
        lines.append(f"{INDENT}{', '.join(names)} = {state_keys}")
    lines += [INDENT + line for line in formula]
    lines.append(f"{INDENT}new_params[k] = p")
    if names:
        lines.append(f"{INDENT}{new_keys} = {', '.join(names)}")
    lines.append("    return new_params, new_state")
    return _init_state(names, xp) + "\n\n\n" + "\n".join(lines)


TRAIN_STEP = '''def train_step(params, state, x, y, mask=None):
    """(loss, params, state) after one training step: the optimiser's step on the TRAINABLE
    parameters, the running statistics replaced by the ones the training pass left (state
    from init_state of the trainable parameters)."""
    value, grads, running = gradients(params, x, y, mask)
    trained, state = step({k: params[k] for k in TRAINABLE}, state, grads)
    return value, {**params, **trained, **running}, state'''
"""The training step of a file with running statistics (batch normalisation): ``gradients``
returns ``(loss, grads, running)``, grads of the ``TRAINABLE`` parameters only."""


def trainable_constant(names: list[str]) -> str:
    """``TRAINABLE = (...)``: the parameters an optimiser updates (SHAPES less the state)."""
    return f"TRAINABLE = ({''.join(f'{python_string(n)}, ' for n in names)})"


def demo_step(stateful: bool, xp: str) -> str:
    """The ``__main__`` demo's training step (``params``, ``x``, ``y`` given), over the array
    module ``xp``: with running statistics they start at mean 0, variance 1."""
    if not stateful:
        return ("    value, grads = gradients(params, x, y)\n"
                "    params, state = step(params, init_state(params), grads)\n")
    return ("    for k in set(SHAPES) - set(TRAINABLE):  # running mean 0, variance 1\n"
            f'        params[k] = {xp}.full(SHAPES[k], 1.0 if k.endswith(".var") else 0.0, '
            "DTYPE)\n"
            "    state = init_state({k: params[k] for k in TRAINABLE})\n"
            "    value, params, state = train_step(params, state, x, y)\n")
