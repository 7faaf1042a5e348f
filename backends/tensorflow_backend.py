"""The ``tensorflow`` backend: an ordinary Keras model built from an :class:`MLPSpec` or a
:class:`CNNSpec`.

- MLP: ``keras.Sequential`` of ``Dense`` layers without activation, each followed by its own
  activation layer (``Activation("sigmoid" | "tanh" | "relu" | "linear")``, or an ``Activation``
  of a small function for ``relu(z)^3`` and leaky relu), so every pre-activation ``z`` is
  observable. ``Dense.kernel`` is the canonical ``W [D_in, D_out]``;
  ``Dense.bias`` is ``b.reshape(-1)``. Layers and variables are in the spec's dtype.
- CNN (the three-framework notes): :class:`KerasCNN`, on NHWC, per block ``Conv2D`` -> activation ->
  ``MaxPool2D`` with TensorFlow's own SAME/VALID padding, then ``Flatten`` and ``Dense`` layers.
  The canonical layout is TensorFlow's: ``Conv2D.kernel`` is the HWIO ``conv<i>.W`` and
  ``fc1``'s kernel rows are already in NHWC flatten order. Dropout applies the given 0/1 mask,
  ``h * (mask / keep_prob)``: no TensorFlow RNG.
- Loss: TensorFlow's ``softmax_cross_entropy_with_logits`` (sparse for class indices) and
  ``sigmoid_cross_entropy_with_logits`` per sample, or ``0.5 * sum((o - t)^2)`` per sample;
  summed or averaged over the N samples (``mse``: ``(o - t)^2`` summed or averaged over N·K);
  plus ``0.5 * lambda * sum(W^2)`` over kernels.
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

import functools
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from nnparity.reference.activations import PRELU_INIT
from nnparity.reference.cnn_spec import CNNSpec
from nnparity.reference.family import Spec
from nnparity.reference.optim import ADAMS, Optimizer, init_state
from nnparity.reference.params import check_params
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.spec import MLPSpec

from . import edges, layout
from .cnn_graph import trace_cnn
from .determinism import import_tensorflow
from .protocol import Backend, Params, State

tf, keras = import_tensorflow()

FRAMEWORK = "keras"
VARIANT = "keras"
CACHE_SIZE = 64


class PReLU(keras.layers.PReLU):
    """``keras.layers.PReLU`` with one shared slope (``shared_axes=[1]``, 0.25 at start, as
    ``nn.PReLU()``) or one per unit (``shared=False``, Keras' default), computed as
    ``where(z > 0, z, alpha z)``: Keras' own ``relu(z) - alpha relu(-z)`` has derivative 0 at
    ``z = 0``, the convention here is ``alpha`` (torch's, the reference's)."""

    def __init__(self, dtype: str, shared: bool = True) -> None:
        super().__init__(alpha_initializer=keras.initializers.Constant(PRELU_INIT),
                         shared_axes=[1] if shared else None, dtype=dtype)

    def call(self, inputs: Any) -> Any:
        return keras.ops.where(inputs > 0, inputs, self.alpha * inputs)


def activation_layer(name: str, dtype: str, shared_slope: bool = True) -> Any:
    """The Keras layer for a reference activation name (``prelu``: one slope, or one per unit
    without ``shared_slope``)."""
    if name == "prelu":
        return PReLU(dtype, shared_slope)
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
    """``relu(z)^3`` (the Fashion-MNIST report's RELU3)."""
    r = keras.ops.relu(z)
    return r * r * r


def build_mlp(spec: MLPSpec) -> Any:
    """``keras.Sequential([Input, Dense, Activation, Dense, ...])`` in ``spec.dtype``."""
    layers: list[Any] = [keras.Input(shape=(spec.input_dim,), dtype=spec.dtype)]
    for i, (width, act) in enumerate(zip(spec.layers, spec.activations, strict=True), 1):
        layers.append(keras.layers.Dense(width, use_bias=spec.bias, dtype=spec.dtype,
                                         name=f"dense{i}"))
        layers.append(activation_layer(act, spec.dtype, spec.prelu_slopes == "shared"))
    return keras.Sequential(layers)


def build_cnn(spec: CNNSpec) -> Any:
    """A :class:`KerasCNN` with its variables created."""
    model = KerasCNN(spec)
    model.trace(tf.zeros((1, *spec.input_shape), spec.dtype))
    return model


class KerasCNN(keras.Model):
    """A :class:`CNNSpec` on NHWC: per block ``Conv2D`` -> activation -> ``MaxPool2D``
    (TensorFlow's own SAME/VALID padding), ``Flatten`` (NHWC order, so ``fc1.W`` is the canonical
    kernel), ``Dense`` layers, and explicit dropout ``h * (mask / keep_prob)`` on the output
    layer's input. ``x [N, H, W, C]`` in, logits ``[N, classes]`` out."""

    def __init__(self, spec: CNNSpec) -> None:
        super().__init__(dtype=spec.dtype)
        dtype = spec.dtype
        self.spec = spec
        self.convs = [keras.layers.Conv2D(b.filters, b.kernel, strides=b.stride,
                                          padding=b.padding.lower(), dtype=dtype, name=name)
                      for name, b in zip(spec.conv_names, spec.conv, strict=True)]
        self.conv_activations = [activation_layer(b.activation, dtype) for b in spec.conv]
        self.pools = [keras.layers.MaxPool2D(b.pool, b.pool_stride, b.pool_padding.lower(),
                                             dtype=dtype) if b.pool else None
                      for b in spec.conv]
        self.flatten = keras.layers.Flatten(dtype=dtype)
        widths = spec.dense_widths[1:]
        self.denses = [keras.layers.Dense(width, dtype=dtype, name=name)
                       for name, width in zip(spec.fc_names, widths, strict=True)]
        self.dense_activations = [activation_layer(a, dtype)
                                  for a in (*spec.dense_activations, "identity")]

    def block(self, i: int, a: Any) -> tuple[Any, Any, Any]:
        """Conv block ``i`` (0-based) on ``a [N, H, W, C]``: ``(z, h, pooled or None)``."""
        z = self.convs[i](a)
        h = self.conv_activations[i](z)
        return z, h, None if self.pools[i] is None else self.pools[i](h)

    def trace(self, x: Any, dropout_mask: Any = None) -> dict[str, Any]:
        """Every ``z``/``h`` in forward order under the reference's keys
        (:func:`cnn_graph.trace_cnn`)."""
        blocks = [functools.partial(self.block, i) for i in range(len(self.convs))]
        return trace_cnn(self.spec, x, blocks, self.flatten,
                                list(zip(self.denses, self.dense_activations, strict=True)),
                                dropout_mask)

    def call(self, x: Any, dropout_mask: Any = None) -> Any:
        return self.trace(x, dropout_mask)[f"h.{self.spec.fc_names[-1]}"]


BUILDERS: dict[str, Callable[[Any], Any]] = {"mlp": build_mlp, "cnn": build_cnn}


def build_model(spec: Spec) -> Any:
    """The Keras model for ``spec``, in ``spec.dtype`` (:func:`build_mlp`, :func:`build_cnn`)."""
    return BUILDERS[spec.family](spec)


def trace(model: Any, x: Any, dropout_mask: Any = None) -> dict[str, Any]:
    """Every ``z``/``h`` of ``model`` on ``x`` in forward order: for the MLP
    ``{"z.layer1": z_1, "h.layer1": h_1, ...}`` (each ``[N, D_l]``), for the CNN
    :meth:`KerasCNN.trace`."""
    if isinstance(model, KerasCNN):
        return model.trace(x, dropout_mask)
    out: dict[str, Any] = {}
    h = x
    for i, (dense, activation) in enumerate(zip(model.layers[0::2], model.layers[1::2],
                                                strict=True), 1):
        z = out[f"z.layer{i}"] = dense(h)
        h = out[f"h.layer{i}"] = activation(z)
    return out


def output_of(tensors: dict[str, Any]) -> Any:
    """The network output: the last ``h`` of a :func:`trace`."""
    return tensors[next(k for k in reversed(tensors) if k.startswith("h."))]


def named_variables(spec: Spec, model: Any) -> dict[str, Any]:
    """Canonical name -> Keras variable, in the spec's parameter order (``W1 -> dense1.kernel``,
    ``b1 -> dense1.bias``; ``conv1.W -> conv1.kernel``, ``fc1.b -> fc1.bias``, ...)."""
    named = {}
    if isinstance(model, KerasCNN):
        for layer in model.convs + model.denses:
            named[f"{layer.name}.W"], named[f"{layer.name}.b"] = layer.kernel, layer.bias
        return named
    for i, (dense, activation) in enumerate(zip(model.layers[0::2], model.layers[1::2],
                                                strict=True), 1):
        named[f"W{i}"] = dense.kernel
        if spec.bias:
            named[f"b{i}"] = dense.bias
        if isinstance(activation, PReLU):
            named[f"a{i}"] = activation.alpha
    return named


def loss_fn(spec: Spec, named: dict[str, Any], output: Any, labels: Any) -> Any:
    """Reduced loss of ``output [N, K]`` plus weight decay; ``labels`` are int class indices
    ``[N]`` (sparse cross-entropy) or dense targets ``[N, K]`` in the output's dtype."""
    if spec.loss == "ce" and labels.dtype.is_integer:
        per_sample = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, output)
    elif spec.loss == "ce":
        per_sample = tf.nn.softmax_cross_entropy_with_logits(labels, output)
    elif spec.loss == "bce":
        per_sample = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels, output), axis=1)
    elif spec.loss == "mse":
        # sum of squares, or their mean over all N*K entries (keras.losses.MeanSquaredError)
        squares = tf.square(output - labels)
        return _with_decay(spec, named, tf.reduce_sum(squares) if spec.reduction == "sum"
                           else tf.reduce_mean(squares))
    else:
        per_sample = 0.5 * tf.reduce_sum(tf.square(output - labels), axis=1)
    value = tf.reduce_sum(per_sample) if spec.reduction == "sum" else tf.reduce_mean(per_sample)
    return _with_decay(spec, named, value)


def _with_decay(spec: Spec, named: dict[str, Any], value: Any) -> Any:
    """``value + 0.5 * lambda * sum(W^2)`` over the weights."""
    if spec.weight_decay:
        squares = tf.add_n([tf.reduce_sum(tf.square(v)) for k, v in named.items()
                            if spec.is_weight(k)])
        value = value + 0.5 * spec.weight_decay * squares
    return value


def _labels(spec: Spec, y: np.ndarray, n: int) -> np.ndarray:
    targets, indices = edges.split_labels(spec.loss, y, n, spec.output_dim, spec.dtype)
    return targets if indices is None else indices


def keras_optimizer(optimizer: Optimizer) -> Any:
    """``keras.optimizers.SGD`` / ``SGD(momentum=mu)`` / ``Adam`` (``adamw``: with its
    decoupled ``weight_decay``, which is what ``keras.optimizers.AdamW`` is) for a reference
    :class:`Optimizer`. Raises ``ValueError`` for the ``torch`` variant."""
    edges.check_variant(optimizer, VARIANT, "tensorflow", "keras.optimizers")
    lr = float(optimizer.lr)
    if optimizer.name in ADAMS:
        decay = {"weight_decay": optimizer.decay} if optimizer.name == "adamw" else {}
        return keras.optimizers.Adam(learning_rate=lr, beta_1=optimizer.beta1,
                                     beta_2=optimizer.beta2, epsilon=optimizer.eps, **decay)
    momentum = float(optimizer.momentum) if optimizer.name == "momentum" else 0.0
    return keras.optimizers.SGD(learning_rate=lr, momentum=momentum)


def optimizer_slots(optimizer: Optimizer, keras_opt: Any) -> dict[str, list[Any]]:
    """Reference slot name -> Keras' slot variables, in the order of the built variable list."""
    if optimizer.name in ADAMS:
        return {"m": keras_opt._momentums, "v": keras_opt._velocities}
    if optimizer.name == "momentum":
        return {"v": keras_opt.momentums}
    return {}


class _Compiled:
    """A Keras model (and optionally its optimiser and ``tf.function`` training steps)."""

    def __init__(self, spec: Spec, optimizer: Optimizer | None) -> None:
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
            variable.assign(layout.to_framework(FRAMEWORK, name, params[name], self.spec))

    def train_step(self, sparse: bool) -> Any:
        """The compiled step ``(x, labels[, mask]) -> loss`` for int labels ``[N]`` (``sparse``)
        or dense targets ``[N, K]``; ``x [N, input_dim]`` (MLP) or ``[N, H, W, C]`` (CNN, which
        also takes a 0/1 dropout mask ``[N, dropout_units]``, all ones for no dropout)."""
        if sparse not in self._steps:
            spec = self.spec
            x_shape = spec.input_shape
            signature = [tf.TensorSpec([None, *x_shape], spec.dtype),
                         tf.TensorSpec([None], tf.int64) if sparse
                         else tf.TensorSpec([None, spec.output_dim], spec.dtype)]
            if spec.dropout_units:
                signature.append(tf.TensorSpec([None, spec.dropout_units], spec.dtype))
            variables = list(self.named.values())

            @tf.function(input_signature=signature)
            def step(x: Any, labels: Any, *mask: Any) -> Any:
                with tf.GradientTape() as tape:
                    output = output_of(trace(self.model, x, *mask))
                    loss = loss_fn(spec, self.named, output, labels)
                grads = tape.gradient(loss, variables)
                self.keras_opt.apply_gradients(zip(grads, variables, strict=True))
                return loss

            self._steps[sparse] = step
        return self._steps[sparse]


class _Cache:
    """Least-recently-used :class:`_Compiled` entries keyed by ``(spec, optimizer)``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Spec, Optimizer | None], list[_Compiled]] = \
            OrderedDict()

    def acquire(self, spec: Spec, optimizer: Optimizer | None,
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
    """A cached Keras model and optimiser with a compiled training step; NumPy in and out.

    A CNN with ``keep_prob < 1`` draws each step's dropout mask from
    ``default_rng(dropout_seed)`` unless ``step`` is given one, as the reference trainer does.
    """

    def __init__(self, spec: Spec, params: Params, optimizer: Optimizer,
                 state: State | None = None, dropout_seed: int = 0) -> None:
        check_params(spec, params)
        edges.check_variant(optimizer, VARIANT, "tensorflow", "keras.optimizers")
        self.spec, self.optimizer = spec, optimizer
        self._entry = _cache.acquire(spec, optimizer, owner=self)
        self._entry.assign(params)
        self._load_state(init_state(optimizer, params) if state is None else state)
        self._dropout_rng = np.random.default_rng(dropout_seed)

    def _load_state(self, state: State) -> None:
        t, slots = edges.split_state(state)
        self._entry.keras_opt.iterations.assign(t)
        names = list(self._entry.named)
        for slot, variables in optimizer_slots(self.optimizer, self._entry.keras_opt).items():
            for name, variable in zip(names, variables, strict=True):
                variable.assign(layout.to_framework(FRAMEWORK, name, slots[name][slot],
                                                    self.spec))

    def step(self, x: np.ndarray, y: np.ndarray, dropout_mask: np.ndarray | None = None) -> float:
        spec = self.spec
        x = edges.as_input(spec, x)
        mask = edges.training_mask(spec, len(x), dropout_mask, self._dropout_rng)
        if mask is None and spec.dropout_units:
            mask = np.ones((len(x), spec.dropout_units), spec.dtype)  # h * (1 / 1) == h
        labels = _labels(spec, y, x.shape[0])
        sparse = labels.dtype.kind == "i"
        inputs = (x, labels) if mask is None else (x, labels, mask)
        return float(self._entry.train_step(sparse)(*inputs))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _numpy(output_of(trace(self._entry.model, edges.as_input(self.spec, x))))

    def params(self) -> Params:
        return {k: layout.from_framework(FRAMEWORK, k, _numpy(v), self.spec)
                for k, v in self._entry.named.items()}

    def state(self) -> State:
        keras_opt, names = self._entry.keras_opt, list(self._entry.named)
        slots: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}
        for slot, variables in optimizer_slots(self.optimizer, keras_opt).items():
            for name, variable in zip(names, variables, strict=True):
                slots[name][slot] = layout.from_framework(FRAMEWORK, name, _numpy(variable),
                                                          self.spec)
        t = int(keras_opt.iterations.numpy()) if self.optimizer.name in ADAMS else None
        return edges.join_state(t, slots, names)


class TensorFlowBackend(Backend):
    """Keras on TensorFlow: Keras layers + ``tf.nn`` losses + ``GradientTape`` + Keras
    optimisers."""

    name = "tensorflow"
    optimizer_variant = VARIANT

    def _trace(self, spec: Spec, params: Params, x: np.ndarray,
               dropout_mask: np.ndarray | None) -> tuple[_Compiled, dict[str, Any]]:
        """The cached model holding ``params``, and its trace of ``x`` (call under a tape to
        differentiate)."""
        edges.check_spec(spec, self.name)
        check_params(spec, params)
        x = edges.as_input(spec, x)
        mask = edges.as_dropout_mask(spec, dropout_mask, len(x))
        entry = _cache.acquire(spec, None)
        entry.assign(params)
        return entry, trace(entry.model, x, mask)

    def forward(self, spec: Spec, params: Params, x: np.ndarray, *,
                dropout_mask: np.ndarray | None = None) -> Trace:
        _, tensors = self._trace(spec, params, x, dropout_mask)
        return edges.make_trace(FRAMEWORK, spec, {k: _numpy(t) for k, t in tensors.items()})

    def gradients(self, spec: Spec, params: Params, x: np.ndarray, y: np.ndarray,
                  *, dropout_mask: np.ndarray | None = None) -> Gradients:
        labels = tf.convert_to_tensor(_labels(spec, y, len(x)))
        with tf.GradientTape() as tape:
            entry, tensors = self._trace(spec, params, x, dropout_mask)
            output = output_of(tensors)
            loss = loss_fn(spec, entry.named, output, labels)
        zs = {layer: tensors[f"z.{layer}"] for layer in spec.layer_names}
        d_zs, d_vars = tape.gradient(loss, (zs, list(entry.named.values())))
        grads = {k: _numpy(g) for k, g in zip(entry.named, d_vars, strict=True)}
        return edges.make_gradients(FRAMEWORK, spec, float(loss), grads,
                                     {k: _numpy(d) for k, d in d_zs.items()}, _numpy(output))

    def trainer(self, spec: Spec, params: Params, optimizer: Optimizer,
                state: State | None = None, dropout_seed: int = 0) -> KerasTrainer:
        edges.check_spec(spec, self.name)
        return KerasTrainer(spec, params, optimizer, state, dropout_seed)


BACKEND = TensorFlowBackend()
