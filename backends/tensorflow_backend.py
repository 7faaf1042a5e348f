"""The ``tensorflow`` backend: an ordinary Keras model built from an :class:`MLPSpec`.

- Model: ``keras.Sequential`` of ``Dense`` layers without activation, each followed by its own
  activation layer (``Activation("sigmoid" | "tanh" | "relu" | "linear")``, or an ``Activation``
  of a small function for ``relu(z)^3`` and leaky relu), so every pre-activation ``z`` is
  observable. ``Dense.kernel`` is the canonical ``W [D_in, D_out]``;
  ``Dense.bias`` is ``b.reshape(-1)``. Layers and variables are in the spec's dtype.
- Loss: TensorFlow's ``softmax_cross_entropy_with_logits`` (sparse for class indices) and
  ``sigmoid_cross_entropy_with_logits`` per sample, or ``0.5 * sum((o - t)^2)`` per sample;
  summed or averaged over the N samples; plus ``0.5 * lambda * sum(W^2)`` over kernels.
  Not ``keras.losses``: given ``from_logits=True`` and an output made by a Keras sigmoid or
  softmax activation, Keras silently takes that activation's *input* as the logits (with only a
  warning), so a net with a sigmoid output layer would get a different loss (a test shows it).
- Gradients and deltas ``dL/dz`` from one ``tf.GradientTape``.
- Steps by ``keras.optimizers.SGD`` (momentum 0 or mu) and ``keras.optimizers.Adam``: the
  reference's ``"keras"`` optimiser variant, under ``tf.function``. Keras rounds the learning
  rate, momentum and Adam's betas (in the bias corrections) to float32 even for float64
  variables; the reference's ``"keras"`` variant reproduces that (see ``reference/optim.py``).

Keras models and compiled training steps are cached per spec (and optimiser), so the parity suite
and ``Backend.step`` in a loop trace each training step once; a trainer owns its cached model while
it is alive, so two live trainers never share variables.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from nnparity.reference.mlp import check_params
from nnparity.reference.optim import Optimizer, init_state
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.spec import MLPSpec

from . import layout
from .determinism import import_tensorflow
from .protocol import Backend, Params, State

tf, keras = import_tensorflow()

FRAMEWORK = "keras"
VARIANT = "keras"
CACHE_SIZE = 64


def activation_layer(name: str, dtype: str) -> Any:
    """The Keras layer for a reference activation name."""
    builtin = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "identity": "linear",
               "relu3": _relu3, "leaky_relu": _leaky_relu}
    if name not in builtin:
        raise ValueError(f"the tensorflow backend has no activation {name!r}")
    return keras.layers.Activation(builtin[name], dtype=dtype)


def _leaky_relu(z: Any) -> Any:
    """``z if z > 0 else 0.01 z`` (derivative 0.01 at 0).

    Not ``keras.layers.LeakyReLU``: its TensorFlow op keeps ``alpha`` as a float32 attribute, so
    in float64 the slope is ``0.009999999776``, 2.2e-9 relative off (a test shows it).
    """
    return keras.ops.where(z > 0, z, 0.01 * z)


def _relu3(z: Any) -> Any:
    """``relu(z)^3`` (seed 004's RELU3)."""
    r = keras.ops.relu(z)
    return r * r * r


def build_model(spec: MLPSpec) -> Any:
    """``keras.Sequential([Input, Dense, Activation, Dense, ...])`` in ``spec.dtype``."""
    layers: list[Any] = [keras.Input(shape=(spec.input_dim,), dtype=spec.dtype)]
    for i, (width, act) in enumerate(zip(spec.layers, spec.activations, strict=True), 1):
        layers.append(keras.layers.Dense(width, use_bias=spec.bias, dtype=spec.dtype,
                                         name=f"dense{i}"))
        layers.append(activation_layer(act, spec.dtype))
    return keras.Sequential(layers)


def trace(model: Any, x: Any) -> tuple[list[Any], list[Any]]:
    """``([z_1..z_L], [h_1..h_L])`` of the Sequential ``model``, each ``[N, D_l]``."""
    zs, hs = [], []
    h = x
    for dense, activation in zip(model.layers[0::2], model.layers[1::2], strict=True):
        z = dense(h)
        h = activation(z)
        zs.append(z)
        hs.append(h)
    return zs, hs


def named_variables(spec: MLPSpec, model: Any) -> dict[str, Any]:
    """Canonical name -> Keras variable (``W1 -> dense1.kernel``, ``b1 -> dense1.bias``, ...)."""
    named = {}
    for i, dense in enumerate(model.layers[0::2], 1):
        named[f"W{i}"] = dense.kernel
        if spec.bias:
            named[f"b{i}"] = dense.bias
    return named


def loss_fn(spec: MLPSpec, named: dict[str, Any], output: Any, labels: Any) -> Any:
    """Reduced loss of ``output [N, K]`` plus weight decay; ``labels`` are int class indices
    ``[N]`` (sparse cross-entropy) or dense targets ``[N, K]`` in the output's dtype."""
    if spec.loss == "ce" and labels.dtype.is_integer:
        per_sample = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, output)
    elif spec.loss == "ce":
        per_sample = tf.nn.softmax_cross_entropy_with_logits(labels, output)
    elif spec.loss == "bce":
        per_sample = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels, output), axis=1)
    else:
        per_sample = 0.5 * tf.reduce_sum(tf.square(output - labels), axis=1)
    value = tf.reduce_sum(per_sample) if spec.reduction == "sum" else tf.reduce_mean(per_sample)
    if spec.weight_decay:
        squares = tf.add_n([tf.reduce_sum(tf.square(v)) for k, v in named.items()
                            if spec.is_weight(k)])
        value = value + 0.5 * spec.weight_decay * squares
    return value


def _labels(spec: MLPSpec, y: np.ndarray, n: int) -> np.ndarray:
    targets, indices = layout.split_labels(spec.loss, y, n, spec.output_dim, spec.dtype)
    return targets if indices is None else indices


def keras_optimizer(optimizer: Optimizer) -> Any:
    """``keras.optimizers.SGD`` / ``SGD(momentum=mu)`` / ``Adam`` for a reference
    :class:`Optimizer`. Raises ``ValueError`` for the ``torch`` variant."""
    layout.check_variant(optimizer, VARIANT, "tensorflow", "keras.optimizers")
    lr = float(optimizer.lr)
    if optimizer.name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, beta_1=optimizer.beta1,
                                     beta_2=optimizer.beta2, epsilon=optimizer.eps)
    momentum = float(optimizer.momentum) if optimizer.name == "momentum" else 0.0
    return keras.optimizers.SGD(learning_rate=lr, momentum=momentum)


def optimizer_slots(optimizer: Optimizer, keras_opt: Any) -> dict[str, list[Any]]:
    """Reference slot name -> Keras' slot variables, in the order of the built variable list."""
    if optimizer.name == "adam":
        return {"m": keras_opt._momentums, "v": keras_opt._velocities}
    if optimizer.name == "momentum":
        return {"v": keras_opt.momentums}
    return {}


class _Compiled:
    """A Keras model (and optionally its optimiser and ``tf.function`` training steps)."""

    def __init__(self, spec: MLPSpec, optimizer: Optimizer | None) -> None:
        self.spec, self.optimizer = spec, optimizer
        self.model = build_model(spec)
        self.named = named_variables(spec, self.model)
        self.owner: Callable[[], object | None] = lambda: None
        self.keras_opt = None
        self._steps: dict[bool, Any] = {}
        if optimizer is not None:
            self.keras_opt = keras_optimizer(optimizer)
            self.keras_opt.build(list(self.named.values()))

    def assign(self, params: Params) -> None:
        for name, variable in self.named.items():
            variable.assign(layout.to_framework(FRAMEWORK, name, params[name]))

    def train_step(self, sparse: bool) -> Any:
        """The compiled step for int labels ``[N]`` (``sparse``) or dense targets ``[N, K]``."""
        if sparse not in self._steps:
            spec = self.spec
            x_spec = tf.TensorSpec([None, spec.input_dim], spec.dtype)
            y_spec = tf.TensorSpec([None], tf.int64) if sparse \
                else tf.TensorSpec([None, spec.output_dim], spec.dtype)
            variables = list(self.named.values())

            @tf.function(input_signature=[x_spec, y_spec])
            def step(x: Any, labels: Any) -> Any:
                with tf.GradientTape() as tape:
                    loss = loss_fn(spec, self.named, self.model(x, training=True), labels)
                grads = tape.gradient(loss, variables)
                self.keras_opt.apply_gradients(zip(grads, variables, strict=True))
                return loss

            self._steps[sparse] = step
        return self._steps[sparse]


class _Cache:
    """Least-recently-used :class:`_Compiled` entries keyed by ``(spec, optimizer)``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[MLPSpec, Optimizer | None], list[_Compiled]] = \
            OrderedDict()

    def acquire(self, spec: MLPSpec, optimizer: Optimizer | None,
                owner: object | None = None) -> _Compiled:
        """A free entry for the key (made if needed), owned by ``owner`` while it lives."""
        key = (spec, optimizer)
        entries = self._entries.setdefault(key, [])
        self._entries.move_to_end(key)
        entry = next((e for e in entries if e.owner() is None), None)
        if entry is None:
            entry = _Compiled(spec, optimizer)
            entries.append(entry)
        entry.owner = weakref.ref(owner) if owner is not None else (lambda: None)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return entry


_cache = _Cache(CACHE_SIZE)


def _numpy(t: Any) -> np.ndarray:
    """A NumPy copy of an eager tensor or a Keras variable."""
    return np.array(t.numpy(), copy=True)


class KerasTrainer:
    """A cached Keras model and optimiser with a compiled training step; NumPy in and out."""

    def __init__(self, spec: MLPSpec, params: Params, optimizer: Optimizer,
                 state: State | None = None) -> None:
        check_params(spec, params)
        layout.check_variant(optimizer, VARIANT, "tensorflow", "keras.optimizers")
        self.spec, self.optimizer = spec, optimizer
        self._entry = _cache.acquire(spec, optimizer, owner=self)
        self._entry.assign(params)
        self._load_state(init_state(optimizer, params) if state is None else state)

    def _load_state(self, state: State) -> None:
        t, slots = layout.split_state(state)
        self._entry.keras_opt.iterations.assign(t)
        names = list(self._entry.named)
        for slot, variables in optimizer_slots(self.optimizer, self._entry.keras_opt).items():
            for name, variable in zip(names, variables, strict=True):
                variable.assign(layout.to_framework(FRAMEWORK, name, slots[name][slot]))

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        x = layout.as_input(self.spec, x)
        labels = _labels(self.spec, y, x.shape[0])
        sparse = labels.dtype.kind == "i"
        return float(self._entry.train_step(sparse)(x, labels))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _numpy(self._entry.model(layout.as_input(self.spec, x)))

    def params(self) -> Params:
        return {k: layout.from_framework(FRAMEWORK, k, _numpy(v))
                for k, v in self._entry.named.items()}

    def state(self) -> State:
        keras_opt, names = self._entry.keras_opt, list(self._entry.named)
        slots: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}
        for slot, variables in optimizer_slots(self.optimizer, keras_opt).items():
            for name, variable in zip(names, variables, strict=True):
                slots[name][slot] = layout.from_framework(FRAMEWORK, name, _numpy(variable))
        t = int(keras_opt.iterations.numpy()) if self.optimizer.name == "adam" else None
        return layout.join_state(t, slots, names)


class TensorFlowBackend(Backend):
    """Keras on TensorFlow: ``Sequential`` + Keras losses + ``GradientTape`` + Keras optimisers."""

    name = "tensorflow"
    optimizer_variant = VARIANT

    def _model(self, spec: MLPSpec, params: Params, dropout_mask: np.ndarray | None) -> _Compiled:
        layout.check_mlp(spec, self.name, dropout_mask)
        check_params(spec, params)
        entry = _cache.acquire(spec, None)
        entry.assign(params)
        return entry

    def forward(self, spec: MLPSpec, params: Params, x: np.ndarray, *,
                dropout_mask: np.ndarray | None = None) -> Trace:
        entry = self._model(spec, params, dropout_mask)
        zs, hs = trace(entry.model, layout.as_input(spec, x))
        return layout.make_trace(spec.layer_names, [_numpy(z) for z in zs],
                                 [_numpy(h) for h in hs])

    def gradients(self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, *,
                  dropout_mask: np.ndarray | None = None) -> Gradients:
        entry = self._model(spec, params, dropout_mask)
        x = layout.as_input(spec, x)
        labels = tf.convert_to_tensor(_labels(spec, y, x.shape[0]))
        variables = list(entry.named.values())
        with tf.GradientTape() as tape:
            zs, hs = trace(entry.model, x)
            loss = loss_fn(spec, entry.named, hs[-1], labels)
        d_zs, d_vars = tape.gradient(loss, (zs, variables))
        grads = {k: _numpy(g) for k, g in zip(entry.named, d_vars, strict=True)}
        return layout.make_gradients(FRAMEWORK, list(entry.named), float(loss), grads,
                                     spec.layer_names, [_numpy(d) for d in d_zs],
                                     _numpy(hs[-1]))

    def trainer(self, spec: MLPSpec, params: Params, optimizer: Optimizer,
                state: State | None = None) -> KerasTrainer:
        layout.check_mlp(spec, self.name)
        return KerasTrainer(spec, params, optimizer, state)


BACKEND = TensorFlowBackend()
