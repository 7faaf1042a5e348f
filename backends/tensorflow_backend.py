"""The ``tensorflow`` backend: one ordinary Keras model for every spec (``MLPSpec``,
``CNNSpec``, ``NetSpec``), :class:`KerasNet`, built by folding the table of
:mod:`backends.keras_layers` over ``spec.net``.

- Model: per reference layer its idiomatic Keras layer (``Dense``, ``Conv2D`` with TensorFlow's
  own SAME/VALID padding, ``MaxPooling2D``, ``Flatten``, ``PReLU``, ``Activation``), so every
  pre-activation ``z`` is observable: the trace holds the reference's keys. The canonical
  layout is Keras': NHWC maps, ``Dense.kernel`` is ``W [D_in, D_out]`` (the first one after a
  flatten already in NHWC row order), ``Conv2D.kernel`` HWIO, biases ``b.reshape(-1)``. Dropout
  applies the given 0/1 mask, ``h * (mask[:, columns] / keep_prob)``: no TensorFlow RNG. Layers
  and variables are in the spec's dtype.
- Loss: TensorFlow's ``softmax_cross_entropy_with_logits`` (sparse for class indices) and
  ``sigmoid_cross_entropy_with_logits`` per sample, or ``0.5 * sum((o - t)^2)`` per sample;
  summed or averaged over the N samples (``mse``: ``(o - t)^2`` summed or averaged over N·K);
  plus ``0.5 * lambda * sum(W^2)`` over kernels.
  Not ``keras.losses``: given ``from_logits=True`` and an output made by a Keras sigmoid or
  softmax activation, Keras silently takes that activation's *input* as the logits (with only a
  warning), so a net with a sigmoid output layer would get a different loss (a test shows it).
- Gradients and deltas ``dL/dz`` from one ``tf.GradientTape``.
- Steps by ``keras.optimizers.SGD`` (momentum 0 or mu) and ``keras.optimizers.Adam``: the
  reference's ``"keras"`` optimiser variant, under ``tf.function`` (without AutoGraph: the step
  has no Python control flow on tensors, and converting Keras' optimiser code cost a quarter of
  its tracing). Keras rounds the learning rate, momentum and Adam's betas (in the bias
  corrections) to float32 even for float64 variables; the reference's ``"keras"`` variant
  reproduces that (see ``reference/optim.py``).

Keras models and compiled training steps are cached per spec (and optimiser), so the parity suite
and ``Backend.step`` in a loop trace each training step once; a trainer owns its cached model while
it is alive, so two live trainers never share variables. A trainer takes over the model that
``forward``/``gradients`` built for its spec, when one is free, instead of building another.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from nnparity.reference.family import Spec
from nnparity.reference.optim import ADAMS, Optimizer, init_state
from nnparity.reference.params import check_params, trainable
from nnparity.reference.results import Gradients, Trace

from . import edges, layout
from .determinism import import_tensorflow
from .keras_layers import keras_layer, trace_chain, variables_of
from .precision import tensorflow_device
from .protocol import Backend, Params, State

tf, keras = import_tensorflow()

FRAMEWORK = "keras"
VARIANT = "keras"
CACHE_SIZE = 64


class KerasNet(keras.Model):
    """``spec.net`` folded over :data:`keras_layers.LAYERS`: one Keras layer per reference
    layer, in order, on the canonical layout (NHWC maps, ``Dense.kernel [D_in, D_out]``,
    HWIO ``Conv2D.kernel``). ``x [N, *spec.input_shape]`` in, the output ``[N, K]`` out."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(dtype=spec.dtype)
        self.spec = spec
        self.stack = [keras_layer(layer, shape, spec)
                      for layer, shape in zip(spec.net, spec.layer_shapes, strict=False)]

    def trace(self, x: Any, dropout_mask: Any = None,
              training: bool = False) -> tuple[Any, dict[str, Any]]:
        """``(output, tensors)``: every ``z``/``h`` in forward order under the reference's keys
        (``z.<name>`` and ``h.<name>`` of a dense/conv layer, ``h.<name>`` overwritten by its
        activation, ``h.<name>`` of a pool, flatten or dropout layer, a dropout's only with
        ``dropout_mask [N, dropout_units]`` unless ``traced_without_mask``). ``training``:
        batch normalisation on the batch's statistics (updating the moving ones)."""
        tensors: dict[str, Any] = {}
        h = trace_chain(self.spec.net, self.stack, x, dropout_mask, tensors, training)
        return h, tensors

    def call(self, x: Any, dropout_mask: Any = None) -> Any:
        return self.trace(x, dropout_mask)[0]

    def named_variables(self) -> dict[str, Any]:
        """Canonical name -> Keras variable, in the spec's parameter order (``W1 ->
        layer1.kernel``, ``conv1.b -> conv1.bias``, ``a1 -> PReLU.alpha``, ...)."""
        return {name: variable
                for layer, built in zip(self.spec.net, self.stack, strict=True)
                for name, variable in variables_of(layer, built).items()}


def build_model(spec: Spec) -> KerasNet:
    """The :class:`KerasNet` of ``spec`` with its variables created, in ``spec.dtype``: its
    layers run once on a zero batch, each building itself; calling the model would first trace
    it symbolically (Keras' ``compute_output_spec``), about 40 ms a model."""
    model = KerasNet(spec)
    model.trace(tf.zeros((1, *spec.input_shape), spec.dtype))
    model.built = True
    return model


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

    def __init__(self, spec: Spec, optimizer: Optimizer | None,
                 model: KerasNet | None = None) -> None:
        self.spec, self.optimizer = spec, optimizer
        self.model = model or build_model(spec)
        self.named = self.model.named_variables()
        self.trained = trainable(spec, self.named)  # the moving statistics left out
        self.owner: Callable[[], object | None] = lambda: None
        self.keras_opt = None
        self._steps: dict[bool, Any] = {}
        if optimizer is not None:
            self.keras_opt = keras_optimizer(optimizer)
            self.keras_opt.build(list(self.trained.values()))

    def assign(self, params: Params) -> None:
        for name, variable in self.named.items():
            to_variable(variable, self.spec, name, params[name])

    def train_step(self, sparse: bool) -> Any:
        """The compiled step ``(x, labels[, mask]) -> loss`` for int labels ``[N]`` (``sparse``)
        or dense targets ``[N, K]``; ``x [N, *input_shape]``; a spec with dropout also takes a
        0/1 dropout mask ``[N, dropout_units]``, all ones for no dropout."""
        if sparse not in self._steps:
            spec = self.spec
            x_shape = spec.input_shape
            signature = [tf.TensorSpec([None, *x_shape], spec.dtype),
                         tf.TensorSpec([None], tf.int64) if sparse
                         else tf.TensorSpec([None, spec.output_dim], spec.dtype)]
            if spec.dropout_units:
                signature.append(tf.TensorSpec([None, spec.dropout_units], spec.dtype))
            variables = list(self.trained.values())

            @tf.function(input_signature=signature, autograph=False)
            def step(x: Any, labels: Any, *mask: Any) -> Any:
                with tf.GradientTape() as tape:
                    output = self.model.trace(x, *mask, training=True)[0]
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
            entry = _Compiled(spec, optimizer, self._adopt(spec) if optimizer else None)
            entries.append(entry)
        entry.owner = weakref.ref(owner) if owner is not None else (lambda: None)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return entry

    def _adopt(self, spec: Spec) -> KerasNet | None:
        """The model of a free optimiser-less entry of ``spec`` (the one ``forward`` and
        ``gradients`` used), taken out of the cache, or None: a trainer that follows them on the
        same spec (the parity run) builds no second model. Its variables are assigned anew."""
        entries = self._entries.get((spec, None), [])
        free = next((e for e in entries if e.owner() is None), None)
        if free is None:
            return None
        entries.remove(free)
        return free.model


_cache = _Cache(CACHE_SIZE)


def to_variable(variable: Any, spec: Spec, name: str, value: np.ndarray) -> None:
    """Assign the canonical parameter (or same-shaped optimiser slot) ``name`` to its Keras
    ``variable``: the ``keras`` layout, in the variable's shape (a PReLU's ``alpha`` on a map
    is ``(1, 1, C)``)."""
    variable.assign(np.reshape(layout.to_framework(FRAMEWORK, name, value, spec),
                               variable.shape))


def _numpy(t: Any) -> np.ndarray:
    """A NumPy copy of an eager tensor or a Keras variable."""
    return np.array(t.numpy(), copy=True)


class KerasTrainer:
    """A cached Keras model and optimiser with a compiled training step; NumPy in and out.

    A spec with ``keep_prob < 1`` draws each step's dropout mask from
    ``default_rng(dropout_seed)`` unless ``step`` is given one, as the reference trainer does.
    """

    def __init__(self, spec: Spec, params: Params, optimizer: Optimizer,
                 state: State | None = None, dropout_seed: int = 0,
                 tf_device: str = "/CPU:0") -> None:
        check_params(spec, params)
        edges.check_variant(optimizer, VARIANT, "tensorflow", "keras.optimizers")
        self.spec, self.optimizer, self.tf_device = spec, optimizer, tf_device
        with tf.device(tf_device):
            self._entry = _cache.acquire(spec, optimizer, owner=self)
            self._entry.assign(params)
            self._load_state(init_state(optimizer, trainable(spec, params)) if state is None
                             else state)
        self._dropout_rng = np.random.default_rng(dropout_seed)

    def _load_state(self, state: State) -> None:
        t, slots = edges.split_state(state)
        self._entry.keras_opt.iterations.assign(t)
        names = list(self._entry.trained)
        for slot, variables in optimizer_slots(self.optimizer, self._entry.keras_opt).items():
            for name, variable in zip(names, variables, strict=True):
                to_variable(variable, self.spec, name, slots[name][slot])

    def step(self, x: np.ndarray, y: np.ndarray, dropout_mask: np.ndarray | None = None) -> float:
        spec = self.spec
        x = edges.as_input(spec, x)
        mask = edges.training_mask(spec, len(x), dropout_mask, self._dropout_rng)
        if mask is None and spec.dropout_units:
            mask = np.ones((len(x), spec.dropout_units), spec.dtype)  # h * (1 / 1) == h
        labels = _labels(spec, y, x.shape[0])
        sparse = labels.dtype.kind == "i"
        inputs = (x, labels) if mask is None else (x, labels, mask)
        with tf.device(self.tf_device):
            return float(self._entry.train_step(sparse)(*inputs))

    def predict(self, x: np.ndarray) -> np.ndarray:
        with tf.device(self.tf_device):
            return _numpy(self._entry.model(edges.as_input(self.spec, x)))

    def params(self) -> Params:
        return {k: layout.from_framework(FRAMEWORK, k, _numpy(v), self.spec)
                for k, v in self._entry.named.items()}

    def state(self) -> State:
        keras_opt, names = self._entry.keras_opt, list(self._entry.trained)
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

    def __init__(self, device: str = "cpu") -> None:
        self.device, self.tf_device = device, tensorflow_device(device)

    def on(self, device: str) -> TensorFlowBackend:
        """This backend computing on ``device``: ``cuda`` is TensorFlow's first GPU when
        ``tf.config.list_physical_devices('GPU')`` lists one, else ``ValueError`` saying so."""
        return self if device == self.device else TensorFlowBackend(device)

    def _trace(self, spec: Spec, params: Params, x: np.ndarray,
               dropout_mask: np.ndarray | None,
               training: bool) -> tuple[_Compiled, Any, dict[str, Any]]:
        """The cached model holding ``params``, and its output and trace of ``x`` in training
        or evaluation mode (call under a tape to differentiate)."""
        edges.check_spec(spec, self.name)
        check_params(spec, params)
        x = edges.as_input(spec, x)
        mask = edges.as_dropout_mask(spec, dropout_mask, len(x))
        entry = _cache.acquire(spec, None)
        entry.assign(params)
        return entry, *entry.model.trace(x, mask, training)

    def forward(self, spec: Spec, params: Params, x: np.ndarray, *,
                dropout_mask: np.ndarray | None = None) -> Trace:
        with tf.device(self.tf_device):
            _, _, tensors = self._trace(spec, params, x, dropout_mask, dropout_mask is not None)
        return edges.make_trace(FRAMEWORK, spec, {k: _numpy(t) for k, t in tensors.items()})

    def gradients(self, spec: Spec, params: Params, x: np.ndarray, y: np.ndarray,
                  *, dropout_mask: np.ndarray | None = None) -> Gradients:
        labels = tf.convert_to_tensor(_labels(spec, y, len(x)))
        with tf.device(self.tf_device):
            with tf.GradientTape() as tape:
                entry, output, tensors = self._trace(spec, params, x, dropout_mask, True)
                loss = loss_fn(spec, entry.named, output, labels)
            zs = {layer: tensors[f"z.{layer}"] for layer in spec.layer_names}
            d_zs, d_vars = tape.gradient(loss, (zs, list(entry.trained.values())))
        grads = {k: _numpy(g) for k, g in zip(entry.trained, d_vars, strict=True)}
        return edges.make_gradients(FRAMEWORK, spec, float(loss), grads,
                                     {k: _numpy(d) for k, d in d_zs.items()}, _numpy(output))

    def trainer(self, spec: Spec, params: Params, optimizer: Optimizer,
                state: State | None = None, dropout_seed: int = 0) -> KerasTrainer:
        edges.check_spec(spec, self.name)
        return KerasTrainer(spec, params, optimizer, state, dropout_seed, self.tf_device)


BACKEND = TensorFlowBackend()
