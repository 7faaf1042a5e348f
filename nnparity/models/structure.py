"""A user's model as a chain of layers, mapped onto an :class:`MLPSpec`, a :class:`CNNSpec`, or
any other chain layer for layer onto a :class:`NetSpec`.

The framework adapters (:mod:`.torch_model`, :mod:`.keras_model`) trace the user's model and
describe every layer it ran, in order, as a :class:`Layer`; :func:`build` checks that the chain
is one the reference can express and returns the spec with two maps:

- ``keys``: canonical traced key (``z.layer1``, ``h.layer1``, ``h.pool1``, ``h.flatten``, ...)
  -> index of the layer whose output that tensor is (a dense or conv layer without an
  activation after it gives its output as both ``z`` and ``h``);
- ``params``: canonical parameter name (``W1``, ``conv1.W``, ...) -> ``(layer index, role)``
  with role ``weight``, ``bias``, ``slope``, or a layernorm's ``scale`` (gamma) and ``shift``
  (beta).

Chains the reference expresses:

- MLP: ``(dense [activation] [dropout])+``, flatten allowed first, no dropout after the last
  dense layer, one keep probability for every dropout layer;
- CNN: ``(conv [activation] [pool])+ flatten (dense [activation])* [dropout] dense``, the last
  dense layer without activation (logits), loss ``ce``.

Any other chain of these layers is mapped one for one onto a ``net`` list (:func:`_net`:
activations after a dense or conv layer, one keep probability, a flatten before dense layers
on images), named by the list's rule (``dense1``, ``conv1``, ``pool1``, ...).

Residual blocks are found from the traced data flow, never from names: the adapters give each
traced layer its ``sources`` (the indices of the layers whose outputs it takes; -1 for the
model's input), and a traced sum of two tensors (``add``), one of them the input ``t`` of a
chain of layers ending in the other, is the block ``t + f(t)`` (:func:`residuals`); a sum whose
other operand is a single dense (1x1 conv) layer on ``t`` is the block with a projection. It is
mapped onto a ``residual`` entry of the ``net`` list, its sub-list named by the list's rule.

A softmax after the last layer of a ``ce`` model is accepted and recorded
(``softmax_output``): it is the classic double-softmax port bug, and the check shows and
diagnoses it rather than refusing the model. A BCE on probabilities (``nn.BCELoss``,
``BinaryCrossentropy(from_logits=False)``) takes the model's final sigmoid as its own: the
chain before it is mapped with the reference's ``bce`` on logits (``Structure.loss_input``).
A layer norm or a global average pool maps onto a ``net`` list only; a zero pad by exactly
TensorFlow's SAME amounts before a VALID convolution or average pool is that layer with SAME
padding (:func:`explicit_same`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnparity.errors import InputError
from nnparity.reference.activations import KNOWN
from nnparity.reference.cnn_spec import CNNSpec, ConvBlock
from nnparity.reference.conv import padding_amounts
from nnparity.reference.family import Spec
from nnparity.reference.netspec import NetSpec
from nnparity.reference.spec import MLPSpec

KINDS = ("dense", "conv", "activation", "pool", "avgpool", "flatten", "dropout", "softmax",
         "identity", "residual", "layernorm", "global_avgpool", "batchnorm")
NET_ONLY = ("layernorm", "global_avgpool", "residual", "batchnorm")
"""Kinds only a ``net`` list expresses (the MLP and CNN families have none)."""
ACTIVATION_NAMES = (*KNOWN, "gelu")
"""The reference activations a traced ``activation`` may name (``gelu`` with ``approximate``)."""
SUPPORTED = ("Linear/Dense, Conv2d/Conv2D (VALID or TensorFlow SAME padding), MaxPool2d/"
             "MaxPooling2D, AvgPool2d/AveragePooling2D (VALID or TensorFlow SAME), "
             "AdaptiveAvgPool2d(1)/GlobalAveragePooling2D, LayerNorm/LayerNormalization (over "
             "the features of a flat input), Flatten, Dropout (one rate), "
             "ReLU/Sigmoid/Tanh/LeakyReLU(0.01)/PReLU (MLP: one shared slope or one per unit)/"
             "GELU (exact or tanh)/identity, residual blocks x + f(x) (torch: a "
             "module adding its input; Keras: functional Add), "
             "BatchNorm1d/BatchNorm2d/BatchNormalization "
             "(affine, running statistics kept), a final "
             "Softmax before a cross-entropy (diagnosed), and modules or activations named in "
             "the file's NNPARITY_LAYERS")


@dataclass(frozen=True)
class Layer:
    """One layer the user's model ran: ``kind`` (:data:`KINDS`), ``label`` (how the user knows
    it, e.g. ``fc1 (Linear)``) and ``info``: ``dense`` ``in``, ``out``, ``bias``; ``conv``
    ``cin``, ``cout``, ``kernel``, ``stride``, ``padding`` (``SAME``/``VALID``, or ``p`` zeros on
    every side where that is neither: torch's ``padding=p``); ``activation``
    ``name`` (a reference activation; ``gelu`` also ``approximate``, ``none`` or ``tanh``);
    ``pool`` (max) and ``avgpool`` ``window``, ``stride``, ``padding`` (``avgpool`` also
    ``count_include_pad``: SAME's padded cells counted, torch's default);
    ``dropout`` ``keep_prob``; ``layernorm`` ``d`` (the features), ``epsilon``;
    ``global_avgpool`` nothing; ``residual`` (made by :func:`residuals` from a traced ``add``)
    ``body`` (the sub-list's ``(index, Layer)`` pairs) and ``projection`` (the skip path's
    ``(index, Layer)``, or None); ``batchnorm`` ``momentum`` (the reference's: the weight of
    the old running value), ``epsilon``, ``variance`` (``biased``/``unbiased``)."""

    kind: str
    label: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Structure:
    """The spec and the maps of :func:`build` (module docstring)."""

    spec: Spec
    keys: dict[str, int]
    params: dict[str, tuple[int, str]]
    softmax_output: bool = False
    activations: dict[str, str] = field(default_factory=dict)
    """Layer name -> label of the user's activation layer after it (when it has one)."""
    dropouts: list[str] = field(default_factory=list)
    """Traced keys of the user's dropout layers, in the order of their columns of the mask."""
    loss_input: int | None = None
    """Index of the traced layer whose output the loss takes when that is not the last mapped
    tensor: the final sigmoid before a BCE on probabilities (``nn.BCELoss``,
    ``BinaryCrossentropy(from_logits=False)``), mapped as the reference's logits loss."""


BATCHNORM_ROLES = ("gamma", "beta", "mean", "var")
"""A batchnorm layer's tensors by role (a :class:`Structure`'s ``params``): its scale, shift
and running statistics."""

GELU_NAMES = {"gelu": "none", "gelu_none": "none", "gelu_tanh": "tanh"}
"""How a file's ``NNPARITY_LAYERS`` names GELU's two forms (``gelu`` alone: the exact one)."""


def named_activation(label: str, name: str) -> Layer:
    """The ``activation`` layer of a reference activation ``name`` given by the user's
    ``NNPARITY_LAYERS`` (:data:`GELU_NAMES` for GELU's forms)."""
    if name in GELU_NAMES:
        return Layer("activation", label, {"name": "gelu", "approximate": GELU_NAMES[name]})
    return Layer("activation", label, {"name": name})


def unsupported(label: str) -> InputError:
    """The exit-2 error for a layer without an exact counterpart in the reference."""
    return InputError(f"unsupported layer {label}: the reference has no exact counterpart; "
                      f"supported: {SUPPORTED}")


def residuals(layers: list[Layer], sources: list[tuple[int, ...]]) -> list[Layer]:
    """``layers`` with each traced ``add`` of two tensors made a ``residual`` layer (module
    docstring), from ``sources`` (per layer, the indices of the layers whose outputs it takes;
    -1: the model's input). :class:`InputError` for a sum that is no residual block."""
    out = list(layers)
    for j, layer in enumerate(layers):
        if layer.kind != "add":
            continue
        if len(sources[j]) != 2:
            raise unsupported(f"{layer.label} (a sum of {len(sources[j])} tensors)")
        block = _block(layers, sources, j, *sources[j]) or _block(layers, sources, j,
                                                                 *sources[j][::-1])
        if block is None:
            raise InputError(f"{layer.label}: a sum that is not x + f(x) over a chain of layers "
                             "(the reference's residual block)")
        body, projection = block
        if any(layers[i].kind in ("add", "residual") for i in body):
            raise InputError(f"{layer.label}: a residual block inside a residual block; the "
                             "reference's blocks do not nest")
        identity = projection is not None and _identity(layers[projection])
        out[j] = Layer("residual", layer.label, {
            "body": [(i, out[i]) for i in body],
            "projection": None if projection is None or identity
            else (projection, out[projection]),
            "skip": [projection] if identity else []})
    return out


def _block(layers: list[Layer], sources: list[tuple[int, ...]], j: int, skip: int,
           end: int) -> tuple[list[int], int | None] | None:
    """``(body indices, projection index or None)`` when ``skip + end`` (the sum at ``j``) is a
    block: ``end`` closes a chain of layers that starts from the block's input, which is ``skip``
    itself or the input of ``skip``, a single dense/conv layer (the projection) or an identity
    module (``nn.Identity``, an identity skip: returned in the projection's place); None if
    not."""
    candidates: list[tuple[int, int | None]] = []
    def single(i: int) -> bool:  # one dense/conv layer (or identity module) on one input
        return i >= 0 and (layers[i].kind in ("dense", "conv") or _identity(layers[i])) \
            and len(sources[i]) == 1

    # of two single layers on the same input, the later one is taken for the projection
    tie = single(end) and sources[end] == sources[skip] and end > skip
    if single(skip) and not tie:
        candidates.append((sources[skip][0], skip))
    candidates.append((skip, None))
    for start, projection in candidates:
        body = [i for i in range(start + 1, j) if i != projection]
        previous = start
        for i in body:
            if sources[i] != (previous,):
                break
            previous = i
        else:
            if body and previous == end:
                return body, projection
    return None
def explicit_same(layers: list[Layer]) -> list[Layer]:
    """A zero ``pad`` (``info``: ``amounts`` top, bottom, left, right; ``hw`` of its input) by
    exactly TensorFlow's SAME amounts before a VALID convolution (how a port pads
    asymmetrically) is that convolution with SAME padding; before a VALID average pool, that
    pool with SAME padding counting the padded zeros (``count_include_pad``); ``p`` zeros on
    every side before a VALID convolution (Keras' ``ZeroPadding2D(p)``, torch's ``F.pad``) is
    that convolution with padding ``p``. The pad is then neutral; any other pad is
    ``unsupported``."""
    out = list(layers)
    for i, layer in enumerate(out[:-1]):
        after = out[i + 1]
        if layer.kind != "pad" or after.kind not in ("conv", "avgpool") \
                or after.info["padding"] != "VALID":
            continue
        k = after.info["kernel" if after.kind == "conv" else "window"]
        (top, bottom), (left, right) = padding_amounts(layer.info["hw"], (k, k),
                                                       after.info["stride"], "SAME")
        amounts = layer.info["amounts"]
        if amounts == (top, bottom, left, right):
            counted = {"count_include_pad": True} if after.kind == "avgpool" else {}
            out[i] = Layer("identity", layer.label)
            out[i + 1] = Layer(after.kind, after.label,
                               {**after.info, "padding": "SAME", **counted})
        elif after.kind == "conv" and len(set(amounts)) == 1:
            out[i] = Layer("identity", layer.label)
            out[i + 1] = Layer("conv", after.label, {**after.info, "padding": amounts[0]})
    return [Layer("unsupported", layer.label) if layer.kind == "pad" else layer
            for layer in out]


def _groups(layers: list[Layer]) -> list[tuple[int, list[int]]]:
    """``(index of a dense/conv layer, indices of the layers after it up to the next one)``."""
    groups: list[tuple[int, list[int]]] = []
    for i, layer in enumerate(layers):
        if layer.kind in ("dense", "conv"):
            groups.append((i, []))
        elif layer.kind == "identity":
            continue
        elif not groups:
            if layer.kind != "flatten":
                raise InputError(f"{layer.label} comes before any Linear/Dense or Conv layer: "
                                 "the reference's models start with one")
        else:
            groups[-1][1].append(i)
    if not groups:
        raise InputError("the model has no Linear/Dense or Conv layer")
    return groups


def build(layers: list[Layer], input_shape: tuple[int, ...], loss: str, reduction: str,
          dtype: str, sources: list[tuple[int, ...]] | None = None,
          sigmoid_output: str | None = None) -> Structure:
    """Map the traced ``layers`` onto a spec; :class:`InputError` naming the first layer that
    does not fit (see the module docstring). ``sources``: each layer's inputs (by index, -1 the
    model's input), which finds residual blocks; None: a chain. ``sigmoid_output`` (the loss's
    name): the loss is a BCE on probabilities, so the model must end with a sigmoid, which is
    the loss's (mapped as the reference's ``bce`` on the logits before it)."""
    if sources is not None:
        layers = residuals(layers, sources)
    for layer in layers:
        if layer.kind not in KINDS:
            raise unsupported(layer.label)
        if layer.kind == "activation" and layer.info["name"] not in ACTIVATION_NAMES:
            raise unsupported(layer.label)
    if sigmoid_output:
        last = max((i for i, layer in enumerate(layers) if layer.kind != "identity"), default=0)
        if layers[last].kind != "activation" or layers[last].info["name"] != "sigmoid":
            raise InputError(f"{sigmoid_output} takes probabilities, but the model's last layer "
                             f"is {layers[last].label}, not a sigmoid: end the model with one, "
                             "or give the logits to the loss's logits form (BCEWithLogitsLoss, "
                             "BinaryCrossentropy(from_logits=True))")
        layers = [*layers[:last], Layer("identity", layers[last].label), *layers[last + 1:]]
        structure = build(layers, input_shape, loss, reduction, dtype)
        structure.loss_input = last
        return structure
    if any(layer.kind in NET_ONLY for layer in layers):
        return _net(layers, input_shape, loss, reduction, dtype)
    groups = _groups(layers)
    cnn = layers[groups[0][0]].kind == "conv"
    try:
        return (_cnn if cnn else _mlp)(layers, groups, input_shape, loss, reduction, dtype)
    except (InputError, ValueError) as exc:  # e.g. a bce model with two outputs
        family_error = exc if isinstance(exc, InputError) else InputError(
            f"the model does not fit the reference: {exc}")
    try:
        return _net(layers, input_shape, loss, reduction, dtype)
    except InputError:
        raise family_error from None


def _net_entry(layer: Layer) -> dict[str, Any]:
    """The ``net`` entry (:mod:`reference.netspec`) of one traced layer."""
    info = layer.info
    if layer.kind == "dense":
        return {"kind": "dense", "units": info["out"], "use_bias": info["bias"]}
    if layer.kind == "conv":
        return {"kind": "conv2d", "filters": info["cout"], "kernel": info["kernel"],
                "stride": info["stride"], "padding": info["padding"], "use_bias": info["bias"]}
    if layer.kind == "activation":
        extra = {"prelu": {"slopes": info.get("slopes", "shared")},
                 "gelu": {"approximate": info.get("approximate", "none")}}
        return {"kind": info["name"], **extra.get(info["name"], {})}
    if layer.kind in ("pool", "avgpool"):
        counted = {"count_include_pad": True} if info.get("count_include_pad") else {}
        return {"kind": "maxpool" if layer.kind == "pool" else "avgpool",
                "size": info["window"], "stride": info["stride"], "padding": info["padding"],
                **counted}
    if layer.kind == "layernorm":
        return {"kind": "layernorm", "epsilon": info["epsilon"]}
    if layer.kind == "global_avgpool":
        return {"kind": "global_avgpool"}
    if layer.kind == "dropout":
        return {"kind": "dropout", "keep_prob": info["keep_prob"]}
    if layer.kind == "residual":
        skip = {} if info["projection"] is None else _projection(info["projection"][1])
        return {"kind": "residual", "projection": info["projection"] is not None, **skip,
                "net": [_net_entry(inner) for _, inner in info["body"]
                        if inner.kind != "identity"]}
    if layer.kind == "batchnorm":
        return {"kind": "batchnorm", "momentum": info["momentum"], "epsilon": info["epsilon"],
                "variance": info["variance"]}
    return {"kind": "flatten"}


def _identity(layer: Layer) -> bool:
    """An identity module (``nn.Identity``, Keras' ``Identity``): the input unchanged."""
    return layer.kind == "identity" or (layer.kind == "activation"
                                        and layer.info.get("name") == "identity")


def _inner(block: Layer) -> list[int]:
    """The traced indices a residual layer holds: its body's and its projection's."""
    projection = block.info["projection"]
    return [i for i, _ in block.info["body"]] + block.info["skip"] + (
        [] if projection is None else [projection[0]])


def _projection(layer: Layer) -> dict[str, Any]:
    """The ``residual`` fields of a skip path's projection (its stride, its bias), refusing one
    the reference's projection (a dense, or a 1x1 VALID conv) does not compute."""
    info = layer.info
    if layer.kind == "conv" and (info["kernel"] != 1 or info["padding"] != "VALID"):
        raise InputError(f"{layer.label} on a residual block's skip path: the reference's "
                         "projection is a 1x1 convolution without padding")
    return {"projection_stride": info["stride"] if layer.kind == "conv" else 1,
            "projection_bias": bool(info["bias"])}


def _net(layers: list[Layer], input_shape: tuple[int, ...], loss: str, reduction: str,
         dtype: str) -> Structure:
    """Any chain the layer list expresses, layer for layer, as a :class:`NetSpec` (names by
    its rule: ``dense1``, ``conv1``, ...); a final softmax before ``ce`` is recorded."""
    inside = {i for layer in layers if layer.kind == "residual" for i in _inner(layer)}
    traced = [i for i, layer in enumerate(layers) if layer.kind != "identity" and i not in inside]
    softmax_at = traced[-1] if traced and layers[traced[-1]].kind == "softmax" else None
    if softmax_at is not None:
        if loss != "ce":
            raise unsupported(layers[softmax_at].label)
        traced = traced[:-1]
    first = layers[traced[0]]
    if first.kind == "flatten" and len(input_shape) != 3:
        traced = traced[1:]  # flattening the input rows: the net takes them flat
    if any(layers[i].kind == "softmax" for i in traced):
        raise unsupported(next(layers[i].label for i in traced if layers[i].kind == "softmax"))
    head = layers[traced[0]]
    if head.kind == "residual":  # a block first: its first layer takes the input
        head = head.info["body"][0][1]
    width = {"dense": "in", "layernorm": "d"}.get(head.kind)  # a flat first layer
    shape = tuple(input_shape) if width is None or len(input_shape) == 3 \
        else (head.info[width],)
    if width and input_shape and int(_prod(input_shape)) != head.info[width]:
        raise InputError(f"--input-shape {input_shape} has {_prod(input_shape)} values but the "
                         f"first layer takes {head.info[width]}")
    if len(shape) == 3 and width:
        raise InputError("the model flattens no image before its first Linear/Dense layer")
    try:
        spec = NetSpec(shape, [_net_entry(layers[i]) for i in traced], loss=loss,
                       reduction=reduction, dtype=dtype)
    except ValueError as exc:
        raise InputError(f"the model does not fit the reference: {exc}") from None
    keys: dict[str, int] = {}
    params: dict[str, tuple[int, str]] = {}
    labels: dict[str, str] = {}
    dropouts: list[str] = []

    def visit(net: tuple[Any, ...], indices: list[int]) -> None:
        """Map the spec's layers ``net`` onto the traced layers at ``indices``."""
        for layer, i in zip(net, indices, strict=True):
            if layer.role == "block":
                info = layers[i].info
                visit(layer.net, [k for k, inner in info["body"] if inner.kind != "identity"])
                if info["projection"] is not None:
                    params[layer.weight] = (info["projection"][0], "weight")
                    if layer.projection_bias:
                        params[layer.bias] = (info["projection"][0], "bias")
            if layer.kind == "batchnorm":
                keys[f"z.{layer.name}"] = keys[f"h.{layer.name}"] = i
                for role in BATCHNORM_ROLES:
                    params[getattr(layer, role)] = (i, role)
            elif layer.role == "param":
                keys[f"z.{layer.name}"] = keys[f"h.{layer.name}"] = i
                params[layer.weight] = (i, "weight")
                if getattr(layer, "use_bias", True):
                    params[layer.bias] = (i, "bias")
            else:
                keys[f"h.{layer.name}"] = i
            if layer.role == "activation":
                labels[layer.name] = layers[i].label
                if layer.kind == "prelu":
                    params[layer.slope] = (i, "slope")
            if layer.kind == "layernorm":
                params[layer.weight], params[layer.bias] = (i, "scale"), (i, "shift")
            if layer.kind == "dropout":
                dropouts.append(f"h.{layer.name}")

    visit(spec.net, traced)
    if softmax_at is not None:
        keys[f"h.{spec.layer_names[-1]}"] = softmax_at
    return Structure(spec, keys, params, softmax_at is not None, labels, dropouts)


def _after(layers: list[Layer], rest: list[int], allowed: tuple[str, ...]) -> dict[str, int]:
    """``kind -> index`` of the layers after a dense/conv layer, in the allowed order."""
    found: dict[str, int] = {}
    position = 0
    for i in rest:
        kind = layers[i].kind
        if kind not in allowed[position:] or kind in found:
            raise unsupported(f"{layers[i].label} at this place")
        position = allowed.index(kind)
        found[kind] = i
    return found


def _activation(layers: list[Layer], found: dict[str, int]) -> str:
    return layers[found["activation"]].info["name"] if "activation" in found else "identity"


def _softmax_last(layers: list[Layer], found: dict[str, int], last: bool, loss: str) -> bool:
    if "softmax" not in found:
        return False
    if not last or loss != "ce" or "activation" in found:
        raise unsupported(layers[found["softmax"]].label)
    return True


def _mlp(layers: list[Layer], groups: list[tuple[int, list[int]]], input_shape: tuple[int, ...],
         loss: str, reduction: str, dtype: str) -> Structure:
    keys: dict[str, int] = {}
    params: dict[str, tuple[int, str]] = {}
    widths, acts, biases, softmax = [], [], set(), False
    labels: dict[str, str] = {}
    dropouts: dict[int, Layer] = {}
    for n, (i, rest) in enumerate(groups, 1):
        dense = layers[i]
        if dense.kind != "dense":
            raise unsupported(f"{dense.label} after a dense layer")
        found = _after(layers, rest, ("activation", "dropout", "softmax"))
        softmax = _softmax_last(layers, found, n == len(groups), loss)
        act = _activation(layers, found)
        widths.append(dense.info["out"])
        acts.append(act)
        biases.add(dense.info["bias"])
        keys[f"z.layer{n}"] = i
        if "activation" in found:
            labels[f"layer{n}"] = layers[found["activation"]].label
        keys[f"h.layer{n}"] = found.get("softmax", found.get("activation", i))
        params[f"W{n}"] = (i, "weight")
        if dense.info["bias"]:
            params[f"b{n}"] = (i, "bias")
        if act == "prelu":
            params[f"a{n}"] = (found["activation"], "slope")
        if "dropout" in found:
            dropouts[n] = layers[found["dropout"]]
            keys[f"h.dropout{n}"] = found["dropout"]
    slopes = {layers[i].info.get("slopes", "shared") for i, layer in enumerate(layers)
              if layer.kind == "activation" and layer.info["name"] == "prelu"}
    if len(slopes) > 1:
        raise InputError("some PReLU layers share one slope and some have one per unit: the "
                         "reference's MLP has one kind")
    if len(biases) > 1:
        raise InputError("some Linear/Dense layers have a bias and some do not: the reference's "
                         "MLP has biases on every layer or on none")
    keep_prob = _keep_prob(dropouts, len(groups))
    input_dim = layers[groups[0][0]].info["in"]
    if input_shape and int(_prod(input_shape)) != input_dim:
        raise InputError(f"--input-shape {input_shape} has {_prod(input_shape)} values but the "
                         f"first layer takes {input_dim}")
    spec = MLPSpec(input_dim, tuple(widths), tuple(acts), loss=loss, reduction=reduction,
                   bias=biases.pop(), dtype=dtype,
                   prelu_slopes=slopes.pop() if slopes else "shared", keep_prob=keep_prob,
                   dropout_after=tuple(dropouts))
    return Structure(spec, keys, params, softmax, labels, [f"h.dropout{n}" for n in dropouts])


def _keep_prob(dropouts: dict[int, Layer], depth: int) -> float:
    """The one keep probability of an MLP's dropout layers (1 without any)."""
    if depth in dropouts:
        raise unsupported(f"{dropouts[depth].label} after the output layer")
    rates = {layer.info["keep_prob"] for layer in dropouts.values()}
    if len(rates) > 1:
        names = ", ".join(layer.label for layer in dropouts.values())
        raise InputError(f"dropout layers with different rates ({names}): the reference's MLP "
                         "has one keep probability")
    return rates.pop() if rates else 1.0


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def _cnn(layers: list[Layer], groups: list[tuple[int, list[int]]], input_shape: tuple[int, ...],
         loss: str, reduction: str, dtype: str) -> Structure:
    if len(input_shape) != 3:
        raise InputError("the model starts with a convolution: give --input-shape H,W,C "
                         "(NHWC, whatever the framework)")
    if loss != "ce":
        raise InputError(f"the reference's CNN has the ce loss only, not {loss!r}")
    keys: dict[str, int] = {}
    params: dict[str, tuple[int, str]] = {}
    blocks: list[ConvBlock] = []
    labels: dict[str, str] = {}
    convs = [(i, rest) for i, rest in groups if layers[i].kind == "conv"]
    denses = groups[len(convs):]
    if any(layers[i].kind != "dense" for i, _ in denses) or not denses:
        raise InputError("the CNN must be conv blocks, a flatten, then dense layers")
    for n, (i, rest) in enumerate(convs, 1):
        allowed = ("activation", "pool", "flatten") if n == len(convs) else ("activation", "pool")
        found = _after(layers, rest, allowed)
        conv, pool = layers[i].info, layers[found["pool"]].info if "pool" in found else {}
        if not conv["bias"]:
            raise InputError(f"{layers[i].label} has no bias: the reference's CNN has biases")
        blocks.append(ConvBlock(conv["cout"], conv["kernel"], conv["stride"], conv["padding"],
                                _activation(layers, found), pool.get("window", 0),
                                pool.get("stride"), pool.get("padding", "SAME")))
        keys[f"z.conv{n}"] = i
        if "activation" in found:
            labels[f"conv{n}"] = layers[found["activation"]].label
        keys[f"h.conv{n}"] = found.get("activation", i)
        if "pool" in found:
            keys[f"h.pool{n}"] = found["pool"]
        params[f"conv{n}.W"], params[f"conv{n}.b"] = (i, "weight"), (i, "bias")
        if n == len(convs):
            if "flatten" not in found:
                raise InputError("no Flatten between the last convolution and the first dense "
                                 "layer")
            keys["h.flatten"] = found["flatten"]
    hidden, acts, keep_prob = [], [], 1.0
    for n, (i, rest) in enumerate(denses, 1):
        last = n == len(denses)
        if not layers[i].info["bias"]:
            raise InputError(f"{layers[i].label} has no bias: the reference's CNN has biases")
        found = _after(layers, rest, ("softmax",) if last else ("activation", "dropout"))
        if "dropout" in found and n != len(denses) - 1:
            raise InputError(f"{layers[found['dropout']].label}: the reference's CNN has dropout "
                             "only on the output layer's input")
        keys[f"z.fc{n}"] = i
        if "activation" in found:
            labels[f"fc{n}"] = layers[found["activation"]].label
        keys[f"h.fc{n}"] = found.get("softmax", found.get("activation", i))
        params[f"fc{n}.W"], params[f"fc{n}.b"] = (i, "weight"), (i, "bias")
        if "dropout" in found:
            keep_prob = layers[found["dropout"]].info["keep_prob"]
            keys["h.dropout"] = found["dropout"]
        if not last:
            hidden.append(layers[i].info["out"])
            acts.append(_activation(layers, found))
    keys.setdefault("h.dropout", keys[f"h.fc{len(denses) - 1}"] if len(denses) > 1
                    else keys["h.flatten"])
    softmax = "softmax" in _after(layers, denses[-1][1], ("softmax",))
    spec = CNNSpec(tuple(input_shape), tuple(blocks), tuple(hidden), tuple(acts), keep_prob,
                   layers[denses[-1][0]].info["out"], loss, reduction, dtype=dtype)
    order = [*(k for k in keys if not k.startswith("h.fc") and not k.startswith("z.fc")
               and k != "h.dropout")]
    for n in range(1, len(denses) + 1):
        if n == len(denses):
            order.append("h.dropout")
        order += [f"z.fc{n}", f"h.fc{n}"]
    dropouts = ["h.dropout"] if layers[keys["h.dropout"]].kind == "dropout" else []
    return Structure(spec, {k: keys[k] for k in order}, params, softmax, labels, dropouts)
