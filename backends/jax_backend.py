"""The ``jax`` backend: one model, a pure function of a parameter dict, differentiated by JAX.

- Layout: JAX holds every tensor as Keras does (the canonical layout, but biases ``[D]``):
  dense ``W [D_in, D_out]``, NHWC maps, HWIO kernels, the first dense weight after a flatten with
  its rows in NHWC flatten order.
- The model, for every spec (MLPSpec, CNNSpec, NetSpec): the table of :mod:`.jax_layers` (layer
  kind -> a pure function building the layer's apply: ``jnp.matmul``,
  ``lax.conv_general_dilated``, ``lax.reduce_window``, the activations, explicit dropout
  ``h * (mask[:, columns] / keep_prob)``) folded over ``spec.net``, tracing the tensors the
  reference traces under its keys.
- Loss: ``optax.losses`` per sample (``softmax_cross_entropy`` on dense targets,
  ``sigmoid_binary_cross_entropy``, ``l2_loss`` = ``0.5 (o - t)^2``, ``squared_error`` for
  ``mse``), summed or averaged over the N samples (``mse``: the N·K elements), plus
  ``0.5 * lambda * sum(W^2)`` over the weights.
- Gradients by ``jax.value_and_grad``; the deltas ``dL/dz`` are the gradients with respect to
  zero "probes" added to every pre-activation (``z + p`` at ``p = 0``).
- Steps by ``optax.sgd`` (with ``momentum=mu`` or none), ``optax.adam`` and ``optax.adamw``
  (decoupled decay of every parameter): the reference's ``"torch"`` variant (``optax.trace``:
  ``v <- g + mu v``; ``optax.scale_by_adam`` adds epsilon after the bias-corrected
  ``sqrt(v)``). Optimiser state moves to and from the reference's flat format (``t`` <->
  ``count``, ``m`` <-> ``mu``, ``v`` <-> ``nu`` or ``trace``).
- Compilation: one ``jax.jit``'ed program per spec and batch shape, :func:`evaluate` (the trace,
  the loss, the gradients and the deltas), serves ``forward``, ``gradients`` and every training
  step, followed in a step by the ``jax.jit``'ed optax :func:`update`; so XLA compiles each model
  once, not once per entry point (a model with batch normalisation twice: its training passes
  on the batch's statistics, returning the running ones they leave, and its evaluation).
- float64: JAX computes in float32 unless ``jax_enable_x64`` is on. Every call of this backend
  runs inside ``jax.enable_x64(True)``, a thread-local context manager, so the caller's own JAX
  defaults (float32 arrays and dtypes) are untouched. A float32 spec stays float32 (every array
  is made with the spec's dtype; Python scalars are weakly typed), but with x64 on, optax's
  ``1 - b^t`` is computed in float64 as torch computes it (in Python floats): with x64 off it is
  a float32 power, ``1 - float32(0.999)`` is 1.3e-5 relative off, and a float32 Adam case
  drifted 2.1e-5 from the reference in 10 steps, past the 1e-5 tolerance (with x64 on: 2.0e-6;
  torch: 4.1e-6). Every call is pinned to the CPU (``device``).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnparity.reference.family import Spec
from nnparity.reference.optim import Optimizer
from nnparity.reference.params import check_params
from nnparity.reference.results import Gradients, Trace

from . import edges, jax_layers
from .jax_layers import FRAMEWORK, Tree, on_device, param_from_jax, param_to_jax, params_to_jax
from .protocol import Backend, Params, State

if TYPE_CHECKING:
    from nnparity.reference.layers import Layer

VARIANT = "torch"


@contextlib.contextmanager
def scope(device: str = "cpu") -> Iterator[None]:
    """The context of every call of this backend: x64 on, the CPU device (or the first GPU for
    ``device="cuda"``)."""
    platform = "cpu" if device == "cpu" else "gpu"
    with jax.enable_x64(True), jax.default_device(jax.devices(platform)[0]):
        yield


def check_gpu() -> None:
    """``ValueError`` (one line) unless JAX sees a GPU."""
    try:
        jax.devices("gpu")
    except RuntimeError:
        raise ValueError("--device cuda: jax sees no GPU (jax.devices('gpu') fails)") from None


# --- the model: the table of :mod:`.jax_layers` folded over ``spec.net`` ------------------------

Probes = dict[str, jax.Array] | None


def _traced(layer: Layer, masked: bool) -> bool:
    """Whether a layer without parameters records ``h.<name>``: always, but a dropout layer only
    with a mask or when ``traced_without_mask`` (the reference's rule)."""
    return layer.kind != "dropout" or masked or layer.traced_without_mask


def _trace(spec: Spec, params: Tree, x: jax.Array, mask: jax.Array | None,
           probes: Probes = None, training: bool = False,
           updates: Tree | None = None) -> OrderedDict[str, jax.Array]:
    """Every tensor the reference traces, in forward order and the Keras layout: a dense/conv
    layer's ``z.<name>`` (plus its zero probe) and ``h.<name>`` (= z until an activation
    overwrites it), a pool's, flatten's or dropout's ``h.<name>``.

    Traces keep an OrderedDict: JAX keeps its keys in insertion order through jit (a plain dict
    comes back sorted), and the output is the last ``h``. ``training``: batch normalisation on
    the batch's statistics, the running ones it leaves written into ``updates``.
    """
    out: OrderedDict[str, jax.Array] = OrderedDict()

    def chain(layers: tuple[Layer, ...], params: Tree, h: jax.Array) -> jax.Array:
        for layer in layers:  # a residual block's apply runs its sub-list through chain
            h = jax_layers.build(layer)(params, h, run)
            if layer.role == "param":
                h = h + (0.0 if probes is None else _probe(probes, layer.name, h))
                out[f"z.{layer.name}"] = out[f"h.{layer.name}"] = h
            elif _traced(layer, mask is not None):
                out[f"h.{layer.name}"] = h
        return h

    run = jax_layers.Run(mask, spec.dropout_columns, chain, training, updates)
    chain(spec.net, params, x)
    return out


def _probe(probes: Tree, name: str, z: jax.Array) -> jax.Array:
    """Layer ``name``'s zero probe, of ``z``'s shape (from ``spec.z_shapes``; a mismatch, which
    adding would broadcast, raises ``ValueError``)."""
    probe = probes[name]
    if probe.shape != z.shape:
        raise ValueError(f"layer {name!r}: z has shape {list(z.shape)}, the spec says "
                         f"{list(probe.shape)}")
    return probe


def _output(tensors: OrderedDict[str, jax.Array]) -> jax.Array:
    return next(reversed(tensors.values()))


# --- loss ----------------------------------------------------------------------------------------

PER_SAMPLE: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "ce": optax.losses.softmax_cross_entropy,  # -sum(t log_softmax(o)) per row
    "bce": lambda o, t: jnp.sum(optax.losses.sigmoid_binary_cross_entropy(o, t), axis=-1),
    "l2": lambda o, t: jnp.sum(optax.losses.l2_loss(o, t), axis=-1),  # 0.5 (o - t)^2
    "mse": lambda o, t: jnp.sum(optax.losses.squared_error(o, t), axis=-1),  # (o - t)^2
}


def loss_value(spec: Spec, params: Tree, output: jax.Array, targets: jax.Array) -> jax.Array:
    """The reduced loss of ``output [N, K]`` against dense ``targets [N, K]`` plus
    ``0.5 * lambda * sum(W^2)`` over weights (not biases, not slopes)."""
    value = jnp.sum(PER_SAMPLE[spec.loss](output, targets))
    if spec.reduction == "mean":  # over N samples; mse: over the N*K elements, as frameworks do
        value = value / (output.shape[0] * (output.shape[1] if spec.loss == "mse" else 1))
    if spec.weight_decay:
        squares = sum(jnp.sum(p * p) for name, p in params.items() if spec.is_weight(name))
        value = value + 0.5 * spec.weight_decay * squares
    return value


# --- compiled functions (spec and optimiser static) ----------------------------------------------


@partial(jax.jit, static_argnums=(0, 5))
def evaluate(spec: Spec, params: Tree, x: jax.Array, targets: jax.Array,
             mask: jax.Array | None, training: bool = False
             ) -> tuple[OrderedDict[str, jax.Array], jax.Array, Tree, Tree, Tree]:
    """One forward and backward pass: ``(every traced tensor in forward order, loss,
    dL/dparams, dL/dz by layer, the state the pass leaves)``. The deltas are the gradients with
    respect to zero probes added to each pre-activation, shaped by ``spec.z_shapes`` (no second
    trace to find the shapes). ``training``: batch statistics (the
    state: the running statistics they update; empty at evaluation).

    The one program XLA compiles per spec and batch shape: ``forward`` (with zero targets),
    ``gradients`` and every training step run it.
    """
    probes = {layer: jnp.zeros((x.shape[0], *shape), spec.dtype)
              for layer, shape in spec.z_shapes.items()}

    def objective(params: Tree, probes: Tree) -> tuple[jax.Array, tuple[Any, Tree]]:
        updates: Tree = {}
        tensors = _trace(spec, params, x, mask, probes, training, updates)
        return loss_value(spec, params, _output(tensors), targets), (tensors, updates)

    (loss, (tensors, updates)), (grads, deltas) = jax.value_and_grad(
        objective, argnums=(0, 1), has_aux=True)(params, probes)
    return tensors, loss, grads, deltas, updates


@partial(jax.jit, static_argnums=0)
def update(optimizer: Optimizer, params: Tree, opt_state: Any,
           grads: Tree) -> tuple[Tree, Any]:
    """One optax update: ``(new params, new optimiser state)``."""
    updates, opt_state = transformation(optimizer).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


# --- optimisers ----------------------------------------------------------------------------------

# The reference's state slots -> the optax state fields holding them (Adam's "t" is "count").
SLOTS = {"sgd": {}, "momentum": {"v": "trace"}, "adam": {"m": "mu", "v": "nu"},
         "adamw": {"m": "mu", "v": "nu"}}


def transformation(optimizer: Optimizer) -> optax.GradientTransformation:
    """``optax.sgd(lr)``, ``optax.sgd(lr, momentum=mu)``, ``optax.adam(lr, b1, b2, eps)`` or
    ``optax.adamw(...)``: exactly the ``torch`` variant (:mod:`reference.optim`). The optimiser's
    ``l2`` (torch.optim's ``weight_decay``, every parameter) is ``optax.add_decayed_weights``
    chained before it. The model's weight decay is not an optax transform: it is the L2 term in
    the loss, on weights only, as in the reference.

    Raises ``ValueError`` for the ``keras`` variant.
    """
    edges.check_variant(optimizer, VARIANT, "jax", "optax")
    if optimizer.name == "adamw":  # decoupled decay of every parameter, as torch.optim.AdamW
        return optax.adamw(optimizer.lr, b1=optimizer.beta1, b2=optimizer.beta2,
                           eps=optimizer.eps, weight_decay=optimizer.decay)
    if optimizer.name == "adam":
        tx = optax.adam(optimizer.lr, b1=optimizer.beta1, b2=optimizer.beta2, eps=optimizer.eps)
    else:
        momentum = optimizer.momentum if optimizer.name == "momentum" else None
        tx = optax.sgd(optimizer.lr, momentum=momentum)
    # l2, torch.optim's weight_decay: g + l2 p on every parameter before the step
    return optax.chain(optax.add_decayed_weights(optimizer.l2), tx) if optimizer.l2 else tx


def initial_state(optimizer: Optimizer, params: Tree) -> Any:
    """The optax state of ``optimizer`` for ``params``: the tree ``init`` makes (traced
    abstractly) filled with zeros, which is where every state of :func:`transformation` starts
    (Adam's count too; a test compares it with ``init``). Made by ``init`` itself, each
    ``zeros_like`` of a new shape compiles a program of its own (0.7 s of the default check)."""
    shapes = jax.eval_shape(transformation(optimizer).init, params)
    return jax.tree.map(lambda s: on_device(np.zeros(s.shape, s.dtype)), shapes)


# --- the edges: NumPy in, NumPy out --------------------------------------------------------------


def batch_statistics(spec: Spec, training: bool) -> bool:
    """The ``training`` argument of :func:`evaluate`: true only for a training pass of a spec
    with state (batch normalisation), so that one compiled program serves every pass of any
    other spec."""
    return training and any(spec.is_state(name) for name in spec.param_shapes())


def trainable(spec: Spec, tree: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``tree`` that take a gradient (all but state: running statistics)."""
    return {k: v for k, v in tree.items() if not spec.is_state(k)}


def _numpy(tree: Any) -> Any:
    return jax.tree.map(lambda a: np.array(a, copy=True), tree)


def _mask(spec: Spec, mask: np.ndarray | None, n: int) -> jax.Array | None:
    mask = edges.dropout_mask_to_framework(FRAMEWORK, spec, edges.as_dropout_mask(spec, mask, n))
    return None if mask is None else on_device(mask)


def _targets(spec: Spec, y: np.ndarray | None, n: int) -> jax.Array:
    """Dense targets ``[n, K]`` from labels ``y``; zeros for ``None`` (a forward pass only)."""
    if y is None:
        return on_device(np.zeros((n, spec.output_dim), spec.dtype))
    targets, _ = edges.split_labels(spec.loss, y, n, spec.output_dim, spec.dtype)
    return on_device(targets)


def _input(spec: Spec, x: np.ndarray) -> jax.Array:
    return on_device(edges.as_input(spec, x))


class JaxTrainer:
    """Params and optax state as JAX arrays; a step is the compiled :func:`evaluate` (the
    gradients) then the compiled optax :func:`update`.

    A spec with dropout (``keep_prob < 1``) draws each step's dropout mask from
    ``default_rng(dropout_seed)`` unless ``step`` is given one, as the reference trainer does.
    """

    def __init__(self, spec: Spec, params: Params, optimizer: Optimizer,
                 state: State | None = None, dropout_seed: int = 0, device: str = "cpu") -> None:
        check_params(spec, params)
        self.spec, self.optimizer, self.device = spec, optimizer, device
        with scope(self.device):
            self._params = params_to_jax(spec, params)
            # the running statistics of batch normalisation take no optimiser state
            self._state = initial_state(optimizer, trainable(spec, self._params))
            if state is not None:
                self._state = self._load_state(state)
        self._dropout_rng = np.random.default_rng(dropout_seed)

    def _load_state(self, state: State) -> Any:
        """The reference's flat state in optax's state tree (``t`` -> ``count``)."""
        t, slots = edges.split_state(state)
        fields: dict[str, Any] = {
            field: {name: param_to_jax(self.spec, name, per[slot]) for name, per in slots.items()}
            for slot, field in SLOTS[self.optimizer.name].items()
        }
        if "m" in SLOTS[self.optimizer.name]:  # Adam's state: its step count too
            fields["count"] = on_device(t, np.int32)
        return optax.tree.set(self._state, **fields) if fields else self._state

    def step(self, x: np.ndarray, y: np.ndarray, dropout_mask: np.ndarray | None = None) -> float:
        mask = edges.training_mask(self.spec, len(x), dropout_mask, self._dropout_rng)
        with scope(self.device):
            _, loss, grads, _, running = evaluate(self.spec, self._params, _input(self.spec, x),
                                                  _targets(self.spec, y, len(x)),
                                                  _mask(self.spec, mask, len(x)),
                                                  batch_statistics(self.spec, True))
            stepped, self._state = update(self.optimizer, trainable(self.spec, self._params),
                                          self._state, trainable(self.spec, grads))
            self._params = {**stepped, **running}
            return float(loss)

    def predict(self, x: np.ndarray) -> np.ndarray:
        with scope(self.device):
            tensors, *_ = evaluate(self.spec, self._params, _input(self.spec, x),
                                   _targets(self.spec, None, len(x)), None)
            return np.array(_output(tensors))

    def params(self) -> Params:
        """In the spec's parameter order (a dict out of ``jax.jit`` has its keys sorted)."""
        return {k: param_from_jax(self.spec, k, self._params[k]) for k in self.spec.param_shapes()}

    def state(self) -> State:
        slots: dict[str, dict[str, np.ndarray]] = {}
        for slot, field in SLOTS[self.optimizer.name].items():
            for name, value in optax.tree.get(self._state, field).items():
                slots.setdefault(name, {})[slot] = param_from_jax(self.spec, name, value)
        adam = "m" in SLOTS[self.optimizer.name]
        t = int(optax.tree.get(self._state, "count")) if adam else None
        return edges.join_state(t, slots, list(trainable(self.spec, self.spec.param_shapes())))


class JaxBackend(Backend):
    """JAX: pure functions + ``jax.value_and_grad`` + ``jax.jit`` + ``optax``."""

    name = "jax"
    optimizer_variant = VARIANT

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def on(self, device: str) -> JaxBackend:
        """This backend on ``device`` (``cpu`` or ``cuda``: the first GPU JAX sees; matmuls and
        convolutions stay at ``HIGHEST`` precision)."""
        if device not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {device!r}; known: cpu, cuda")
        if device == "cuda":
            check_gpu()
        return self if device == self.device else JaxBackend(device)

    def _evaluate(self, spec: Spec, params: Params, x: np.ndarray, y: np.ndarray | None,
                  dropout_mask: np.ndarray | None, training: bool) -> tuple[Any, ...]:
        """:func:`evaluate` on NumPy inputs (``y`` None: zero targets), NumPy results."""
        edges.check_spec(spec, self.name)
        check_params(spec, params)
        with scope(self.device):
            return _numpy(evaluate(spec, params_to_jax(spec, params), _input(spec, x),
                                   _targets(spec, y, len(x)), _mask(spec, dropout_mask, len(x)),
                                   batch_statistics(spec, training)))

    def forward(self, spec: Spec, params: Params, x: np.ndarray, *,
                dropout_mask: np.ndarray | None = None) -> Trace:
        tensors, *_ = self._evaluate(spec, params, x, None, dropout_mask,
                                     dropout_mask is not None)
        return edges.make_trace(FRAMEWORK, spec, tensors)

    def gradients(self, spec: Spec, params: Params, x: np.ndarray, y: np.ndarray,
                  *, dropout_mask: np.ndarray | None = None) -> Gradients:
        tensors, loss, grads, deltas, _ = self._evaluate(spec, params, x, y, dropout_mask, True)
        return edges.make_gradients(
            FRAMEWORK, spec, loss, {k: grads[k] for k in spec.param_shapes()
                                    if not spec.is_state(k)},
            {k: deltas[k] for k in spec.layer_names}, _output(tensors))

    def trainer(self, spec: Spec, params: Params, optimizer: Optimizer,
                state: State | None = None, dropout_seed: int = 0) -> JaxTrainer:
        edges.check_spec(spec, self.name)
        return JaxTrainer(spec, params, optimizer, state, dropout_seed, self.device)


BACKEND = JaxBackend()
