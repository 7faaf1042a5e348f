"""A user's Flax NNX model (an ``nnx.Sequential`` or a module with its own ``__call__``), mapped
onto a spec and run for the check.

Tracing: a Sequential's items are the chain, in order; a module with its own ``__call__`` is
run once on a random probe while :class:`~.flax_trace.Recorder` records, in call order, the
calls of its layers and of the functions below (reached by module attribute: ``nnx.relu(...)``,
``jax.nn.relu(...)``, ``x.reshape(...)``, ``jnp.mean(...)``, ``+``), and
:func:`~.flax_trace.check_chain` checks that each call was given the previous one's output and
the last one's is what ``__call__`` returns, or, with a ``+``, that the sums are residual blocks
``x + f(x)`` chained with the rest (:func:`~.flax_trace.flow`, the sources
:func:`~.structure.build` takes). Layers: ``nnx.Linear``, ``nnx.Conv`` (square kernel
and stride, ``SAME``/``VALID`` padding: lax's SAME is TensorFlow's), ``nnx.Dropout`` (its
rate), ``nnx.BatchNorm`` (over the last axis, with scale and bias: Flax's momentum weighs the
old value, as the reference's; its running variance is biased), ``nnx.LayerNorm`` (over the
features of ``[N, D]``, its epsilon read: Flax's default is 1e-6), a mean over H and W of an
NHWC map (``jnp.mean(x, axis=(1, 2))``: a global average pool), the activation functions
``relu``, ``sigmoid``, ``tanh``, ``leaky_relu`` (slope 0.01),
``gelu`` (JAX's default: the tanh form; ``approximate=False`` the exact one) and a final
``softmax`` (diagnosed before a cross-entropy), ``nnx.max_pool`` and ``nnx.avg_pool`` (VALID
or SAME, ``count_include_pad`` read: flax counts SAME's padded cells by default; in a
Sequential as ``functools.partial(nnx.max_pool, window_shape=..., strides=..., padding=...)``,
likewise ``gelu`` with ``approximate``), and a reshape that flattens (exactly
``x.reshape(len(x), -1)`` on the probe; in a Sequential, a function whose output is the mean
over H and W is the global average pool). Anything else (a branch, a sum that is no residual
block, an unknown layer, a layer called twice) is refused with one error naming it.

Batch normalisation: the running statistics (``nnx.BatchStat``) are split out beside the
parameters and compared as tensors of their own (``<layer>.mean``, ``<layer>.var``); a
training pass runs the module in ``train()`` mode, evaluation in ``eval()`` mode (which set
``use_running_average``; a value the user's ``__call__`` passes wins, and a model that
evaluates on the batch's statistics is diagnosed). Flax holds them in float32 whatever
``param_dtype``; in a float64 model the check holds them in float64 (said in a note), so that
their update is judged at float64's tolerance.

Dropout: the layer holds its stream (``nnx.Dropout(rate, rngs=rngs)``, ``rngs`` having a
``dropout`` or ``default`` stream); in training its mask is read from its output (nonzero =
kept) and given to the reference, and the gradient pass replays the same draws (it starts from
the same stream state); the stream then moves on, so each batch draws its own mask. The
evaluation pass runs the module in ``eval()`` mode.

Running: the user's items or ``__call__`` run on the model's own parameters, taken out of the
module with ``nnx.split`` and put back with ``nnx.merge`` inside one ``jax.value_and_grad``:
gradients are the parameters', and each Linear/Conv/BatchNorm output gets a zero added (for a
``__call__``, by the recorder's patch) whose gradient is the delta ``dL/dz``; the forward
tensors come from one recorded pass before it. The loss is given by name (``ce``, ``bce``,
``mse``, ``l2``; optax's and jnp's formulas). An optax ``GradientTransformation`` does not
expose its formula, so the optimiser is given as a pair: the user's transformation, which runs
the steps (``tx.update``, ``optax.apply_updates``), and the
:class:`~nnparity.reference.optim.Optimizer` it claims to implement, which the reference runs
(optax's Adam is the ``torch`` variant); a bare transformation is refused. Parameters, kernels
and images are in the canonical layout already (``[D_in, D_out]``, HWIO, NHWC).
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
from nnparity.backends.compare import tolerance
from nnparity.errors import InputError
from nnparity.reference.losses import as_targets
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace

from .flax_trace import (
    PROBED,
    Event,
    Recorder,
    check_chain,
    describe_function,
    describe_module,
    modules_in_order,
)
from .guard import user_code
from .source import ModelSource
from .structure import Layer, Structure, build, unsupported

LAYOUT = "keras"  # Flax holds parameters and images in the canonical layout, as Keras does
FUNCTIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "gelu", "softmax")
PARTIALS = ("max_pool", "avg_pool", "gelu")  # a functools.partial of these is read
ATTRIBUTES = {"weight": "kernel", "bias": "bias", "gamma": "scale", "beta": "bias",
              "scale": "scale", "shift": "bias", "mean": "mean", "var": "var"}
"""A :class:`~.structure.Structure` parameter role -> the Flax module's attribute holding it."""
WEIGHTED = ("dense", "conv", "batchnorm", "layernorm")
"""Kinds whose module holds parameters (each may be called once)."""


def _describe(i: int, item: Any, x: Any, out: Any) -> Layer:
    """The chain layer of the Sequential's item ``i`` (``x``, ``out``: its probe input and
    output)."""
    label = f"layers[{i}] ({getattr(item, '__name__', type(item).__name__)})"
    if isinstance(item, nnx.Module):
        return describe_module(label, item, x)
    if isinstance(item, functools.partial) and not item.args:
        name = next((n for n in PARTIALS if item.func is getattr(nnx, n)), None)
        if name:
            return describe_function(name, f"layers[{i}] ({name})", (x,), item.keywords, out)
    for name in FUNCTIONS:
        if item is getattr(nnx, name):
            return describe_function(name, label, (x,), {}, out)
    if callable(item) and np.ndim(out) == 2 \
            and np.array_equal(np.asarray(out), np.asarray(x).reshape(len(x), -1)):
        return Layer("flatten", label)
    if callable(item) and np.ndim(x) == 4 and np.shape(out) == np.shape(x)[::3] and np.allclose(
            np.asarray(out), np.asarray(x).mean(axis=(1, 2)), atol=0,
            rtol=tolerance("float64" if np.asarray(out).dtype == np.float64 else "float32")):
        return Layer("global_avgpool", label)  # a mean over H, W, to the table's tolerance
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
    """The user's NNX module (an ``nnx.Sequential`` or a module with its own ``__call__``),
    traced once (:attr:`structure`), run on NumPy batches."""

    backend = "flax-model"

    def __init__(self, source: ModelSource) -> None:
        self.source, self.model = source, source.model
        self.sequential = isinstance(self.model, nnx.Sequential)
        self.graphdef, state, stats, self.rest = nnx.split(self.model, nnx.Param,
                                                            nnx.BatchStat, ...)
        paths, self.tree = jax.tree_util.tree_flatten_with_path(state)
        self.leaves = [np.asarray(leaf) for _, leaf in paths]
        stat_paths, self.stats_tree = jax.tree_util.tree_flatten_with_path(stats)
        first = next((m for m in modules_in_order(self.model)
                      if isinstance(m, nnx.Linear | nnx.Conv)), None)
        if first is None:
            raise InputError(f"{source.label}: the model has no nnx.Linear or nnx.Conv layer")
        self.dtype = str(first.kernel[...].dtype)
        if self.dtype not in ("float64", "float32"):
            raise InputError(f"{source.label}: parameters of dtype {self.dtype}; the reference "
                             "has float64 and float32")
        self.stats = [np.asarray(leaf, dtype=self.dtype) for _, leaf in stat_paths]
        self.notes = [] if all(leaf.dtype == self.dtype for _, leaf in stat_paths) else [
            f"Flax holds BatchNorm's running statistics in float32 whatever param_dtype (and a "
            f"{self.dtype} training pass rounds them back to float32: JAX warns of the cast); "
            f"the check holds them in {self.dtype}, so that their update is judged at its "
            "tolerance"]
        self.loss_name, self.loss_fn = _loss(source)
        shape = source.input_shape or ((first.in_features,) if isinstance(first, nnx.Linear)
                                       else ())
        if not shape:
            raise InputError(f"{source.label}: the model starts with a convolution: give "
                             "input_shape (H, W, C)")
        layers, module_paths, sources = self._trace(
            np.random.default_rng(0).standard_normal((2, *shape)))
        self.kinds = [layer.kind for layer in layers]
        self.structure: Structure = build(layers, tuple(shape), self.loss_name,
                                          source.reduction, self.dtype, sources)
        self.spec = self.structure.spec
        self.index, self.stat_index = self._index([path for path, _ in paths],
                                                  [path for path, _ in stat_paths], module_paths)
        ordinals = [i for i, kind in enumerate(self.kinds) if kind in ("dense", "conv",
                                                                        "batchnorm")]
        self.z_ordinal = {i: n for n, i in enumerate(ordinals)}
        self.tx, self.optimizer = _optimizer(source)
        self.tx_state: Any = None

    def _merged(self, leaves: list, training: bool) -> nnx.Module:
        """A copy of the user's module on ``leaves`` and the running statistics, its dropout
        and batch statistics on (``training``) or off."""
        model = nnx.merge(self.graphdef, jax.tree_util.tree_unflatten(self.tree, leaves),
                          # as JAX arrays: Flax writes a NumPy one in place
                          jax.tree_util.tree_unflatten(self.stats_tree,
                                                       [jnp.asarray(s) for s in self.stats]),
                          self.rest, copy=True)
        if training:
            model.train()
        else:
            model.eval()
        return model

    def _forward(self, model: nnx.Module, x: Any, zeros: dict[int, Any]) -> tuple[Any,
                                                                                 list[Event]]:
        """``(model(x), the calls it made)``, ``zeros[k]`` added to the ``k``-th Linear/Conv
        output: a Sequential's items one after another, else the user's ``__call__``
        recorded."""
        if not self.sequential:
            with Recorder(model, zeros) as recorder:
                return model(x), recorder.events
        events, h, n = [], x, 0
        for i, item in enumerate(model.layers):
            out = item(h)
            if isinstance(item, PROBED):
                out = out + zeros[n] if n in zeros else out
                n += 1
            events.append(Event(functools.partial(_describe, i, item, h, out), h, out,
                                item if isinstance(item, nnx.Module) else None))
            h = out
        return h, events

    def _trace(self, probe: np.ndarray) -> tuple[list[Layer], list[tuple | None],
                                                 list[tuple[int, ...]] | None]:
        """The chain's layers, checked to compute ``model(x)`` on ``probe``, the path in the
        module of each one's layer module (None for a function), and each one's sources when
        the chain has residual adds (:func:`~.flax_trace.flow`; None: a chain)."""
        x = jnp.asarray(probe, dtype=self.dtype)
        model = self._merged(self.leaves, True)
        with user_code(self.source.label, "the model", f" on an input of shape {x.shape}"):
            output, events = self._forward(model, x, {})
            whole = self._merged(self.leaves, True)(x) if self.sequential else output
        if not isinstance(output, jax.Array):
            raise InputError(f"{self.source.label}: the model returned a "
                             f"{type(output).__name__}, not one array")
        layers = [event.describe() for event in events]
        for layer in layers:
            if layer.kind == "unsupported":
                raise unsupported(layer.label)
        sources = None
        if not self.sequential:
            sources = check_chain(self.source.label, x, events, layers, output)
        # a structural check (the items replay the model), not a verdict: a NaN output matches
        # here and then fails the comparison with the reference as non-finite
        elif not np.array_equal(np.asarray(output), np.asarray(whole), equal_nan=True):
            raise InputError(f"{self.source.label}: calling the Sequential's items one after "
                             "another does not give model(x): only chains are supported")
        where = {id(node): tuple(path) for path, node in nnx.iter_graph(model)}
        module_paths = [where[id(e.module)] if e.module is not None else None for e in events]
        for i, (layer, path) in enumerate(zip(layers, module_paths, strict=True)):
            if layer.kind in WEIGHTED and path in module_paths[:i]:
                raise InputError(f"{self.source.label}: {layer.label} is called twice: the "
                                 "reference's layers each have their own weights")
        return layers, module_paths, sources

    def _index(self, paths: list[tuple], stat_paths: list[tuple],
               module_paths: list[tuple | None]) -> tuple[dict[str, int], dict[str, int]]:
        """``(canonical parameter name -> position of its leaf in the model's parameters,
        canonical state name -> position in its running statistics)``."""
        indices: tuple[dict[str, int], dict[str, int]] = ({}, {})
        for state, (leaves, index) in enumerate(zip((paths, stat_paths), indices, strict=True)):
            where = {tuple(p.key for p in path if hasattr(p, "key")): k
                     for k, path in enumerate(leaves)}
            index.update({name: where[(*module_paths[i], ATTRIBUTES[role])]
                          for name, (i, role) in self.structure.params.items()
                          if self.spec.is_state(name) == bool(state)})
            unused = set(range(len(leaves))) - set(index.values())
            if unused:
                label = jax.tree_util.keystr(leaves[min(unused)])
                raise InputError(f"{self.source.label}: {('parameter', 'state')[state]} "
                                 f"{label} is not one the reference's model has")
        return indices

    def params(self) -> dict[str, np.ndarray]:
        """The model's parameters and running statistics in the canonical layout."""
        return {k: layout.from_framework(LAYOUT, k, leaves[i], self.spec)
                for leaves, index in ((self.leaves, self.index), (self.stats, self.stat_index))
                for k, i in index.items()}

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Set the parameters from the canonical layout (a port's transfer), in the user's
        module too."""
        for leaves, index in ((self.leaves, self.index), (self.stats, self.stat_index)):
            for k, i in index.items():
                value = layout.to_framework(LAYOUT, k, params[k], self.spec)
                leaves[i] = value.astype(self.dtype).reshape(leaves[i].shape)
        nnx.update(self.model, jax.tree_util.tree_unflatten(self.tree, self.leaves))

    def _targets(self, y: np.ndarray, n: int) -> jnp.ndarray:
        if self.loss_name == "ce" and np.ndim(y) == 1:
            return jnp.asarray(y, dtype=jnp.int32)
        return jnp.asarray(as_targets(self.loss_name, y, n, self.spec.output_dim,
                                      np.dtype(self.dtype)))

    def _recorded(self, inputs: Any, training: bool) -> tuple[dict[str, np.ndarray],
                                                              np.ndarray | None, Any]:
        """One forward pass of the user's module: ``(tensors by canonical key, the dropout
        mask it drew (canonical; None without dropout or training), the running statistics
        and the dropout streams' state after it)``. The caller's gradient pass starts from the
        state before it, so it draws the same mask; the caller then moves on to the state
        after it (:meth:`_moved`)."""
        model = self._merged(self.leaves, training)
        with user_code(self.source.label, "the model", f" on an input of shape {inputs.shape}"):
            _, events = self._forward(model, inputs, {})
        if [event.describe().kind for event in events] != self.kinds:
            raise InputError(f"{self.source.label}: the model ran another chain of layers on "
                             "this batch than when it was traced")
        tensors = {key: np.asarray(events[i].out) for key, i in self.structure.keys.items()}
        mask = None
        if self.structure.dropouts and training:
            mask = np.concatenate([layout.tensor_from_framework(
                LAYOUT, self.spec, key, (tensors[key] != 0).astype(self.spec.dtype))
                for key in self.structure.dropouts], axis=1)
        return tensors, mask, nnx.split(model, nnx.Param, nnx.BatchStat, ...)[2:]

    def _moved(self, drawn: tuple[Any, Any]) -> None:
        """Take the running statistics and streams' state a pass of :meth:`_recorded` left."""
        stats, self.rest = drawn
        self.stats = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(stats)]

    def _loss_of(self, x: np.ndarray, y: np.ndarray,
                 training: bool) -> tuple[Callable[[list, dict], Any], jnp.ndarray]:
        """``(loss_of(leaves, zeros), inputs)`` for batch ``(x, y)``: the user's module on
        ``leaves``, ``zeros[k]`` added to its ``k``-th Linear/Conv output."""
        inputs = jnp.asarray(edges.as_input(self.spec, x), dtype=self.dtype)
        targets = self._targets(y, len(x))

        def loss_of(leaves: list, zeros: dict[int, Any]) -> Any:
            return self.loss_fn(self._forward(self._merged(leaves, training), inputs, zeros)[0],
                                targets)
        return loss_of, inputs

    def run(self, x: np.ndarray, y: np.ndarray,
            training: bool = True) -> tuple[Trace, Gradients, np.ndarray | None]:
        """Forward, loss, deltas and gradients of batch ``(x, y)`` in the canonical layout, and
        the dropout mask drawn (read from the dropout layers' outputs, nonzero = kept)."""
        loss_of, inputs = self._loss_of(x, y, training)
        tensors, mask, drawn = self._recorded(inputs, training)
        zs = {key[2:]: i for key, i in self.structure.keys.items() if key.startswith("z.")}
        zeros = {self.z_ordinal[i]: jnp.zeros(tensors[f"z.{layer}"].shape, dtype=self.dtype)
                 for layer, i in zs.items()}
        with user_code(self.source.label, "the model", f" on an input of shape {inputs.shape}"):
            loss, (d_leaves, d_zeros) = jax.value_and_grad(loss_of, argnums=(0, 1))(
                [jnp.asarray(leaf) for leaf in self.leaves], zeros)
        self._moved(drawn)
        trace = edges.make_trace(LAYOUT, self.spec, tensors)
        grads = edges.make_gradients(
            LAYOUT, self.spec, float(loss),
            {k: np.asarray(d_leaves[i]) for k, i in self.index.items()},
            {layer: np.asarray(d_zeros[self.z_ordinal[i]]) for layer, i in zs.items()},
            trace.output)
        return trace, grads, mask

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray | None]:
        """One step of the user's optax transformation: ``(loss before it, the dropout mask
        drawn)``."""
        loss_of, inputs = self._loss_of(x, y, True)
        _, mask, drawn = self._recorded(inputs, True)
        leaves = [jnp.asarray(leaf) for leaf in self.leaves]
        with user_code(self.source.label, "the model", f" on an input of shape {inputs.shape}"):
            loss, grads = jax.value_and_grad(lambda p: loss_of(p, {}))(leaves)
        self._moved(drawn)
        with user_code(self.source.label, "the optimizer's update"):
            if self.tx_state is None:
                self.tx_state = self.tx.init(leaves)
            updates, self.tx_state = self.tx.update(grads, self.tx_state, leaves)
            stepped = optax.apply_updates(leaves, updates)
        self.leaves = [np.asarray(leaf) for leaf in stepped]
        return float(loss), mask
