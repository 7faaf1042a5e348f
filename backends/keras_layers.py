"""The Keras layer of every layer kind of :data:`reference.layers.KINDS`, and where its
parameters live: the one table, :data:`LAYERS`, that the ``tensorflow`` backend folds over
``spec.net``.

Each entry builds the idiomatic Keras layer from the reference layer's fields, its per-sample
input shape (NHWC maps, as Keras computes them) and the spec (its dtype, the dropout mask's
columns), and names its variables by the canonical names the reference layer carries
(``Dense.weight -> Dense.kernel``, ``Dense.bias -> Dense.bias``, ``Conv2D`` likewise,
``PReLU.slope -> PReLU.alpha``). Values cross in :mod:`backends.layout`'s ``keras`` layout
(the canonical one); a PReLU's ``alpha`` keeps Keras' shape (``(1, 1, C)`` on a map), so a
value is reshaped to its variable's shape on the way in.

- ``dense``: ``Dense(units, use_bias)``; ``conv2d``: ``Conv2D(use_bias)`` with TensorFlow's own
  SAME/VALID (``p`` zeros on every side: ``ZeroPadding2D(p)`` then a VALID ``Conv2D``);
  ``maxpool``: ``MaxPooling2D``; ``avgpool``: ``AveragePooling2D`` (VALID, or SAME: the mean of
  the real cells; with ``count_include_pad``, torch's default, ``ZeroPadding2D`` by SAME's
  amounts then a VALID pool); ``flatten``: ``Flatten`` (NHWC order, the canonical one);
  ``global_avgpool``: ``GlobalAveragePooling2D``.
- ``layernorm``: ``LayerNormalization(epsilon=epsilon)`` (axis -1; ``gamma``, ``beta``).
- ``dropout``: :class:`MaskedDropout`, ``h * (mask[:, columns] / keep_prob)`` with the given 0/1
  mask (no TensorFlow RNG; no mask: ``h``).
- ``prelu``: :class:`PReLU`, ``shared_axes`` every axis (one slope) or all but the channel/unit
  axis (``unit``).
- ``gelu``: ``Activation`` of :func:`gelu_exact` (``none``) or :func:`gelu_tanh`, GELU written
  with ``keras.ops`` (``keras.activations.gelu`` casts its constants through float32).
- ``residual``: :class:`ResidualBlock`, the sub-list's Keras layers (``body``) and
  ``keras.layers.Add`` of the input (or its projection ``skip``: a ``Dense`` on a flat input, a
  1x1 ``Conv2D`` on a map) and the body's output: the functional API's residual idiom.
- ``batchnorm``: ``BatchNormalization(axis=-1, momentum, epsilon)`` (Keras' ``momentum``
  weighs the old value, as the reference's does); ``gamma``, ``beta``, ``moving_mean``,
  ``moving_variance`` (the last two non-trainable); Keras keeps the biased batch variance, so an
  ``unbiased`` layer is refused. Called with ``training`` by the model.
- activations: ``Activation("sigmoid" | "tanh" | "relu" | "linear")``, or an ``Activation`` of a
  small function for ``relu(z)^3`` and leaky relu.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from nnparity.reference.activations import PRELU_INIT
from nnparity.reference.conv import padding_amounts
from nnparity.reference.family import Spec
from nnparity.reference.layers import Layer, Residual, Shape

from .determinism import import_tensorflow
from .edges import ConventionRefused

tf, keras = import_tensorflow()

Builder = Callable[[Any, Shape, Spec], Any]
"""``(reference layer, per-sample input shape, spec) -> Keras layer`` in ``spec.dtype``."""
Variables = Callable[[Any, Any], dict[str, Any]]
"""``(reference layer, its built Keras layer) -> {canonical name: Keras variable}``."""


class PReLU(keras.layers.PReLU):
    """``keras.layers.PReLU`` (0.25 at start, as ``nn.PReLU()``) computed as
    ``where(z > 0, z, alpha z)``: Keras' own ``relu(z) - alpha relu(-z)`` has derivative 0 at
    ``z = 0``, the convention here is ``alpha`` (torch's, the reference's)."""

    def __init__(self, shared_axes: list[int] | None, dtype: str) -> None:
        super().__init__(alpha_initializer=keras.initializers.Constant(PRELU_INIT),
                         shared_axes=shared_axes, dtype=dtype)

    def call(self, inputs: Any) -> Any:
        return keras.ops.where(inputs > 0, inputs, self.alpha * inputs)


class MaskedDropout(keras.layers.Layer):
    """Inverted dropout with an explicit 0/1 mask: ``h * (dropout_mask[:, columns] / keep_prob)``
    for ``h [N, D]`` and ``dropout_mask [N, dropout_units]``; ``h`` itself without a mask."""

    def __init__(self, columns: slice, keep_prob: float, dtype: str) -> None:
        super().__init__(dtype=dtype)
        self.columns, self.keep_prob = columns, keep_prob

    def call(self, inputs: Any, dropout_mask: Any = None) -> Any:
        if dropout_mask is None:
            return inputs
        return inputs * (dropout_mask[:, self.columns] / self.keep_prob)


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


def _no_variables(layer: Any, keras_layer: Any) -> dict[str, Any]:
    return {}


UNINITIALISED = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}
"""A kernel's and bias's initial value: zeros, not Keras' random draw (which costs milliseconds
per variable): the backend assigns every variable from the canonical params before use."""


class KerasKind(NamedTuple):
    """How one layer kind becomes Keras: the layer, and its variables by canonical name."""

    build: Builder
    variables: Variables = _no_variables


def _dense(layer: Any, shape: Shape, spec: Spec) -> Any:
    return keras.layers.Dense(layer.units, use_bias=layer.use_bias, dtype=spec.dtype,
                              name=layer.name, **UNINITIALISED)


def _conv2d(layer: Any, shape: Shape, spec: Spec) -> Any:
    explicit = isinstance(layer.padding, int)
    conv = keras.layers.Conv2D(layer.filters, layer.kernel, strides=layer.stride,
                               padding="valid" if explicit else layer.padding.lower(),
                               use_bias=layer.use_bias, dtype=spec.dtype, name=layer.name,
                               **UNINITIALISED)
    if not explicit:
        return conv
    return keras.Sequential([keras.layers.ZeroPadding2D(layer.padding, dtype=spec.dtype), conv])


def _maxpool(layer: Any, shape: Shape, spec: Spec) -> Any:
    return keras.layers.MaxPooling2D(layer.size, layer.stride, layer.padding.lower(),
                                     dtype=spec.dtype)


def _avgpool(layer: Any, shape: Shape, spec: Spec) -> Any:
    if not layer.count_include_pad:
        return keras.layers.AveragePooling2D(layer.size, layer.stride, layer.padding.lower(),
                                             dtype=spec.dtype)
    pads = padding_amounts(shape[:2], (layer.size, layer.size), layer.stride, layer.padding)
    return keras.Sequential([keras.layers.ZeroPadding2D(pads, dtype=spec.dtype),
                             keras.layers.AveragePooling2D(layer.size, layer.stride, "valid",
                                                           dtype=spec.dtype)])


def _global_avgpool(layer: Any, shape: Shape, spec: Spec) -> Any:
    return keras.layers.GlobalAveragePooling2D(dtype=spec.dtype)


def _layernorm(layer: Any, shape: Shape, spec: Spec) -> Any:
    return keras.layers.LayerNormalization(epsilon=layer.epsilon, dtype=spec.dtype,
                                           name=layer.name)


def _gamma_and_beta(layer: Any, keras_layer: Any) -> dict[str, Any]:
    return {layer.weight: keras_layer.gamma, layer.bias: keras_layer.beta}


def gelu_exact(z: Any) -> Any:
    """``0.5 z (1 + erf(z / sqrt 2))``.

    Not ``keras.activations.gelu``: TensorFlow's ``tf.nn.gelu`` casts its constants
    (``1/sqrt 2``, ``0.044715``) through float32, so in float64 it is ~1e-9 relative off (a
    test shows it)."""
    return 0.5 * z * (1.0 + keras.ops.erf(z * 0.7071067811865476))


def gelu_tanh(z: Any) -> Any:
    """``0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))`` (float64 constants, as
    :func:`gelu_exact`)."""
    return 0.5 * z * (1.0 + keras.ops.tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)))


def _gelu(layer: Any, shape: Shape, spec: Spec) -> Any:
    function = gelu_tanh if layer.approximate == "tanh" else gelu_exact
    return keras.layers.Activation(function, dtype=spec.dtype)


def _batchnorm(layer: Any, shape: Shape, spec: Spec) -> Any:
    if layer.variance != "biased":
        raise ConventionRefused(f"{layer.name}: Keras' BatchNormalization keeps the biased "
                                f"moving variance; this layer asks for variance "
                                f"{layer.variance!r}")
    return keras.layers.BatchNormalization(axis=-1, momentum=layer.momentum,
                                           epsilon=layer.epsilon, dtype=spec.dtype,
                                           name=layer.name)


def _flatten(layer: Any, shape: Shape, spec: Spec) -> Any:
    return keras.layers.Flatten(dtype=spec.dtype)


def _dropout(layer: Any, shape: Shape, spec: Spec) -> Any:
    return MaskedDropout(spec.dropout_columns[layer.name], layer.keep_prob, spec.dtype)


def _prelu(layer: Any, shape: Shape, spec: Spec) -> Any:
    """Axes 1.. of ``[N, *shape]`` share a slope: all of them, or all but the last (``unit``:
    one slope per unit of a flat input, per channel of a map; none shared on a flat input)."""
    last = len(shape) - 1 if layer.slopes == "unit" else len(shape)
    return PReLU(list(range(1, last + 1)) or None, spec.dtype)


def _activation(function: str | Callable[[Any], Any]) -> Builder:
    """The builder of ``keras.layers.Activation(function)``."""
    return lambda layer, shape, spec: keras.layers.Activation(function, dtype=spec.dtype)


def _kernel_and_bias(layer: Any, keras_layer: Any) -> dict[str, Any]:
    if isinstance(keras_layer, keras.Sequential):  # zeros padded explicitly, then the conv
        keras_layer = keras_layer.layers[-1]
    named = {layer.weight: keras_layer.kernel}
    if keras_layer.use_bias:
        named[layer.bias] = keras_layer.bias
    return named


def _slope(layer: Any, keras_layer: Any) -> dict[str, Any]:
    return {layer.slope: keras_layer.alpha}


class ResidualBlock(keras.layers.Layer):
    """``Add()([skip(x), body(x)])``: a residual block's sub-list (its reference layers ``net`` and
    their Keras layers ``body``, run by :func:`trace_chain`) plus its input, through ``skip``
    (None: the input itself; else the projection's ``Dense`` or 1x1 ``Conv2D``)."""

    def __init__(self, layers: tuple[Layer, ...], body: list[Any], skip: Any, dtype: str) -> None:
        super().__init__(dtype=dtype)
        self.net, self.body, self.skip = layers, body, skip
        self.add = keras.layers.Add(dtype=dtype)
        self.built = True  # no state of its own: its sub-layers build when first called

    def join(self, x: Any, inner: Any) -> Any:
        """The block's output from its input ``x`` and its body's output ``inner``."""
        return self.add([x if self.skip is None else self.skip(x), inner])

    def call(self, inputs: Any, dropout_mask: Any = None, training: bool = False) -> Any:
        return self.join(inputs, trace_chain(self.net, self.body, inputs, dropout_mask, None,
                                             training))


def _residual(layer: Any, shape: Shape, spec: Spec) -> Any:
    body = [keras_layer(inner, inner_shape, spec) for inner, inner_shape
            in zip(layer.net, layer.inner_shapes(shape), strict=False)]
    skip = layer.skip(shape)
    return ResidualBlock(layer.net, body, None if skip is None else keras_layer(skip, shape, spec),
                         spec.dtype)


def _residual_variables(layer: Any, keras_layer: Any) -> dict[str, Any]:
    named = {name: variable for inner, built in zip(layer.net, keras_layer.body, strict=True)
             for name, variable in variables_of(inner, built).items()}
    return named if keras_layer.skip is None else {**named,
                                                   **_kernel_and_bias(layer, keras_layer.skip)}


def trace_chain(layers: tuple[Layer, ...], stack: list[Any], h: Any, dropout_mask: Any,
                tensors: dict[str, Any] | None, training: bool = False) -> Any:
    """Run the Keras layers ``stack`` (built from ``layers``) on ``h`` in order; into
    ``tensors`` (None: no trace) go the reference's keys: ``z.<name>`` and ``h.<name>`` of a
    dense/conv layer, ``h.<name>`` overwritten by its activation, ``h.<name>`` of a pool,
    flatten, residual block (after its sub-list's) or dropout layer, a dropout's only with
    ``dropout_mask [N, dropout_units]`` unless ``traced_without_mask``. ``training``: batch
    normalisation on the batch's statistics."""
    for layer, built in zip(layers, stack, strict=True):
        if isinstance(layer, Residual):
            h = built.join(h, trace_chain(layer.net, built.body, h, dropout_mask, tensors,
                                          training))
        elif layer.kind == "dropout":
            h = built(h, dropout_mask=dropout_mask)
            if dropout_mask is None and not layer.traced_without_mask:
                continue
        elif layer.kind == "batchnorm":
            h = built(h, training=training)
        else:
            h = built(h)
        if tensors is None:
            continue
        if layer.role == "param":
            tensors[f"z.{layer.name}"] = h
        tensors[f"h.{layer.name}"] = h
    return h


def _normalisation(layer: Any, keras_layer: Any) -> dict[str, Any]:
    return {layer.gamma: keras_layer.gamma, layer.beta: keras_layer.beta,
            layer.mean: keras_layer.moving_mean, layer.var: keras_layer.moving_variance}


LAYERS: dict[str, KerasKind] = {
    "dense": KerasKind(_dense, _kernel_and_bias),
    "conv2d": KerasKind(_conv2d, _kernel_and_bias),
    "maxpool": KerasKind(_maxpool),
    "avgpool": KerasKind(_avgpool),
    "flatten": KerasKind(_flatten),
    "dropout": KerasKind(_dropout),
    "prelu": KerasKind(_prelu, _slope),
    "gelu": KerasKind(_gelu),
    "residual": KerasKind(_residual, _residual_variables),
    "layernorm": KerasKind(_layernorm, _gamma_and_beta),
    "global_avgpool": KerasKind(_global_avgpool),
    "batchnorm": KerasKind(_batchnorm, _normalisation),
    "sigmoid": KerasKind(_activation("sigmoid")),
    "tanh": KerasKind(_activation("tanh")),
    "relu": KerasKind(_activation("relu")),
    "relu3": KerasKind(_activation(_relu3)),
    "leaky_relu": KerasKind(_activation(_leaky_relu)),
    "identity": KerasKind(_activation("linear")),
}
"""Layer kind (``reference.layers.KINDS``) -> its Keras layer and variables."""


def keras_layer(layer: Layer, shape: Shape, spec: Spec) -> Any:
    """The Keras layer for ``layer`` on per-sample input ``shape`` (``ValueError`` naming a kind
    the table lacks)."""
    if layer.kind not in LAYERS:
        raise ValueError(f"the tensorflow backend has no layer of kind {layer.kind!r}")
    return LAYERS[layer.kind].build(layer, shape, spec)


def variables_of(layer: Layer, built: Any) -> dict[str, Any]:
    """``{canonical name: Keras variable}`` of ``layer``'s built Keras layer, in the reference
    layer's parameter order."""
    return LAYERS[layer.kind].variables(layer, built)
