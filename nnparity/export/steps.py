"""The optimiser step written into the NumPy and JAX exports (the ``torch`` formulas, which are
also optax's): state is flat, ``t``, ``v.<name>``, ``m.<name>``, as the reference keeps it."""

from __future__ import annotations

from nnparity.reference.optim import Optimizer

STEPS = {
    "sgd": '''def init_state(params):
    """SGD keeps no state."""
    return {{}}


def step(params, state, grads):
    """One SGD step: p <- p - lr g."""
    return {{k: p - LR * grads[k] for k, p in params.items()}}, state''',
    "momentum": '''def init_state(params):
    """Zero velocities, one per parameter."""
    return {{f"v.{{k}}": {xp}.zeros_like(p) for k, p in params.items()}}


def step(params, state, grads):
    """One momentum step, torch's formula: v <- mu v + g; p <- p - lr v."""
    new_params, new_state = {{}}, {{}}
    for k, p in params.items():
        v = MOMENTUM * state[f"v.{{k}}"] + grads[k]
        new_params[k], new_state[f"v.{{k}}"] = p - LR * v, v
    return new_params, new_state''',
    "adam": '''def init_state(params):
    """Step count 0 and zero moments."""
    state = {{"t": 0}}
    for k, p in params.items():
        state[f"m.{{k}}"], state[f"v.{{k}}"] = {xp}.zeros_like(p), {xp}.zeros_like(p)
    return state


def step(params, state, grads):
    """One Adam step, the paper's (torch's) formula: epsilon after the bias correction."""
    t = state["t"] + 1
    new_params, new_state = {{}}, {{"t": t}}
    for k, p in params.items():
        g = grads[k]
        m = state[f"m.{{k}}"] + (1 - BETA1) * (g - state[f"m.{{k}}"])
        v = BETA2 * state[f"v.{{k}}"] + (1 - BETA2) * g * g
        denom = {xp}.sqrt(v) / math.sqrt(1 - BETA2**t) + EPS
        new_params[k] = p - LR / (1 - BETA1**t) * m / denom
        new_state[f"m.{{k}}"], new_state[f"v.{{k}}"] = m, v
    return new_params, new_state''',
}


def hyperparameters(opt: Optimizer) -> str:
    """The constants the step reads."""
    lines = [f"LR = {opt.lr!r}"]
    if opt.name == "momentum":
        lines.append(f"MOMENTUM = {opt.momentum!r}")
    if opt.name == "adam":
        lines += [f"BETA1 = {opt.beta1!r}", f"BETA2 = {opt.beta2!r}", f"EPS = {opt.eps!r}"]
    return "\n".join(lines)


def step_source(opt: Optimizer, xp: str) -> str:
    """``init_state`` and ``step`` for ``opt`` over the array module named ``xp``."""
    return STEPS[opt.name].format(xp=xp)
