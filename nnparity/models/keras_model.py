"""A user's ``keras.Model`` (Sequential or a functional chain), mapped onto a spec and run for
the check.

Tracing: the model's layers are called one after another on a probe batch, and the result must
equal ``model(x)`` (otherwise the model is not a chain and is refused). A Dense or Conv2D with an
``activation=`` is two layers of the chain: its pre-activation ``z`` is observed by calling the
user's layer with its activation swapped for the identity, then the user's own activation
function gives ``h`` (a ``tf.custom_gradient`` function included: its gradient is what gets
checked). Deltas and gradients come from one ``tf.GradientTape``; steps are the user's
optimiser's ``apply_gradients``, under a ``tf.device`` scope (the CPU, or TensorFlow's first GPU
for ``--device cuda``). A Dropout layer runs with ``training=True`` and its mask is read
from its output (``output != 0``) and given to the reference.

A functional model with ``keras.layers.Add`` is run along its graph: each step takes the outputs
of the steps that the layer's inbound node names (its ``sources``), and a sum of a chain's input
and its output (or a projection of it) is a residual block (:func:`.structure.residuals`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnparity.backends import edges, layout
from nnparity.backends.determinism import import_tensorflow
from nnparity.errors import InputError
from nnparity.reference.losses import as_targets
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace

from .guard import user_code
from .source import ModelSource
from .structure import Layer, Structure, build, explicit_same, named_activation, unsupported

tf, keras = import_tensorflow()

FRAMEWORK = "keras"
ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "linear": "identity"}
REDUCTIONS = {"sum_over_batch_size": "mean", "sum": "sum"}

Step = tuple[Layer, Callable[[Any, bool], Any], Any]  # (layer, call(x, training), variable owner)


def _gelu_form(fn: Callable) -> str | None:
    """GELU's form (``none``, ``tanh``) when ``fn`` is Keras' gelu or a ``functools.partial``
    of it setting only ``approximate``; None otherwise. The defaults differ:
    ``keras.activations.gelu`` (``"gelu"``) is exact, ``keras.ops.gelu`` the tanh form."""
    keywords: dict[str, Any] = {}
    if isinstance(fn, functools.partial) and not fn.args:
        fn, keywords = fn.func, dict(fn.keywords)
    default = next((tanh for gelu, tanh in ((keras.activations.gelu, False),
                                            (keras.ops.gelu, True)) if fn is gelu), None)
    if default is None or set(keywords) - {"approximate"}:
        return None
    return "tanh" if keywords.get("approximate", default) else "none"


def _function_layer(label: str, fn: Callable, names: dict[str, str]) -> Layer:
    form = _gelu_form(fn)
    if form is not None:
        return Layer("activation", f"{label}: gelu", {"name": "gelu", "approximate": form})
    name = getattr(fn, "__name__", type(fn).__name__)
    if name in names:
        return named_activation(f"{label}: {name}", names[name])
    if name == "softmax":
        return Layer("softmax", f"{label}: softmax")
    if name in ACTIVATIONS:
        return Layer("activation", f"{label}: {name}", {"name": ACTIVATIONS[name]})
    raise unsupported(f"{label} (activation {name})")


KERAS_ATTRIBUTES = {"weight": "kernel", "bias": "bias", "slope": "alpha", "gamma": "gamma",
                    "beta": "beta", "mean": "moving_mean", "var": "moving_variance",
                    "scale": "gamma", "shift": "beta"}
"""A :class:`Structure` parameter role -> the Keras layer's attribute holding it."""


def _last_axis(layer: Any) -> bool:
    """Whether a ``BatchNormalization`` normalises its input's last axis."""
    if layer.axis == -1:
        return True
    try:
        return layer.axis == len(layer.input.shape) - 1
    except (AttributeError, ValueError):  # a layer never called on a symbolic input
        return False


def _batchnorm(label: str, layer: Any) -> Layer:
    """``BatchNormalization`` over the last axis with ``center`` and ``scale``: Keras'
    ``momentum`` weighs the old value (as the reference's) and the moving variance is biased."""
    if not _last_axis(layer):
        raise unsupported(f"{label} (axis {layer.axis}: the reference normalises the last axis)")
    if not layer.center or not layer.scale or getattr(layer, "renorm", False):
        raise unsupported(f"{label} (center=False, scale=False or renorm: the reference's "
                          "batchnorm has gamma and beta)")
    return Layer("batchnorm", label, {"momentum": float(layer.momentum),
                                      "epsilon": float(layer.epsilon), "variance": "biased"})


def _square(value: Any, label: str, what: str) -> int:
    a, b = tuple(value)
    if a != b:
        raise unsupported(f"{label} (non-square {what} {tuple(value)})")
    return int(a)


def _steps(layer: Any, names: dict[str, str]) -> list[Step]:
    """The chain steps of one Keras layer: one, or two for a Dense/Conv2D with an activation."""
    label = f"{layer.name} ({type(layer).__name__})"
    kind = type(layer).__name__
    if kind in names and names[kind] == "dropout":  # the user's own dropout layer, ``rate``
        return [(Layer("dropout", label, {"keep_prob": 1.0 - float(getattr(layer, "rate", 0))}),
                 lambda x, training: layer(x, training=training), layer)]
    if kind in names:
        return [(named_activation(label, names[kind]),
                 lambda x, training: layer(x), layer)]
    layers = keras.layers
    if isinstance(layer, layers.Dense | layers.Conv2D):
        if isinstance(layer, layers.Dense):
            info = {"in": int(layer.kernel.shape[0]), "out": layer.units, "bias": layer.use_bias}
            main = Layer("dense", label, info)
        else:
            if layer.data_format != "channels_last" or tuple(layer.dilation_rate) != (1, 1) \
                    or layer.groups != 1:
                raise unsupported(f"{label} (channels_first, dilation or groups)")
            info = {"cin": int(layer.kernel.shape[2]), "cout": layer.filters,
                    "kernel": _square(layer.kernel_size, label, "kernel"),
                    "stride": _square(layer.strides, label, "strides"),
                    "padding": layer.padding.upper(), "bias": layer.use_bias}
            main = Layer("conv", label, info)
        activation = layer.activation

        def linear(x: Any, training: bool) -> Any:
            layer.activation = keras.activations.linear
            try:
                return layer(x)
            finally:
                layer.activation = activation
        steps: list[Step] = [(main, linear, layer)]
        if getattr(activation, "__name__", "") != "linear":
            steps.append((_function_layer(label, activation, names),
                          lambda z, training: activation(z), None))
        return steps
    call: Callable[[Any, bool], Any] = lambda x, training: layer(x)  # noqa: E731
    if isinstance(layer, layers.MaxPooling2D):
        info = {"window": _square(layer.pool_size, label, "pool"),
                "stride": _square(layer.strides, label, "strides"),
                "padding": layer.padding.upper()}
        described = Layer("pool", label, info)
    elif isinstance(layer, layers.AveragePooling2D):  # SAME: the mean of the real cells
        described = Layer("avgpool", label, {"window": _square(layer.pool_size, label, "pool"),
                                             "stride": _square(layer.strides, label, "strides"),
                                             "padding": layer.padding.upper()})
    elif isinstance(layer, layers.ZeroPadding2D) and layer.data_format == "channels_last":
        (top, bottom), (left, right) = layer.padding
        shape = tuple(getattr(getattr(layer, "input", None), "shape", ()))
        described = Layer("pad", label, {"amounts": (top, bottom, left, right),
                                         "hw": shape[1:3]}) if len(shape) == 4 \
            else Layer("unsupported", label)
    elif isinstance(layer, layers.GlobalAveragePooling2D):
        if layer.data_format != "channels_last" or layer.keepdims:
            raise unsupported(f"{label} (channels_first or keepdims)")
        described = Layer("global_avgpool", label)
    elif isinstance(layer, layers.LayerNormalization):
        described = _layernorm(label, layer)
    elif isinstance(layer, layers.BatchNormalization):
        described = _batchnorm(label, layer)
        call = lambda x, training: layer(x, training=training)  # noqa: E731
    elif isinstance(layer, layers.Flatten):
        described = Layer("flatten", label)
    elif isinstance(layer, layers.Dropout):
        described = Layer("dropout", label, {"keep_prob": 1.0 - layer.rate})
        call = lambda x, training: layer(x, training=training)  # noqa: E731
    elif isinstance(layer, layers.Activation):
        described = _function_layer(label, layer.activation, names)
    elif isinstance(layer, layers.Softmax):
        described = Layer("softmax", label)
    elif isinstance(layer, layers.Add):
        described = Layer("add", label)  # called on the list of its inputs (``_run``)
    elif isinstance(layer, layers.ReLU) and layer.max_value is None \
            and not layer.negative_slope and not layer.threshold:
        described = Layer("activation", label, {"name": "relu"})
    elif isinstance(layer, layers.LeakyReLU) and abs(layer.negative_slope - 0.01) < 1e-12:
        described = Layer("activation", label, {"name": "leaky_relu"})
    elif isinstance(layer, layers.PReLU):
        size = int(np.prod(layer.alpha.shape))
        if size != 1 and len(layer.alpha.shape) != 1:
            raise unsupported(f"{label} (slopes of shape {tuple(layer.alpha.shape)}: the "
                              "reference has one shared slope or one per unit of a dense layer)")
        described = Layer("activation", label, {"name": "prelu",
                                                "slopes": "shared" if size == 1 else "unit"})
    else:
        raise unsupported(label)
    return [(described, call, layer)]


def _layernorm(label: str, layer: Any) -> Layer:
    """``LayerNormalization()`` over the last axis of a flat ``[N, D]`` input, with its
    ``gamma`` and ``beta`` (``center``, ``scale``; no RMS scaling)."""
    shape = tuple(layer.gamma.shape) if getattr(layer, "gamma", None) is not None else ()
    axes = layer.axis if isinstance(layer.axis, list | tuple) else [layer.axis]
    if len(shape) != 1 or list(axes) not in ([-1], [1]) or not layer.center \
            or not layer.scale or getattr(layer, "rms_scaling", False):
        raise unsupported(f"{label} (axis {layer.axis}, center {layer.center}, scale "
                          f"{layer.scale}: the reference normalises the features of a flat "
                          "[N, D] input, with gamma and beta)")
    return Layer("layernorm", label, {"d": shape[0], "epsilon": float(layer.epsilon)})


STOP_GRADIENT = "tf.stop_gradient"


class _StopGradientWatch:
    """While active, ``tf.stop_gradient`` (which ``keras.ops.stop_gradient`` calls) records
    that it ran: ``used``."""

    def __init__(self) -> None:
        self.used = False
        self.original = tf.stop_gradient

    def _watch(self, *args: Any, **kwargs: Any) -> Any:
        self.used = True
        return self.original(*args, **kwargs)

    def __enter__(self) -> _StopGradientWatch:
        tf.stop_gradient = self._watch
        return self

    def __exit__(self, *exc: object) -> None:
        tf.stop_gradient = self.original


def _loss(source: ModelSource, dtype: str) -> tuple[str, str, Callable[[Any, Any], Any], bool]:
    """``(reference loss, reduction, loss(targets, output), sparse labels?)``; a loss given by
    name computes in the model's ``dtype``."""
    loss, losses = source.loss, keras.losses
    if isinstance(loss, str):
        reduction = {"mean": "sum_over_batch_size", "sum": "sum"}[source.reduction]
        kw = {"reduction": reduction, "dtype": dtype}
        if loss == "l2":
            def l2(t: Any, o: Any) -> Any:
                value = 0.5 * tf.reduce_sum(tf.square(o - t))
                return value / o.shape[0] if source.reduction == "mean" else value
            return "l2", source.reduction, l2, False
        made = {"ce": lambda: losses.SparseCategoricalCrossentropy(True, **kw),
                "bce": lambda: losses.BinaryCrossentropy(True, **kw),
                "mse": lambda: losses.MeanSquaredError(**kw)}[loss]()
        return loss, source.reduction, made, loss == "ce"
    reduction = REDUCTIONS.get(getattr(loss, "reduction", None))
    kwargs = getattr(loss, "_fn_kwargs", {})
    exact = (reduction is not None and kwargs.get("from_logits", True)
             and not kwargs.get("label_smoothing") and kwargs.get("ignore_class") is None)
    if reduction is not None and type(loss) is losses.BinaryCrossentropy \
            and not kwargs.get("label_smoothing"):
        return "bce", reduction, loss, False  # from_logits=False: after a final sigmoid
    if exact and type(loss) is losses.SparseCategoricalCrossentropy:
        return "ce", reduction, loss, True
    if exact and type(loss) is losses.CategoricalCrossentropy:
        return "ce", reduction, loss, False
    if exact and type(loss) is losses.BinaryCrossentropy:
        return "bce", reduction, loss, False
    if exact and type(loss) is losses.MeanSquaredError:
        return "mse", reduction, loss, False
    raise InputError(f"{source.label}: loss {type(loss).__name__} ({kwargs}, reduction "
                     f"{getattr(loss, 'reduction', None)!r}) has no exact counterpart in the "
                     "reference (cross-entropies with from_logits=True, BinaryCrossentropy also "
                     "on a final sigmoid's probabilities, MeanSquaredError; "
                     "reduction sum_over_batch_size or sum; no label smoothing)")


def _optimizer(source: ModelSource) -> tuple[Any, Optimizer | None]:
    opt = source.optimizer
    if opt is None:
        return None, None
    if not isinstance(opt, keras.optimizers.Optimizer):
        with user_code(source.label, "the optimizer factory"):
            opt = opt()
    name = type(opt).__name__
    decoupled = isinstance(opt, keras.optimizers.Adam) and bool(opt.weight_decay)
    extras = [k for k in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm")
              if getattr(opt, k, None) and not (k == "weight_decay" and decoupled)]
    extras += ["use_ema"] if opt.use_ema else []
    lr = float(opt.learning_rate.numpy()) if hasattr(opt.learning_rate, "numpy") else None
    if not extras and lr is not None:
        if isinstance(opt, keras.optimizers.SGD) and not opt.nesterov:
            kind = "momentum" if opt.momentum else "sgd"
            return opt, Optimizer(kind, lr=lr, momentum=opt.momentum or 0.9, variant="keras")
        if isinstance(opt, keras.optimizers.Adam) and not opt.amsgrad:
            return opt, Optimizer("adamw" if decoupled else "adam", lr=lr, beta1=opt.beta_1,
                                  beta2=opt.beta_2, eps=opt.epsilon, variant="keras",
                                  decay=float(opt.weight_decay) if decoupled else 0.01)
    raise InputError(f"{source.label}: optimiser {name} ({', '.join(extras) or 'a schedule'}) "
                     "has no exact counterpart in the reference (SGD with or without momentum, "
                     "not nesterov; Adam or AdamW without amsgrad; no weight decay on SGD, no "
                     "clipping, EMA, learning-rate schedule)")


def _sources(source: ModelSource, chain: list[Any],
             per_layer: list[list[Step]]) -> list[tuple[int, ...]]:
    """Per step, the indices of the steps whose outputs it takes (-1: the model's input), read
    from each layer's inbound node (a Dense/Conv2D's activation step takes its layer's
    output)."""
    last: dict[int, int] = {}
    sources: list[tuple[int, ...]] = []
    for layer, steps in zip(chain, per_layer, strict=True):
        nodes = layer._inbound_nodes  # Keras' functional graph: the layer's calls
        if len(nodes) != 1:
            raise InputError(f"{source.label}: layer {layer.name} is called {len(nodes)} times; "
                             "each layer of the reference's model runs once")
        inputs = tuple(last.get(id(t._keras_history.operation), -1)
                       for t in nodes[0].input_tensors)
        for k in range(len(steps)):
            sources.append(inputs if k == 0 else (len(sources) - 1,))
        last[id(layer)] = len(sources) - 1
    return sources


class KerasUserModel:
    """The user's Keras model as a chain of steps, traced once (:attr:`structure`)."""

    backend = "keras-model"

    def __init__(self, source: ModelSource, weights: dict[str, np.ndarray] | Path | None = None,
                 tf_device: str = "/CPU:0") -> None:
        self.source, model, self.tf_device = source, source.model, tf_device
        self.model = model
        chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        shape = source.input_shape or tuple(d for d in (model.input_shape or ())[1:])
        if not shape or None in shape:
            raise InputError(f"{source.label}: give --input-shape (H,W,C or D)")
        self._refuse_stop_gradient(tuple(shape))
        per_layer = [_steps(layer, source.layers) for layer in chain]
        self.steps = [step for steps in per_layer for step in steps]
        self.sources = _sources(source, chain, per_layer) \
            if any(isinstance(layer, keras.layers.Add) for layer in chain) else None
        if weights is not None:
            self._load(weights)
        dense = next(s for s in self.steps if s[0].kind in ("dense", "conv"))[2]
        self.dtype = str(dense.kernel.dtype)
        if self.dtype not in ("float64", "float32"):
            raise InputError(f"{source.label}: variables of dtype {self.dtype}; the reference has "
                             "float64 and float32")
        self.loss_name, reduction, self.loss_fn, self.sparse = _loss(source, self.dtype)
        self.loss_dtype = str(getattr(self.loss_fn, "dtype", None) or self.dtype)
        from_logits = getattr(self.loss_fn, "_fn_kwargs", {}).get("from_logits", True)
        self.structure: Structure = build(explicit_same([s[0] for s in self.steps]), tuple(shape),
                                          self.loss_name, reduction, self.dtype, self.sources,
                                          sigmoid_output=None if from_logits
                                          else "BinaryCrossentropy(from_logits=False)")
        self.spec = self.structure.spec
        self._check_chain()
        self.named = self._named()
        self.trained = {k: v for k, v in self.named.items() if not self.spec.is_state(k)}
        self.keras_optimizer, self.optimizer = _optimizer(source)

    def _load(self, weights: dict[str, np.ndarray] | Path) -> None:
        if isinstance(weights, Path):
            try:
                self.model.load_weights(str(weights))
            except Exception as exc:  # Keras' own message: what does not fit
                raise InputError(f"{self.source.label}: --weights {weights} does not fit the "
                                 f"model: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                                 ) from None
            return
        variables = {v.path: v for v in self.model.weights}
        missing = sorted(set(variables) - set(weights))
        extra = sorted(set(weights) - set(variables))
        if missing or extra:
            raise InputError(f"{self.source.label}: the weights do not fit the model (missing "
                             f"{missing or 'none'}, unexpected {extra or 'none'})")
        for path, variable in variables.items():
            if tuple(variable.shape) != weights[path].shape:
                raise InputError(f"{self.source.label}: {path} has shape {weights[path].shape}, "
                                 f"the model's is {tuple(variable.shape)}")
            variable.assign(weights[path])

    def _refuse_stop_gradient(self, shape: tuple[int, ...]) -> None:
        """Exit 2 when the model's forward calls ``tf.stop_gradient`` (``keras.ops``' too)."""
        dtype = str(self.model.weights[0].dtype) if self.model.weights else "float32"
        x = np.zeros((2, *shape), dtype=dtype)
        with _StopGradientWatch() as watch, user_code(
                self.source.label, "the model", f" on an input of shape {x.shape}"):
            self.model(x, training=False)
        if watch.used:
            raise InputError(f"{self.source.label}: the model calls {STOP_GRADIENT} in its "
                             "forward: it cuts the gradient there, which changes the gradients "
                             "being checked (the reference differentiates through every layer)")

    def _check_chain(self) -> None:
        """The steps in order must compute ``model(x)``: else the model is not a chain."""
        x = np.random.default_rng(0).standard_normal((2, *self.spec.input_shape))
        x = x.astype(self.dtype)
        ours = self._run(x, training=False)[1]
        with user_code(self.source.label, "the model", f" on an input of shape {x.shape}"):
            theirs = self.model(x, training=False)
        # equal_nan: a model with NaN weights is a chain all the same (its NaN output is then
        # judged, and fails, as non-finite)
        if not np.array_equal(np.asarray(ours), np.asarray(theirs), equal_nan=True):
            raise InputError(f"{self.source.label}: calling the layers one after another does "
                             "not give model(x): only chains of layers are supported")

    def _named(self) -> dict[str, Any]:
        named = {}
        for name, (index, role) in self.structure.params.items():
            named[name] = getattr(self.steps[index][2], KERAS_ATTRIBUTES[role])
        used = {id(v) for v in named.values()}
        for variable in self.model.trainable_variables:
            if id(variable) not in used:
                raise InputError(f"{self.source.label}: variable {variable.path} is not one the "
                                 "reference's model has")
        return named

    def params(self) -> dict[str, np.ndarray]:
        """The model's variables in the canonical layout."""
        return {k: layout.from_framework(FRAMEWORK, k, np.asarray(v.numpy()), self.spec)
                for k, v in self.named.items()}

    def _run(self, x: Any, training: bool) -> tuple[list[Any], Any]:
        outputs, h = [], x
        with user_code(self.source.label, "the model", f" on an input of shape {x.shape}"):
            for i, (_, call, _) in enumerate(self.steps):
                if self.sources is not None:  # along the graph; an Add takes a list
                    inputs = [x if s < 0 else outputs[s] for s in self.sources[i]]
                    h = inputs[0] if len(inputs) == 1 else inputs
                h = call(h, training)
                outputs.append(h)
        return outputs, h

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Set the model's variables from the canonical layout (a port's transfer)."""
        for k, v in self.named.items():
            v.assign(layout.to_framework(FRAMEWORK, k, params[k], self.spec).astype(self.dtype))

    def _forward(self, x: np.ndarray, y: np.ndarray,
                 training: bool = True) -> tuple[Any, dict[str, Any], Any]:
        outputs, _ = self._run(tf.constant(edges.as_input(self.spec, x)), training=training)
        tensors = {key: outputs[i] for key, i in self.structure.keys.items()}
        mask = None
        if self.structure.dropouts and training:
            mask = np.concatenate([(np.asarray(tensors[key]) != 0).astype(self.spec.dtype)
                                   for key in self.structure.dropouts], axis=1)
        n, k = len(x), self.spec.output_dim
        targets = np.asarray(y, dtype=np.int64) if self.sparse and np.ndim(y) == 1 \
            else as_targets(self.loss_name, y, n, k, np.dtype(self.spec.dtype))
        output = tensors[list(tensors)[-1]] if self.structure.loss_input is None \
            else outputs[self.structure.loss_input]
        with user_code(self.source.label, "the loss"):
            loss = self.loss_fn(tf.constant(targets), output)
        return loss, tensors, mask

    def run(self, x: np.ndarray, y: np.ndarray,
            training: bool = True) -> tuple[Trace, Gradients, np.ndarray | None]:
        """Forward, loss, deltas and gradients of batch ``(x, y)`` (canonical layout) and the
        dropout mask drawn (none with ``training=False``)."""
        with tf.device(self.tf_device):
            with tf.GradientTape() as tape:
                loss, tensors, mask = self._forward(x, y, training)
            zs = {k[2:]: t for k, t in tensors.items() if k.startswith("z.")}
            with user_code(self.source.label, "backward"):
                d_zs, d_vars = tape.gradient(loss, (zs, list(self.trained.values())))
        trace = edges.make_trace(FRAMEWORK, self.spec,
                                 {k: np.asarray(t) for k, t in tensors.items()})
        grads = edges.make_gradients(
            FRAMEWORK, self.spec, float(loss),
            {k: np.asarray(g) for k, g in zip(self.trained, d_vars, strict=True)},
            {k: np.asarray(d) for k, d in d_zs.items()}, trace.output)
        return trace, grads, mask

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray | None]:
        """One ``apply_gradients`` of the user's optimiser: ``(loss before it, mask drawn)``."""
        variables = list(self.trained.values())
        with tf.device(self.tf_device):
            with tf.GradientTape() as tape:
                loss, _, mask = self._forward(x, y)
            with user_code(self.source.label, "backward"):
                grads = tape.gradient(loss, variables)
            with user_code(self.source.label, "the optimizer's step"):
                self.keras_optimizer.apply_gradients(zip(grads, variables, strict=True))
        return float(loss), mask
