"""A user's Flax NNX model (an ``nnx.Sequential``), mapped onto a spec and run for the check.

Tracing: the Sequential's items are the chain, in order: ``nnx.Linear``, ``nnx.Conv`` (square
kernel and stride, ``SAME``/``VALID`` padding: lax's SAME is TensorFlow's), the activation
functions ``nnx.relu``, ``nnx.sigmoid``, ``nnx.tanh``, ``nnx.leaky_relu`` (slope 0.01) and a
final ``nnx.softmax`` (diagnosed before a cross-entropy), ``functools.partial(nnx.max_pool,
window_shape=..., strides=..., padding=...)``, and a function that flattens (any callable whose
output on a random probe is exactly ``x.reshape(len(x), -1)``). Anything else, a model that is
not a Sequential (its ``__call__`` cannot be read as a chain) and an ``nnx.Dropout`` are refused
with one error. The items called one after another must give ``model(x)``.

Running: the user's items run on the model's own parameters, taken out of the module with
``nnx.split`` and put back with ``nnx.merge`` inside one ``jax.value_and_grad``: gradients are
the parameters', and each Linear/Conv output gets a zero added whose gradient is the delta
``dL/dz``. The loss is given by name (``ce``, ``bce``, ``mse``, ``l2``; optax's and jnp's
formulas). An optax ``GradientTransformation`` does not expose its formula, so the optimiser is
given as a pair: the user's transformation, which runs the steps (``tx.update``,
``optax.apply_updates``), and the :class:`~nnparity.reference.optim.Optimizer` it claims to
implement, which the reference runs (optax's Adam is the ``torch`` variant); a bare
transformation is refused. Parameters, kernels and images are in the canonical layout already
(``[D_in, D_out]``, HWIO, NHWC).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nnparity.backends import edges, layout
from nnparity.errors import InputError
from nnparity.reference.losses import as_targets
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace

from .guard import user_code
from .source import ModelSource
from .structure import Layer, Structure, build, unsupported

LAYOUT = "keras"  # Flax holds parameters and images in the canonical layout, as Keras does
ACTIVATIONS = ((nnx.relu, "relu"), (nnx.sigmoid, "sigmoid"), (nnx.tanh, "tanh"),
               (nnx.leaky_relu, "leaky_relu"))
ATTRIBUTES = {"weight": "kernel", "bias": "bias"}


def _square(value: Any, label: str, what: str) -> int:
    """One int from an int or a pair of equal ints (a kernel needs the pair)."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or pair[0] != pair[1]:
        raise unsupported(f"{label} ({what} {value}: the reference has square 2-D windows)")
    return int(pair[0])


def _padding(value: Any, label: str) -> str:
    if not isinstance(value, str) or value.upper() not in ("SAME", "VALID"):
        raise unsupported(f"{label} (padding {value!r}: the reference has SAME and VALID)")
    return value.upper()


def _describe(i: int, item: Any, x: Any, out: Any) -> Layer:
    """The chain layer of the Sequential's item ``i`` (``x``, ``out``: its probe input and
    output)."""
    name = getattr(item, "__name__", type(item).__name__)
    label = f"layers[{i}] ({name})"
    if isinstance(item, nnx.Linear):
        return Layer("dense", label, {"in": item.in_features, "out": item.out_features,
                                      "bias": item.use_bias})
    if isinstance(item, nnx.Conv):
        if isinstance(item.kernel_size, int) or item.feature_group_count != 1 \
                or item.mask is not None or any(
                    d not in (1, (1, 1), None) for d in (item.kernel_dilation,
                                                         item.input_dilation)):
            raise unsupported(f"{label} (a 1-D kernel, dilation, groups or a mask)")
        return Layer("conv", label, {"cin": item.in_features, "cout": item.out_features,
                                     "kernel": _square(item.kernel_size, label, "kernel"),
                                     "stride": _square(item.strides, label, "strides"),
                                     "padding": _padding(item.padding, label),
                                     "bias": item.use_bias})
    if isinstance(item, functools.partial) and item.func is nnx.max_pool and not item.args:
        kw = item.keywords
        window = _square(kw.get("window_shape", ()), label, "window")
        return Layer("pool", f"layers[{i}] (max_pool)", {
            "window": window, "stride": _square(kw.get("strides") or (1, 1), label, "strides"),
            "padding": _padding(kw.get("padding", "VALID"), label)})
    if item is nnx.softmax:
        return Layer("softmax", label)
    for function, activation in ACTIVATIONS:
        if item is function:
            return Layer("activation", label, {"name": activation})
    if not isinstance(item, nnx.Module) and callable(item) and np.ndim(out) == 2 \
            and np.array_equal(np.asarray(out), np.asarray(x).reshape(len(x), -1)):
        return Layer("flatten", label)
    raise unsupported(label)


def _optimizer(source: ModelSource) -> tuple[Any, Optimizer | None]:
    """``(the user's optax transformation, the formula it claims)``, ``(None, None)`` without."""
    given = source.optimizer
    if given is None:
        return None, None
    if not (isinstance(given, tuple) and len(given) == 2 and isinstance(given[1], Optimizer)
            and callable(getattr(given[0], "update", None))):
        raise InputError(f"{source.label}: an optax optimiser does not expose its formula: give "
                         "the pair (tx, nnparity.Optimizer(...)) it implements, e.g. "
                         "(optax.adam(1e-3), Optimizer('adam', lr=1e-3)), or optimizer=None "
                         "(forward, loss, deltas and gradients)")
    return given


def _loss(source: ModelSource) -> tuple[str, Callable[[Any, Any], Any]]:
    """``(reference loss, loss(output, targets))`` for a loss given by name."""
    name, mean = source.loss, source.reduction == "mean"
    if not isinstance(name, str):
        raise InputError(f"{source.label}: a Flax model's loss is given by name (ce, l2, bce, "
                         f"mse), not a {type(name).__name__}")

    def reduce(per_row: Any) -> Any:
        return jnp.mean(per_row) if mean else jnp.sum(per_row)

    formulas: dict[str, Callable[[Any, Any], Any]] = {
        "ce": lambda o, t: reduce(optax.softmax_cross_entropy_with_integer_labels(o, t)),
        "bce": lambda o, t: reduce(jnp.sum(optax.sigmoid_binary_cross_entropy(o, t), axis=1)),
        "mse": lambda o, t: jnp.mean((o - t) ** 2) if mean else jnp.sum((o - t) ** 2),
        "l2": lambda o, t: reduce(0.5 * jnp.sum((o - t) ** 2, axis=1)),
    }
    return name, formulas[name]


class FlaxUserModel:
    """The user's ``nnx.Sequential``, traced once (:attr:`structure`), run on NumPy batches."""

    backend = "flax-model"

    def __init__(self, source: ModelSource) -> None:
        self.source, self.model = source, source.model
        if not isinstance(self.model, nnx.Sequential):
            raise InputError(f"{source.label}: a Flax NNX model is checked as an nnx.Sequential "
                             f"of layers and functions; a {type(self.model).__name__} with its "
                             "own __call__ cannot be read as a chain of layers")
        self.items = list(self.model.layers)
        self.graphdef, state = nnx.split(self.model)
        paths, self.tree = jax.tree_util.tree_flatten_with_path(state)
        self.leaves = [np.asarray(leaf) for _, leaf in paths]
        first = next((item for item in self.items if isinstance(item, nnx.Linear | nnx.Conv)),
                     None)
        if first is None:
            raise InputError(f"{source.label}: the model has no nnx.Linear or nnx.Conv layer")
        self.dtype = str(first.kernel[...].dtype)
        if self.dtype not in ("float64", "float32"):
            raise InputError(f"{source.label}: parameters of dtype {self.dtype}; the reference "
                             "has float64 and float32")
        self.loss_name, self.loss_fn = _loss(source)
        shape = source.input_shape or ((first.in_features,) if isinstance(first, nnx.Linear)
                                       else ())
        if not shape:
            raise InputError(f"{source.label}: the model starts with a convolution: give "
                             "input_shape (H, W, C)")
        layers = self._trace(np.random.default_rng(0).standard_normal((2, *shape)))
        self.structure: Structure = build(layers, tuple(shape), self.loss_name,
                                          source.reduction, self.dtype)
        self.spec = self.structure.spec
        self.index = self._index([path for path, _ in paths])
        self.tx, self.optimizer = _optimizer(source)
        self.tx_state: Any = None

    def _trace(self, probe: np.ndarray) -> list[Layer]:
        """The chain's layers, checked to compute ``model(x)`` on ``probe``."""
        x = jnp.asarray(probe, dtype=self.dtype)
        layers, h = [], x
        with user_code(self.source.label, "the model", f" on an input of shape {x.shape}"):
            for i, item in enumerate(self.items):
                out = item(h)
                layers.append(_describe(i, item, h, out))
                h = out
            whole = self.model(x)
        if not np.array_equal(np.asarray(h), np.asarray(whole), equal_nan=True):
            raise InputError(f"{self.source.label}: calling the Sequential's items one after "
                             "another does not give model(x): only chains are supported")
        return layers

    def _index(self, paths: list[tuple]) -> dict[str, int]:
        """Canonical parameter name -> position of its leaf in the model's state."""
        where = {}
        for k, path in enumerate(paths):
            keys = [getattr(p, "key", getattr(p, "name", None)) for p in path]
            if len(keys) >= 3 and keys[0] == "layers":
                where[(keys[1], keys[2])] = k
        index = {}
        for name, (i, role) in self.structure.params.items():
            index[name] = where[(i, ATTRIBUTES[role])]
        unused = set(range(len(paths))) - set(index.values())
        if unused:
            label = jax.tree_util.keystr(paths[min(unused)])
            raise InputError(f"{self.source.label}: state {label} is not one the reference's "
                             "model has")
        return index

    def params(self) -> dict[str, np.ndarray]:
        """The model's parameters in the canonical layout."""
        return {k: layout.from_framework(LAYOUT, k, self.leaves[i], self.spec)
                for k, i in self.index.items()}

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Set the parameters from the canonical layout (a port's transfer), in the user's
        module too."""
        for k, i in self.index.items():
            value = layout.to_framework(LAYOUT, k, params[k], self.spec)
            self.leaves[i] = value.astype(self.dtype).reshape(self.leaves[i].shape)
        nnx.update(self.model, jax.tree_util.tree_unflatten(self.tree, self.leaves))

    def _targets(self, y: np.ndarray, n: int) -> jnp.ndarray:
        if self.loss_name == "ce" and np.ndim(y) == 1:
            return jnp.asarray(y, dtype=jnp.int32)
        return jnp.asarray(as_targets(self.loss_name, y, n, self.spec.output_dim,
                                      np.dtype(self.dtype)))

    def _loss_of(self, x: np.ndarray, y: np.ndarray) -> tuple[Callable, jnp.ndarray]:
        """``(loss_of(leaves, zeros) -> (loss, every item's output), inputs)`` for batch
        ``(x, y)``: the user's items run on ``leaves``, ``zeros[i]`` added to item ``i``."""
        inputs = jnp.asarray(edges.as_input(self.spec, x), dtype=self.dtype)
        targets = self._targets(y, len(x))
        graphdef, tree, items = self.graphdef, self.tree, range(len(self.items))

        def loss_of(leaves: list, zeros: dict[int, Any]) -> tuple[Any, list]:
            model = nnx.merge(graphdef, jax.tree_util.tree_unflatten(tree, leaves))
            outputs, h = [], inputs
            for i in items:
                h = model.layers[i](h)
                h = h + zeros[i] if i in zeros else h
                outputs.append(h)
            return self.loss_fn(outputs[-1], targets), outputs
        return loss_of, inputs

    def run(self, x: np.ndarray, y: np.ndarray,
            training: bool = True) -> tuple[Trace, Gradients, None]:
        """Forward, loss, deltas and gradients of batch ``(x, y)`` in the canonical layout (no
        dropout: ``training`` changes nothing)."""
        keys = self.structure.keys
        zs = {key[2:]: i for key, i in keys.items() if key.startswith("z.")}
        loss_of, inputs = self._loss_of(x, y)
        with user_code(self.source.label, "the model", f" on an input of shape {inputs.shape}"):
            shapes = [np.shape(h) for h in loss_of(list(self.leaves), {})[1]]
            zeros = {i: jnp.zeros(shapes[i], dtype=self.dtype) for i in zs.values()}
            (loss, outputs), (d_leaves, d_zeros) = jax.value_and_grad(
                loss_of, argnums=(0, 1), has_aux=True)(list(self.leaves), zeros)
        tensors = {key: np.asarray(outputs[i]) for key, i in keys.items()}
        trace = edges.make_trace(LAYOUT, self.spec, tensors)
        grads = edges.make_gradients(
            LAYOUT, self.spec, float(loss),
            {k: np.asarray(d_leaves[i]) for k, i in self.index.items()},
            {layer: np.asarray(d_zeros[i]) for layer, i in zs.items()}, trace.output)
        return trace, grads, None

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, None]:
        """One step of the user's optax transformation: ``(loss before it, no mask)``."""
        loss_of, inputs = self._loss_of(x, y)
        leaves = [jnp.asarray(leaf) for leaf in self.leaves]
        with user_code(self.source.label, "the model", f" on an input of shape {inputs.shape}"):
            loss, grads = jax.value_and_grad(lambda p: loss_of(p, {})[0])(leaves)
        with user_code(self.source.label, "the optimizer's update"):
            if self.tx_state is None:
                self.tx_state = self.tx.init(leaves)
            updates, self.tx_state = self.tx.update(grads, self.tx_state, leaves)
            stepped = optax.apply_updates(leaves, updates)
        self.leaves = [np.asarray(leaf) for leaf in stepped]
        return float(loss), None
