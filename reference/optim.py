"""Optimisers: :func:`update` (in place) and :func:`step` (pure: (params, grads, state) ->
(params, state)).

Where the frameworks differ, each formulation is a named variant, so every framework's step can be
reproduced exactly (``g`` is the gradient, ``t`` the 1-based step count):

- ``sgd``:                 ``p <- p - lr g`` (``torch``), ``p <- p - lr' g`` (``keras``)
- ``momentum``, ``torch``: ``v <- mu v + g``;        ``p <- p - lr v``  (``torch.optim.SGD``)
- ``momentum``, ``keras``: ``v <- mu' v - lr' g``;   ``p <- p + v``     (``keras.optimizers.SGD``)
- ``adam``, ``torch``:     ``m <- m + (1-b1)(g-m)``; ``v <- b2 v + (1-b2) g^2``;
  ``p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``   (``torch.optim.Adam``, the paper)
- ``adam``, ``keras``:     ``m <- m + (g-m)(1-b1)``; ``v <- v + (g^2-v)(1-b2)``;
  ``alpha = lr' sqrt(1-b2'^t)/(1-b1'^t)``; ``p <- p - m alpha / (sqrt(v) + eps)``
  (``keras.optimizers.Adam``: epsilon is the paper's epsilon-hat, added to ``sqrt(v)``
  before the bias correction, so the two variants differ whenever eps matters).
- ``adamw``: decoupled weight decay on every parameter (biases included), then the ``adam``
  step of the same variant on the decayed parameters: ``p <- p (1 - lr wd)`` (``torch``,
  ``torch.optim.AdamW``), ``p <- p - p wd' lr'`` (``keras``, ``keras.optimizers.AdamW``:
  ``tf.cast`` of the Python float ``wd`` goes through a float32 tensor too). Unlike
  the model's ``weight_decay`` (``0.5 lambda W^2`` in the loss), it never enters the gradient.
  A prime marks a hyperparameter Keras (on TensorFlow) rounds to float32 even for float64
  variables: the learning rate lives in a ``floatx`` (float32) variable, and ``ops.cast`` of the
  Python floats ``momentum``, ``beta_1``, ``beta_2`` goes through a float32 tensor. ``1 - b1``,
  ``1 - b2`` and ``eps`` enter as exact Python floats. (``float32(0.9)`` is 2.6e-8 relative off.)
Defaults follow each framework: eps 1e-8 for ``torch``, 1e-7 for ``keras``.

``l2`` (``torch`` variant only) is ``torch.optim``'s own ``weight_decay`` in SGD and Adam: inside
the optimiser, ``g <- g + l2 p`` on every parameter, biases and slopes included, before the step
(the model's ``weight_decay`` decays weights only, through the loss).

**Known mistakes are parameters of these formulas** (:class:`Formula`), never copies of them:
the other variant's formulation with the hyperparameters as given (``form``, ``rounded``:
Adam's epsilon in the other place), Adam without bias correction (``bias_correction=False``:
``p <- p - lr m / (sqrt(v) + eps)``), epsilon inside the root (``eps_inside_root``:
``sqrt(v / (1 - b2^t) + eps)``), momentum stepping before the gradient is added (``momentum=
"late"``: ``p <- p - lr v; v <- mu v + g``) or averaging it (``"average"``: ``v <- mu v +
(1 - mu) g``, torch's ``dampening``; in the keras form ``v <- mu' v - lr' ((1 - mu) g)``), AdamW's
decay put into the gradient as L2 (``decoupled=False``: ``g <- g + wd p``, then Adam). The
diagnoses of ``verify`` and of users' models re-run these to confirm a mistake
(:mod:`nnparity.parity.mistaken`).

State is a flat ``dict[str, np.ndarray]`` (``"t"``, ``"m.W1"``, ``"v.W1"``, ...), so it can be
saved in an ``.npz`` checkpoint beside the params.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
ADAMS = ("adam", "adamw")  # the optimisers with Adam's state (t, m, v)
VARIANTS = ("torch", "keras")

State = dict[str, np.ndarray]
Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class Optimizer:
    """An optimiser configuration: ``name`` in ``sgd | momentum | adam | adamw``, ``variant``
    in ``torch | keras``; ``eps=None`` takes the variant's framework default; ``decay`` is
    ``adamw``'s decoupled weight decay (torch's default 0.01)."""

    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float | None = None
    variant: str = "torch"
    decay: float = 0.01
    l2: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.name!r}; known: {', '.join(OPTIMIZERS)}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; known: {', '.join(VARIANTS)}")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"learning rate must be > 0 and finite, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam betas must be in [0, 1), got {self.beta1!r}, {self.beta2!r}")
        if not self.decay >= 0:
            raise ValueError(f"decoupled weight decay must be >= 0, got {self.decay!r}")
        if not self.l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2!r}")
        if self.l2 and (self.variant != "torch" or self.name == "adamw"):
            raise ValueError("l2 (torch.optim's weight_decay in SGD and Adam) exists in the torch "
                             "variant of sgd, momentum and adam only")
        if self.eps is None:
            object.__setattr__(self, "eps", 1e-8 if self.variant == "torch" else 1e-7)
        if not 0 < self.eps < math.inf:
            raise ValueError(f"epsilon must be > 0 and finite, got {self.eps!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


MOMENTUM_FORMS = ("heavy-ball", "late", "average")


@dataclass(frozen=True)
class Formula:
    """How :func:`update` evaluates the optimiser (module docstring): the default is the
    variant's own formula; every other value is a known mistake.

    - ``form``: ``torch`` or ``keras`` formulation (None: the optimiser's variant);
    - ``rounded``: hyperparameters rounded to float32 as Keras does (None: in the keras form
      of a keras optimiser only);
    - ``bias_correction``, ``eps_inside_root``: Adam's;
    - ``momentum``: ``heavy-ball`` (the frameworks'), ``late``, ``average`` (in the keras
      form too);
    - ``decoupled``: AdamW's decay decoupled from the gradient (False: added to it as L2).
    """

    form: str | None = None
    rounded: bool | None = None
    bias_correction: bool = True
    eps_inside_root: bool = False
    momentum: str = "heavy-ball"
    decoupled: bool = True

    def __post_init__(self) -> None:
        if self.form not in (None, *VARIANTS):
            raise ValueError(f"unknown form {self.form!r}; known: {', '.join(VARIANTS)}")
        if self.momentum not in MOMENTUM_FORMS:
            raise ValueError(f"unknown momentum form {self.momentum!r}")

    def keras(self, opt: Optimizer) -> bool:
        """Whether the keras formulation is evaluated."""
        return (self.form or opt.variant) == "keras"

    def rounding(self, opt: Optimizer) -> Callable[[float], float]:
        """The hyperparameters' rounding: float32 (Keras) or none."""
        rounded = self.rounded if self.rounded is not None else (
            self.form in (None, "keras") and opt.variant == "keras")
        return _float32 if rounded else float


    def written(self, opt: Optimizer) -> tuple[str, ...]:
        """The formula :func:`update` evaluates for one parameter, written as Python statements
        (torch form only; the exports' text): over ``p``, ``g`` and the state slots ``m``, ``v``,
        the 1-based step ``t``, the constants of :func:`constants`, ``math.sqrt`` for scalars
        and ``{xp}.sqrt`` for arrays (``xp``: the array module). In the same operations and
        order as :func:`update`, so the same bits (tested)."""
        if self.keras(opt) or self.rounding(opt) is not float:
            raise ValueError("the written formula is the torch form's")
        lines = ["g = g + L2 * p"] if opt.l2 else []
        if opt.name == "sgd":
            return (*lines, "p = p - LR * g")
        if opt.name == "momentum":
            return (*lines, *{
                "heavy-ball": ("v = MOMENTUM * v + g", "p = p - LR * v"),
                "late": ("p = p - LR * v", "v = MOMENTUM * v + g"),
                "average": ("v = MOMENTUM * v + (1 - MOMENTUM) * g", "p = p - LR * v"),
            }[self.momentum])
        if opt.name == "adamw":
            lines.append("p = p * (1 - LR * DECAY)" if self.decoupled else "g = g + DECAY * p")
        correct = self.bias_correction
        lines += ["m = m + (1 - BETA1) * (g - m)", "v = BETA2 * v + (1 - BETA2) * g * g",
                  "root = math.sqrt(1 - BETA2**t)" if correct else "root = 1.0"]
        lines.append("denom = {xp}.sqrt(v / (root * root) + EPS)" if self.eps_inside_root
                     else "denom = {xp}.sqrt(v) / root + EPS")
        return (*lines, "p = p - LR / (1 - BETA1**t) * m / denom" if correct
                else "p = p - LR * m / denom")


def constants(opt: Optimizer) -> dict[str, float]:
    """The hyperparameters :meth:`Formula.written` reads, by name."""
    named = {"LR": opt.lr, "L2": opt.l2 or None,
             "MOMENTUM": opt.momentum if opt.name == "momentum" else None}
    if opt.name in ADAMS:
        named |= {"BETA1": opt.beta1, "BETA2": opt.beta2, "EPS": opt.eps,
                  "DECAY": opt.decay if opt.name == "adamw" else None}
    return {k: v for k, v in named.items() if v is not None}


def slots(opt: Optimizer) -> tuple[str, ...]:
    """The per-parameter state slots of ``opt`` (``m``, ``v``: ``m.<name>``, ``v.<name>``)."""
    return ("m", "v") if opt.name in ADAMS else ("v",) if opt.name == "momentum" else ()


VARIANT_FORMULA = Formula()


def init_state(opt: Optimizer, params: Params) -> State:
    """Zero state: nothing for sgd, ``v.*`` for momentum, ``t, m.*, v.*`` for adam."""
    state: State = {}
    if opt.name in ADAMS:
        state["t"] = np.array(0)
        for k, p in params.items():
            state[f"m.{k}"] = np.zeros_like(p)
            state[f"v.{k}"] = np.zeros_like(p)
    elif opt.name == "momentum":
        for k, p in params.items():
            state[f"v.{k}"] = np.zeros_like(p)
    return state


def step(opt: Optimizer, params: Params, grads: Params, state: State,
         formula: Formula = VARIANT_FORMULA) -> tuple[Params, State]:
    """One update; returns new dicts and leaves the inputs untouched (:func:`update` on
    copies)."""
    new_params = {k: np.array(p, dtype=np.result_type(p, grads[k])) for k, p in params.items()}
    new_state = {k: np.array(v) for k, v in state.items()}
    update(opt, new_params, grads, new_state, formula)
    return new_params, new_state


def update(opt: Optimizer, params: Params, grads: Params, state: State,
           formula: Formula = VARIANT_FORMULA) -> None:
    """One update in place: the arrays of ``params`` and ``state`` are overwritten (``t`` is
    replaced). Every formula is evaluated in the order written in the module docstring, so the
    result is the same to the bit as computing new arrays; ``formula`` picks a known mistake
    (:class:`Formula`)."""
    if opt.l2:
        grads = {k: g + opt.l2 * params[k] for k, g in grads.items()}
    if opt.name == "sgd":
        lr = formula.rounding(opt)(opt.lr)
        for k, p in params.items():
            p -= lr * grads[k]
    elif opt.name == "momentum":
        _momentum(opt, params, grads, state, formula)
    else:
        if opt.name == "adamw" and formula.decoupled:
            _decoupled_decay(opt, params, formula)
        elif opt.name == "adamw":  # the decay as L2 in the gradient: a mistake
            grads = {k: g + opt.decay * params[k] for k, g in grads.items()}
        _adam(opt, params, grads, state, formula)


def _decoupled_decay(opt: Optimizer, params: Params, formula: Formula) -> None:
    """AdamW's decay of every parameter before its Adam step (module docstring), in place."""
    rounding = formula.rounding(opt)
    lr, decay = rounding(opt.lr), rounding(opt.decay)
    for p in params.values():
        if not formula.keras(opt):
            p *= 1 - opt.lr * opt.decay
        else:
            p -= p * decay * lr


def _float32(value: float) -> float:
    """``value`` rounded to float32, as Keras on TensorFlow stores or casts hyperparameters."""
    return float(np.float32(value))


def _momentum(opt: Optimizer, params: Params, grads: Params, state: State,
              formula: Formula) -> None:
    rounding = formula.rounding(opt)
    mu_keras, lr_keras = rounding(opt.momentum), rounding(opt.lr)
    for k, p in params.items():
        v = state[f"v.{k}"]
        if formula.momentum == "late":  # p <- p - lr v; v <- mu v + g
            p -= opt.lr * v
            v *= opt.momentum
            v += grads[k]
        elif formula.momentum == "average" and formula.keras(opt):  # v <- mu' v - lr' (1 - mu) g
            v *= mu_keras
            v -= lr_keras * ((1 - opt.momentum) * grads[k])
            p += v
        elif formula.momentum == "average":  # v <- mu v + (1 - mu) g; p <- p - lr v
            v *= opt.momentum
            v += (1 - opt.momentum) * grads[k]
            p -= opt.lr * v
        elif not formula.keras(opt):
            v *= opt.momentum  # v <- mu v + g
            v += grads[k]
            p -= opt.lr * v
        else:
            v *= mu_keras  # v <- mu' v - lr' g
            v -= lr_keras * grads[k]
            p += v


ADAM_CHUNK = 1 << 16
"""Elements :func:`_adam` updates at a time: the chunk's ``p, g, m, v`` and two scratch buffers
(float32: 1.5 MiB) stay in cache through the dozen passes of the formulas, instead of streaming
the notes' CNN's 3.2 M fc1 weights (12.8 MB per array) through memory once per pass."""


def _chunks(*arrays: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Matching flat slices of same-shaped ``arrays``, ``ADAM_CHUNK`` elements at a time (views,
    so updating a slice updates its array); one whole-array chunk when any is not C-contiguous."""
    if not all(a.flags.c_contiguous for a in arrays):
        return [arrays]
    flat = [a.reshape(-1) for a in arrays]
    starts = range(0, max(flat[0].size, 1), ADAM_CHUNK)  # an empty array: one empty chunk
    return [tuple(a[i:i + ADAM_CHUNK] for a in flat) for i in starts]


def _adam(opt: Optimizer, params: Params, grads: Params, state: State,
          formula: Formula) -> None:
    """Adam in place, chunk by chunk (:data:`ADAM_CHUNK`), each formula as written in the module
    docstring but through two scratch buffers (``out=``): elementwise, so the result is the same
    to the bit as evaluating the formulas on whole arrays. Intermediates take the common dtype of
    ``p, g, m, v`` (the dtype of the whole-array temporaries when the four share one)."""
    t = int(state["t"]) + 1
    b1, b2 = opt.beta1, opt.beta2
    state["t"] = np.array(t)
    keras, correct, rounding = formula.keras(opt), formula.bias_correction, formula.rounding(opt)
    if not keras:  # rounding: only where a mistake asks for Keras' hyperparameters here
        step_size = rounding(opt.lr) / (1 - rounding(b1)**t) if correct else rounding(opt.lr)
        root = math.sqrt(1 - rounding(b2)**t) if correct else 1.0
    else:
        b1_keras, b2_keras = rounding(b1), rounding(b2)
        alpha = rounding(opt.lr) * math.sqrt(1 - b2_keras**t) / (1 - b1_keras**t) \
            if correct else rounding(opt.lr)
    for k, p_all in params.items():
        arrays = (p_all, grads[k], state[f"m.{k}"], state[f"v.{k}"])
        chunks = _chunks(*arrays)
        work = np.empty(max(c[0].size for c in chunks), np.result_type(*arrays))
        upd = np.empty_like(work)
        for p, g, m, v in chunks:
            w, u = work[:m.size].reshape(m.shape), upd[:m.size].reshape(m.shape)
            if not keras:
                np.subtract(g, m, out=w)  # m <- m + (1 - b1) (g - m)
                w *= 1 - b1
                m += w
                v *= b2  # v <- b2 v + (1 - b2) g^2
                np.multiply(g, 1 - b2, out=w)
                w *= g
                v += w
                if formula.eps_inside_root:  # denom = sqrt(v / (1 - b2^t) + eps): a mistake
                    np.divide(v, root * root, out=w)
                    w += opt.eps
                    np.sqrt(w, out=w)
                else:
                    np.sqrt(v, out=w)  # denom = sqrt(v) / sqrt(1 - b2^t) + eps
                    w /= root
                    w += opt.eps
                np.multiply(m, step_size, out=u)  # p <- p - step_size m / denom
                u /= w
                p -= u
            else:
                np.subtract(g, m, out=w)  # m <- m + (g - m)(1 - b1)
                w *= 1 - b1
                m += w
                np.multiply(g, g, out=w)  # v <- v + (g^2 - v)(1 - b2)
                w -= v
                w *= 1 - b2
                v += w
                np.multiply(m, alpha, out=u)  # p <- p - m alpha / (sqrt(v) + eps)
                np.sqrt(v, out=w)
                w += opt.eps
                u /= w
                p -= u
