"""The traps, each with live numbers: the page shows each function's source and its table.

A trap's ``run(modules)`` receives the framework block modules that could be loaded (by
framework key) and returns a :class:`Table`; a trap that needs a missing framework says so in a
row instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from nnparity.backends.compare import compare_tensor
from nnparity.reference import activations, conv, optim, pool

from .measure import FRAMEWORKS, call


@dataclass(frozen=True)
class Table:
    """A small table: column headers and rows of cells (strings)."""

    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]


Modules = dict[str, ModuleType]


def rel(actual: np.ndarray, expected: np.ndarray) -> float:
    """Max relative error of ``actual`` against ``expected`` (the comparison table's rule)."""
    return compare_tensor("trap", "x", np.asarray(actual), np.asarray(expected), 0.0).max_rel


def flatten_permutation(modules: Modules) -> Table:
    """A dense layer after an NHWC feature map, run by torch on NCHW with and without
    permuting the weight's rows."""
    if "torch" not in modules:
        return Table(("torch",), [("not installed",)])
    import torch

    rng = np.random.default_rng(12)
    x, W = rng.standard_normal((4, 2, 3, 5)), rng.standard_normal((30, 3))
    expected = x.reshape(4, -1) @ W  # the reference: NHWC flatten
    flat = torch.flatten(torch.from_numpy(x).permute(0, 3, 1, 2), 1)  # torch: NCHW flatten
    order = np.arange(30).reshape(2, 3, 5).transpose(2, 0, 1).reshape(-1)
    plain = (flat @ torch.from_numpy(W)).numpy()  # W.T copied into nn.Linear as it is
    permuted = (flat @ torch.from_numpy(W[order])).numpy()
    return Table(("fc weight rows", "max rel error of z"),
                 [("copied as they are (a plain reshape)", f"{rel(plain, expected):.1e}"),
                  ("permuted to NCHW order", f"{rel(permuted, expected):.1e}")])


def same_padding(modules: Modules) -> Table:
    """TensorFlow's SAME against torch's symmetric ``padding=k // 2``, 8x8 input, stride 2."""
    if "torch" not in modules:
        return Table(("torch",), [("not installed",)])
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(13)
    x, k = rng.standard_normal((2, 8, 8, 3)), rng.standard_normal((3, 3, 3, 4))
    expected = conv.conv2d(x, k, None, stride=2, padding="SAME")
    xt, kt = torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(k).permute(3, 2, 0, 1)
    pads = conv.padding_amounts((8, 8), (3, 3), 2, "SAME")  # ((0, 1), (0, 1))
    symmetric = F.conv2d(xt, kt, stride=2, padding=1).permute(0, 2, 3, 1).numpy()
    explicit = F.conv2d(F.pad(xt, (*pads[1], *pads[0])), kt, stride=2).permute(0, 2, 3, 1)
    return Table(("torch padding", "(top, bottom), (left, right)", "output", "max rel error"),
                 [("padding=1 (symmetric)", "(1, 1), (1, 1)", str(symmetric.shape[1:3]),
                   f"{rel(symmetric, expected):.1e}"),
                  ("F.pad with TensorFlow's amounts", str(pads), str(tuple(explicit.shape[1:3])),
                   f"{rel(explicit.numpy(), expected):.1e}")])


def adam_epsilon(modules: Modules) -> Table:
    """The two Adam formulas from the same start and the same gradients, step by step."""
    rng = np.random.default_rng(14)
    start = {"W": rng.standard_normal((5, 4))}
    grads = [{"W": 1e-3 * rng.standard_normal((5, 4))} for _ in range(10)]  # small: eps matters

    def run(variant: str, eps: float | None) -> list[np.ndarray]:
        opt = optim.Optimizer("adam", lr=1e-3, eps=eps, variant=variant)
        params, state, path = start, optim.init_state(opt, start), []
        for g in grads:
            params, state = optim.step(opt, params, g, state)
            path.append(params["W"] - start["W"])  # how far each has moved
        return path

    torch_default, keras_default = run("torch", None), run("keras", None)
    torch_same, keras_same = run("torch", 1e-7), run("keras", 1e-7)
    return Table(("step", "defaults (1e-8 vs 1e-7): max rel gap", "both eps 1e-7: max rel gap"),
                 [(str(t + 1), f"{rel(keras_default[t], torch_default[t]):.2e}",
                   f"{rel(keras_same[t], torch_same[t]):.2e}") for t in range(10)])


def relu_at_zero(modules: Modules) -> Table:
    """relu'(0) as each framework's autodiff computes it."""
    z, dh = np.array([[-1.0, 0.0, 2.0]]), np.ones((1, 3))
    rows = [("reference (the BP lecture)", f"{activations.relu_grad(z, z)[0, 1]:g}"),
            ("the NumPy blog", "1")]
    for framework in FRAMEWORKS:
        module = modules.get(framework.key)
        value = f"{call(module, 'relu', z=z, dh=dh)['dz'][0, 1]:g}" if module else \
            "not installed"
        rows.append((framework.title, value))
    return Table(("who", "relu'(0)"), rows)


def pool_ties(modules: Modules) -> Table:
    """A 2x2 window of four equal values: which cell receives the gradient."""
    x, dy = np.ones((1, 2, 2, 1)), np.ones((1, 1, 1, 1))
    cells = ["(0, 0)", "(0, 1)", "(1, 0)", "(1, 1)"]

    def receiver(dx: np.ndarray) -> str:
        return ", ".join(cells[i] for i in np.flatnonzero(dx.reshape(-1))) or "none"

    rows = [("reference", receiver(pool.maxpool2d_backward(dy, x, 2, 2, "VALID")))]
    for framework in FRAMEWORKS:
        module = modules.get(framework.key)
        got = receiver(call(module, "maxpool2d", x=x, dy=dy, k=2, stride=2)["dx"]) if module \
            else "not installed"
        rows.append((framework.title, got))
    return Table(("who", "cell that receives dL/dy"), rows)


@dataclass(frozen=True)
class Trap:
    """One trap section: ``key``, ``title``, ``text`` (plain) and the function that measures."""

    key: str
    title: str
    text: str
    run: Callable[[Modules], Table]


TRAPS = (
    Trap("trap-flatten", "Trap: the flatten permutation",
         "TensorFlow flattens NHWC maps, torch NCHW ones. Copying the dense weight after the "
         "flatten into torch without permuting its rows still runs, with every shape right, and "
         "computes another function.", flatten_permutation),
    Trap("trap-same", "Trap: TensorFlow's SAME vs symmetric padding",
         "At stride 2 (or with an even kernel) SAME pads one pixel more at the bottom/right. "
         "torch's integer padding is symmetric: same output shape here, every window shifted.",
         same_padding),
    Trap("trap-adam", "Trap: Adam's epsilon, two placements",
         "Each framework's formula, from the same start and the same gradients (of size 1e-3, "
         "learning rate 1e-3): how far apart the two trajectories are after each of 10 steps, "
         "relative to the distance travelled. Equal epsilons do not make them agree: the "
         "placement differs.", adam_epsilon),
    Trap("trap-relu0", "Trap: relu'(0)",
         "The derivative of relu at exactly 0 is a convention; the frameworks and the reference "
         "use 0, the NumPy blog 1. Pixels of 0 and dead units make it matter.", relu_at_zero),
    Trap("trap-pool-ties", "Trap: max-pool ties",
         "When a window holds its maximum more than once, the whole gradient goes to one cell: "
         "the first in row-major order, in every framework measured here.", pool_ties),
)
