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
from nnparity.reference.layers import avgpool as avgpool_layer
from nnparity.reference.layers import batchnorm as batchnorm_layer
from nnparity.reference.layers import gelu as gelu_layer
from nnparity.reference.layers import layernorm as layernorm_layer

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


def avgpool_padding(modules: Modules) -> Table:
    """A 5x5 map of ones, 3x3 windows at stride 2, SAME (one padded cell on every side): the
    corner output and the gap to the mean over the real cells (Keras' SAME)."""
    x = np.ones((1, 5, 5, 1))
    expected = avgpool_layer.avgpool2d(x, 3, 2, "SAME")
    results: list[tuple[str, np.ndarray | None]] = [
        ("reference, real cells only", expected),
        ("reference, count_include_pad",
         avgpool_layer.avgpool2d(x, 3, 2, "SAME", count_include_pad=True))]
    if "torch" in modules:
        import torch

        xt = torch.from_numpy(x).permute(0, 3, 1, 2)
        for counted in (True, False):
            pool = torch.nn.AvgPool2d(3, 2, padding=1, count_include_pad=counted)
            title = "PyTorch AvgPool2d(3, 2, padding=1)" + ("" if counted else
                                                            ", count_include_pad=False")
            results.append((title, pool(xt).permute(0, 2, 3, 1).numpy()))
    else:
        results.append(("PyTorch", None))
    if "keras" in modules:
        from nnparity.backends.determinism import import_tensorflow

        _, keras = import_tensorflow()
        pool = keras.layers.AveragePooling2D(3, 2, padding="same", dtype="float64")
        results.append(('Keras AveragePooling2D(3, 2, padding="same")', np.asarray(pool(x))))
    else:
        results.append(("Keras", None))
    rows = [(title, "not installed", "not installed") if y is None else
            (title, f"{y[0, 0, 0, 0]:.4f}", f"{rel(y, expected):.1e}") for title, y in results]
    return Table(("who", "corner output y[0, 0, 0, 0]", "max rel gap to the real-cells mean"),
                 rows)


Statistics = tuple[np.ndarray, np.ndarray]


def _torch_running(batches: np.ndarray, momentum: float) -> Statistics:
    import torch

    bn = torch.nn.BatchNorm1d(batches.shape[-1], momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        for x in batches:
            bn(torch.from_numpy(x))  # a training pass: updates the running statistics
    return bn.running_mean.numpy(), bn.running_var.numpy()


def _keras_running(batches: np.ndarray, momentum: float) -> Statistics:
    from nnparity.backends.determinism import import_tensorflow

    tf, keras = import_tensorflow()
    bn = keras.layers.BatchNormalization(momentum=momentum, dtype="float64")
    for x in batches:
        bn(tf.constant(x), training=True)
    return np.asarray(bn.moving_mean.numpy()), np.asarray(bn.moving_variance.numpy())


def batchnorm_momentum(modules: Modules) -> Table:
    """Running statistics after 10 training batches (16 samples, 3 features, mean 2, std 3),
    from mean 0 and variance 1, against the reference with torch's rule (keep 0.9 of the old
    value, unbiased batch variance)."""
    batches = 2 + 3 * np.random.default_rng(15).standard_normal((10, 16, 3))

    def reference(variance: str) -> Statistics:
        layer = batchnorm_layer.BatchNorm("bn", momentum=0.9, variance=variance)
        mean, var = np.zeros(3), np.ones(3)
        for x in batches:
            mean, var = layer.running_update(mean, var, *batchnorm_layer.batch_statistics(x))
        return mean, var

    torch_rule = reference("unbiased")
    runs: list[tuple[str, str, Callable[[], Statistics]]] = [
        ("reference: keep 0.9, unbiased variance (torch's rule)", "", lambda: torch_rule),
        ("reference: keep 0.9, biased variance (Keras' rule)", "", lambda: reference("biased")),
        ("PyTorch BatchNorm1d(momentum=0.1)", "torch", lambda: _torch_running(batches, 0.1)),
        ("Keras BatchNormalization(momentum=0.1): copied verbatim", "keras",
         lambda: _keras_running(batches, 0.1)),
        ("Keras BatchNormalization(momentum=0.9): mapped to 1 - 0.1", "keras",
         lambda: _keras_running(batches, 0.9))]
    rows = []
    for title, needs, measured in runs:
        if needs and needs not in modules:
            rows.append((title, "not installed", "", "", "not installed"))
            continue
        mean, var = measured()
        rows.append((title, f"{mean[0]:.4f}", f"{var[0]:.4f}", f"{rel(mean, torch_rule[0]):.1e}",
                     f"{rel(var, torch_rule[1]):.1e}"))
    return Table(("after 10 steps", "running mean[0]", "running var[0]",
                  "mean: max rel gap to torch's rule", "var: max rel gap to torch's rule"), rows)


def layernorm_epsilon(modules: Modules) -> Table:
    """Layer normalisation of the same rows at several scales with torch's epsilon (1e-5) and
    Keras' (1e-3), unit scale and zero shift: the largest difference of the outputs."""
    base = np.random.default_rng(16).standard_normal((4, 8))
    ones, zeros = np.ones(8), np.zeros(8)
    defaults = "not installed"
    if "torch" in modules and "keras" in modules:
        import torch

        from nnparity.backends.determinism import import_tensorflow

        _, keras = import_tensorflow()
        ln_torch = torch.nn.LayerNorm(8, dtype=torch.float64)  # the defaults, as users get them
        ln_keras = keras.layers.LayerNormalization(dtype="float64")
        defaults = f"PyTorch (eps={ln_torch.eps:g}) vs Keras (eps={ln_keras.epsilon:g})"
    rows = []
    for scale in (1.0, 0.1, 0.03, 0.01):
        x = scale * base
        y_small, y_large = (layernorm_layer.layernorm(x, ones, zeros, eps)[0] for eps in
                            (layernorm_layer.TORCH_EPSILON, layernorm_layer.KERAS_EPSILON))
        gap = np.max(np.abs(y_small - y_large))
        cell = "not installed"
        if defaults != "not installed":
            with torch.no_grad():
                y_torch = ln_torch(torch.from_numpy(x)).numpy()
            cell = f"{np.max(np.abs(y_torch - np.asarray(ln_keras(x)))):.1e}"
        rows.append((f"{np.std(x, axis=1).mean():.3f}", f"{gap:.1e}", cell))
    return Table(("mean row std of x", "reference: max |y(1e-5) - y(1e-3)|",
                  f"max |y| gap, {defaults}"), rows)


def _default_gelu(key: str, module: ModuleType, z: np.ndarray) -> tuple[str, np.ndarray]:
    """``(the call, its value)``: framework ``key``'s GELU on ``z`` in its default form."""
    if key == "torch":
        import torch

        return "PyTorch F.gelu(z)", torch.nn.functional.gelu(torch.from_numpy(z)).numpy()
    if key == "keras":
        from nnparity.backends.determinism import import_tensorflow

        _, keras = import_tensorflow()
        return "Keras keras.activations.gelu(z)", np.asarray(keras.activations.gelu(z))
    import jax

    with module.context():  # x64: float64 stays float64
        return "JAX jax.nn.gelu(z)", np.asarray(jax.nn.gelu(z))


def gelu_forms(modules: Modules) -> Table:
    """GELU's exact and tanh forms on 1201 points of [-6, 6] in float64, and what each
    framework's ``gelu(z)`` computes with its default form."""
    z = np.linspace(-6.0, 6.0, 1201)
    exact, tanh = (gelu_layer.gelu(z, gelu_layer.gelu_inner(z, form), form)
                   for form in gelu_layer.GELU_FORMS)
    derivative = {form: gelu_layer.gelu_grad(z, gelu_layer.gelu_inner(z, form), form)
                  for form in gelu_layer.GELU_FORMS}
    rows = [("reference, tanh form", f"{np.max(np.abs(tanh - exact)):.1e}",
             f"{np.max(np.abs(derivative['tanh'] - derivative['none'])):.1e}", "0")]

    for framework in FRAMEWORKS:
        if framework.key not in modules:
            rows.append((framework.title, "not installed", "", "not installed"))
            continue
        title, value = _default_gelu(framework.key, modules[framework.key], z)
        rows.append((title, f"{np.max(np.abs(value - exact)):.1e}", "",
                     f"{np.max(np.abs(value - tanh)):.1e}"))
    return Table(("who", "max |h - exact|", "max |dh/dz - exact's|", "max |h - tanh form|"),
                 rows)


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
    Trap("trap-avgpool-pad", "Trap: the average pool's padded cells",
         "Keras' SAME average pool divides each border window by the cells it covers; torch's "
         "AvgPool2d(padding=...) counts the padded zeros by default (count_include_pad=True): "
         "the same shapes, smaller values at every border. Pass count_include_pad=False.",
         avgpool_padding),
    Trap("trap-bn-momentum", "Trap: batch normalisation's momentum",
         "torch's momentum weighs the new batch (running = (1 - m) running + m batch, default "
         "0.1), Keras' the old value (running = m running + (1 - m) batch, default 0.99); "
         "torch's running variance takes the unbiased batch variance, Keras' the biased one. "
         "Copied verbatim, momentum=0.1 in Keras keeps only a tenth of the old value: the "
         "running statistics are the last batches'. Mapped to 0.9, only the variance "
         "estimator differs (a factor m/(m - 1) per batch).", batchnorm_momentum),
    Trap("trap-ln-epsilon", "Trap: layer normalisation's epsilon",
         "nn.LayerNorm's default epsilon is 1e-5, LayerNormalization's 1e-3. On rows whose "
         "variance is not large against epsilon the outputs differ: the smaller the "
         "activations, the larger the gap. Set epsilon explicitly in both.", layernorm_epsilon),
    Trap("trap-gelu-forms", "Trap: GELU, exact or tanh",
         "The tanh form approximates the exact (erf) GELU; torch and Keras default to the "
         "exact form, jax.nn.gelu to the tanh one. The gap is small but far above float64 "
         "rounding, so a parity check between frameworks fails unless both use one form.",
         gelu_forms),
)
