"""A user's ``torch.nn.Module``, traced, mapped onto a spec and run for the check.

Tracing: one forward pass with a forward hook on every leaf module (a module without children,
or one named in ``NNPARITY_LAYERS``) and a :class:`~torch.overrides.TorchFunctionMode` that
records the torch functions the model calls *outside* those modules (``F.relu(self.fc1(x))``,
``x.view(n, -1)``, ``torch.flatten``, ``F.max_pool2d``, ...). The recorded chain, in execution
order, becomes :class:`~.structure.Layer` objects; nothing is guessed from attribute order.
A sum of two tensors outside the leaf modules (``x + self.body(x)`` in a module's forward) is
recorded with both operands; each recorded call's inputs are matched to the calls that produced
them (by tensor identity), which is how :func:`.structure.residuals` finds residual blocks.

Running: the user's own modules run, forward and backward: pre-activations ``z`` are the outputs
of the Linear/Conv2d modules, kept with ``retain_grad`` so their gradients are the deltas
``dL/dz``; gradients are the parameters' ``.grad``; steps are the user's optimiser's. A dropout
module's mask is read from its input and output (``output != 0``) and given to the reference.
Models run in train mode, on the device asked for (``cpu`` or ``cuda``); an in-place activation
is switched to out-of-place for the check (the same math; in place it would overwrite the
recorded ``z``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nnparity.backends import edges, layout
from nnparity.errors import InputError
from nnparity.reference.conv import Padding, padding_amounts
from nnparity.reference.losses import as_targets
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace

from .guard import user_code
from .source import ModelSource
from .structure import Layer, Structure, build, explicit_same, named_activation, unsupported

FRAMEWORK = "torch"
ACTIVATION_MODULES = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh",
                      nn.Identity: "identity", nn.PReLU: "prelu"}
ACTIVATION_FUNCTIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
RESHAPES = ("flatten", "view", "reshape")
ADDS = ("add", "__add__", "__radd__")
NEUTRAL = ("contiguous",)
DETACHING = ("detach", "detach_")
"""Tensor methods that cut the gradient: refused inside a model's forward."""
DTYPES = {torch.float64: "float64", torch.float32: "float32"}


def _pair(value: Any) -> int:
    """One int from an int or a pair of equal ints; 0 for a pair that differs (refused)."""
    if isinstance(value, int):
        return value
    a, b = tuple(value)
    return a if a == b else 0


def _padding(label: str, torch_padding: Any, hw: tuple[int, int], window: int,
             stride: int, explicit: bool = False) -> Padding:
    """``VALID`` or ``SAME`` (TensorFlow's rule) for torch's padding on an ``hw`` input, or with
    ``explicit`` (a convolution) the ``p`` zeros torch pads on every side where that is neither
    (an even window or stride 2: ResNet's downsampling convolution); exit 2 for another padding
    (a pool's symmetric padding where SAME is asymmetric, per-axis amounts)."""
    if torch_padding in ("valid", 0, (0, 0)):
        return "VALID"
    if torch_padding == "same":
        return "SAME"
    p = _pair(torch_padding)
    (top, bottom), (left, right) = padding_amounts(hw, (window, window), stride, "SAME")
    if (top, bottom, left, right) == (p, p, p, p):
        return "SAME"
    if explicit and p:
        return p
    raise InputError(f"{label}: padding {torch_padding} on a {hw[0]}x{hw[1]} input is neither "
                     f"VALID nor TensorFlow's SAME (top/bottom {top}/{bottom}, left/right "
                     f"{left}/{right}); the reference's pools have those two")


def _describe_module(label: str, module: nn.Module, inputs: tuple, names: dict[str, str]) -> Layer:
    kind = type(module).__name__
    if kind in names and names[kind] == "dropout":  # the user's own dropout module, rate ``p``
        return Layer("dropout", label, {"keep_prob": 1.0 - float(getattr(module, "p", 0.0))})
    if kind in names:
        return named_activation(label, names[kind])
    x = inputs[0] if inputs else None
    if isinstance(module, nn.Linear):
        return Layer("dense", label, {"in": module.in_features, "out": module.out_features,
                                      "bias": module.bias is not None})
    if isinstance(module, nn.Conv2d):
        k, s = _pair(module.kernel_size), _pair(module.stride)
        if not k or not s or _pair(module.dilation) != 1 or module.groups != 1 \
                or module.padding_mode != "zeros":
            raise unsupported(f"{label} (non-square kernel or stride, dilation, groups or "
                              f"padding mode {module.padding_mode!r})")
        hw = tuple(x.shape[2:])
        return Layer("conv", label, {"cin": module.in_channels, "cout": module.out_channels,
                                     "kernel": k, "stride": s, "bias": module.bias is not None,
                                     "padding": _padding(label, module.padding, hw, k, s,
                                                         explicit=True)})
    if isinstance(module, nn.MaxPool2d):
        k = _pair(module.kernel_size)
        s = _pair(module.stride if module.stride is not None else k)
        if not k or not s or _pair(module.dilation) != 1 or module.ceil_mode:
            raise unsupported(f"{label} (non-square window, dilation or ceil_mode)")
        return Layer("pool", label, {"window": k, "stride": s,
                                     "padding": _padding(label, module.padding,
                                                         tuple(x.shape[2:]), k, s)})
    if isinstance(module, nn.AvgPool2d):
        k = _pair(module.kernel_size)
        s = _pair(module.stride if module.stride is not None else k)
        return _avgpool(label, k, s, module.padding, module.ceil_mode,
                        module.divisor_override, module.count_include_pad, tuple(x.shape[2:]))
    if isinstance(module, nn.AdaptiveAvgPool2d):
        if module.output_size not in (1, (1, 1)) or x is None or x.ndim != 4:
            raise unsupported(f"{label} (output size {module.output_size}: the reference's "
                              "global_avgpool is AdaptiveAvgPool2d(1))")
        return Layer("global_avgpool", label)
    if isinstance(module, nn.LayerNorm):
        return _layernorm(label, module, x)
    if isinstance(module, nn.GELU):
        return Layer("activation", label, {"name": "gelu", "approximate": module.approximate})
    if isinstance(module, nn.ZeroPad2d) and x is not None and x.ndim == 4:
        left, right, top, bottom = module.padding
        return Layer("pad", label, {"amounts": (top, bottom, left, right),
                                    "hw": tuple(x.shape[2:])})
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        return _batchnorm(label, module, x)
    if isinstance(module, nn.Flatten):
        return Layer("flatten", label)
    if isinstance(module, nn.Dropout):
        return Layer("dropout", label, {"keep_prob": 1.0 - module.p})
    if isinstance(module, nn.LeakyReLU) and module.negative_slope == 0.01:
        return Layer("activation", label, {"name": "leaky_relu"})
    if isinstance(module, nn.PReLU):
        slopes = "shared" if module.num_parameters == 1 else "unit"
        if slopes == "unit" and (x is None or x.ndim != 2 or x.shape[1] != module.num_parameters):
            raise unsupported(f"{label} (PReLU with {module.num_parameters} slopes: the "
                              "reference has one shared slope or one per unit of a dense layer)")
        return Layer("activation", label, {"name": "prelu", "slopes": slopes})
    if isinstance(module, nn.Softmax) and module.dim in (1, -1):
        return Layer("softmax", label)
    for cls, name in ACTIVATION_MODULES.items():
        if type(module) is cls:
            return Layer("activation", label, {"name": name})
    raise unsupported(label)


def _describe_function(func: Callable, args: tuple, kwargs: dict, out: torch.Tensor,
                       names: dict[str, str]) -> Layer:
    name = getattr(func, "__name__", str(func))
    label = f"{name}() in forward"
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if name in names:
        return named_activation(label, names[name])
    if name in ACTIVATION_FUNCTIONS:
        return Layer("activation", label, {"name": ACTIVATION_FUNCTIONS[name]})
    slope = kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
    if name == "leaky_relu" and slope == 0.01:
        return Layer("activation", label, {"name": "leaky_relu"})
    if name == "softmax":
        return Layer("softmax", label)
    if name in ADDS and _two_tensors(args) and kwargs.get("alpha", 1) == 1:
        return Layer("add", label)
    if name in ("__iadd__", "add_"):
        raise InputError(f"{label}: an in-place sum (out += x) overwrites the layer output it "
                         "adds to; write out = out + x for a residual block")
    if name in NEUTRAL or (x is not None and name in RESHAPES and out.shape == x.shape):
        return Layer("identity", label)
    if name in RESHAPES and out.ndim == 2 and x is not None and x.ndim in (2, 4):
        return Layer("flatten", label)
    if name == "pad" and x is not None and x.ndim == 4:
        amounts = tuple(kwargs.get("pad", args[1] if len(args) > 1 else ()))
        mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
        value = kwargs.get("value", args[3] if len(args) > 3 else None)
        if len(amounts) == 4 and mode == "constant" and not value:
            left, right, top, bottom = amounts
            return Layer("pad", label, {"amounts": (top, bottom, left, right),
                                        "hw": tuple(x.shape[2:])})
    if name == "dropout":
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        return Layer("dropout", label, {"keep_prob": 1.0 - p})
    if name == "gelu":
        form = kwargs.get("approximate", args[1] if len(args) > 1 else "none")
        return Layer("activation", label, {"name": "gelu", "approximate": form})
    if name == "avg_pool2d":
        params = dict(zip(("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
                          args[1:], strict=False))
        params.update(kwargs)
        k = _pair(params["kernel_size"])
        return _avgpool(label, k, _pair(params.get("stride") or k), params.get("padding", 0),
                        params.get("ceil_mode", False), params.get("divisor_override"),
                        params.get("count_include_pad", True), tuple(x.shape[2:]))
    if name == "adaptive_avg_pool2d" and x is not None and x.ndim == 4 \
            and kwargs.get("output_size", args[1] if len(args) > 1 else None) in (1, (1, 1)):
        return Layer("global_avgpool", label)
    if name == "max_pool2d":
        params = dict(zip(("kernel_size", "stride", "padding"), args[1:], strict=False))
        params.update(kwargs)
        k = _pair(params["kernel_size"])
        s = _pair(params.get("stride") or k)
        return Layer("pool", label, {"window": k, "stride": s, "padding": _padding(
            label, params.get("padding", 0), tuple(x.shape[2:]), k, s)})
    raise unsupported(label)


def _two_tensors(args: tuple) -> bool:
    """Whether a call's positional arguments are two tensors (a sum of two tensors)."""
    return len(args) == 2 and all(isinstance(a, torch.Tensor) for a in args)


TORCH_ATTRIBUTES = {"weight": "weight", "slope": "weight", "bias": "bias", "gamma": "weight",
                    "beta": "bias", "mean": "running_mean", "var": "running_var",
                    "scale": "weight", "shift": "bias"}
"""A :class:`Structure` parameter role -> the torch module's attribute holding it."""


def _batchnorm(label: str, module: nn.Module, x: Any) -> Layer:
    """``BatchNorm1d`` on ``[N, D]`` or ``BatchNorm2d``, affine, with running statistics and a
    momentum: torch weighs the new batch by ``momentum`` (the reference's is ``1 -`` it) and
    keeps the unbiased running variance."""
    if not module.affine or not module.track_running_stats or module.momentum is None:
        raise unsupported(f"{label} (affine=False, track_running_stats=False or momentum=None: "
                          "the reference's batchnorm has gamma, beta and exponential running "
                          "statistics)")
    if isinstance(module, nn.BatchNorm1d) and (x is None or x.ndim != 2):
        raise unsupported(f"{label} (BatchNorm1d over a sequence: the reference normalises "
                          "[N, D] features or NHWC channels)")
    return Layer("batchnorm", label, {"momentum": 1 - float(module.momentum),
                                      "epsilon": float(module.eps), "variance": "unbiased"})


def _avgpool(label: str, k: int, s: int, padding: Any, ceil_mode: bool,
             divisor_override: Any, count_include_pad: bool, hw: tuple[int, int]) -> Layer:
    """An ``avgpool`` layer: square window and stride, no ceil mode or divisor, VALID or a
    padding that is TensorFlow's SAME, with torch's ``count_include_pad`` (True by default:
    the padded cells counted in the mean, where Keras' SAME averages the real cells only)."""
    if not k or not s or ceil_mode or divisor_override:
        raise unsupported(f"{label} (non-square window or stride, ceil_mode or "
                          "divisor_override)")
    padding = _padding(label, padding, hw, k, s)
    return Layer("avgpool", label, {"window": k, "stride": s, "padding": padding,
                                    "count_include_pad": padding == "SAME"
                                    and bool(count_include_pad)})


def _layernorm(label: str, module: nn.LayerNorm, x: torch.Tensor | None) -> Layer:
    """A ``layernorm`` layer: ``nn.LayerNorm(D)`` over the features of a flat ``[N, D]``
    input, with its learned scale and shift."""
    shape = tuple(module.normalized_shape)
    if x is None or x.ndim != 2 or len(shape) != 1 or module.weight is None \
            or module.bias is None:
        raise unsupported(f"{label} (normalized_shape {shape} on an input of shape "
                          f"{None if x is None else tuple(x.shape)}: the reference normalises "
                          "the features of a flat [N, D] input, with elementwise_affine and "
                          "bias)")
    return Layer("layernorm", label, {"d": shape[0], "epsilon": float(module.eps)})


def _global_pool_flatten(layers: list[Layer]) -> list[Layer]:
    """``AdaptiveAvgPool2d(1)`` gives ``[N, C, 1, 1]``; with the flatten after it, it is the
    reference's ``global_avgpool`` (``[N, C]``): the pool becomes neutral, the flatten the
    pool."""
    out = list(layers)
    for i, layer in enumerate(out[:-1]):
        if layer.kind == "global_avgpool" and out[i + 1].kind == "flatten":
            out[i] = Layer("identity", layer.label)
            out[i + 1] = Layer("global_avgpool", f"{layer.label} and {out[i + 1].label}")
    return out


@contextlib.contextmanager
def _state_kept(model: nn.Module) -> Iterator[None]:
    """Restores every buffer of ``model`` (batch normalisation's running statistics) on exit."""
    saved = {k: b.detach().clone() for k, b in model.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(saved[k])


def _label(name: str, module: nn.Module) -> str:
    """How reports name a module: ``module fc1 (Linear)``."""
    return f"module {name} ({type(module).__name__})"


class _Recorder(TorchFunctionMode):
    """Records ``(layer factory, input, output)`` of leaf modules (hooks) and of functions
    called outside them, in execution order."""

    def __init__(self, model: nn.Module, names: dict[str, str]) -> None:
        super().__init__()
        self.names, self.depth = names, 0
        self.detached: str | None = None  # the first gradient-cutting call, for its refusal
        self.events: list[tuple[Callable[[], Layer], torch.Tensor | None, torch.Tensor]] = []
        self.handles = []
        for label, module in model.named_modules():
            leaf = not any(True for _ in module.children()) or type(module).__name__ in names
            inside = any(label.startswith(other + ".") for other, m in model.named_modules()
                         if other and type(m).__name__ in names)
            if leaf and not inside:
                self.handles.append(module.register_forward_pre_hook(self._enter))
                self.handles.append(module.register_forward_hook(self._leave(label, module)))

    def _enter(self, module: nn.Module, inputs: tuple) -> None:
        self.depth += 1

    def _leave(self, label: str, module: nn.Module) -> Callable:
        text = _label(label, module)

        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            self.depth -= 1
            x = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            self.events.append((lambda: _describe_module(text, module, inputs, self.names),
                                x, output))
        return hook

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in DETACHING and self.detached is None:
            self.detached = f"{name}()" + (" inside a module" if self.depth else "")
        if self.depth == 0 and isinstance(out, torch.Tensor):
            x: Any = args[0] if args and isinstance(args[0], torch.Tensor) else None
            name = getattr(func, "__name__", "")
            if name in ADDS and _two_tensors(args):
                x = tuple(args)  # both operands: a residual block's sum
            self.events.append((lambda: _describe_function(func, args, kwargs, out, self.names),
                                x, out))
        return out

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _sources(events: list[tuple]) -> list[tuple[int, ...]]:
    """Per recorded call, the indices of the calls whose outputs are its tensor inputs (-1: a
    tensor no recorded call made, the model's input): the latest call before it that returned
    that tensor (``nn.Identity`` returns its input itself: the calls after it take it from
    the identity, those before from the input's maker)."""
    made: dict[int, int] = {}
    sources = []
    for i, (_, x, out) in enumerate(events):
        sources.append(tuple(made.get(id(t), -1) for t in (x if isinstance(x, tuple) else (x,))))
        made[id(out)] = i
    return sources


def _loss_function(source: ModelSource) -> tuple[str, str, Callable]:
    """``(reference loss, reduction, loss(output, targets))`` for the file's loss."""
    loss = source.loss
    if isinstance(loss, str):
        if loss == "l2":
            def l2(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                value = 0.5 * torch.sum((o - t) ** 2)
                return value / len(o) if source.reduction == "mean" else value
            return "l2", source.reduction, l2
        made = {"ce": nn.CrossEntropyLoss, "bce": nn.BCEWithLogitsLoss,
                "mse": nn.MSELoss}[loss](reduction=source.reduction)
        return loss, source.reduction, made
    reduction = getattr(loss, "reduction", None)
    if reduction not in ("mean", "sum"):
        raise InputError(f"{source.label}: loss {type(loss).__name__} with reduction "
                         f"{reduction!r}: the reference reduces by 'mean' or 'sum'")
    if type(loss) is nn.CrossEntropyLoss and loss.weight is None and loss.label_smoothing == 0:
        return "ce", reduction, loss
    if type(loss) is nn.BCEWithLogitsLoss and loss.weight is None and loss.pos_weight is None:
        return "bce", reduction, loss
    if type(loss) is nn.BCELoss and loss.weight is None:  # on a final sigmoid's probabilities
        return "bce", reduction, loss
    if type(loss) is nn.MSELoss:
        return "mse", reduction, loss
    raise InputError(f"{source.label}: loss {loss!r} has no exact counterpart in the reference "
                     "(CrossEntropyLoss, BCEWithLogitsLoss, BCELoss after a final Sigmoid, "
                     "MSELoss; no class weights, no label smoothing)")


def _optimizer(source: ModelSource, model: nn.Module) -> tuple[Any, Optimizer | None]:
    """``(the user's torch optimiser, the reference's counterpart)``; ``(None, None)`` without
    one; exit 2 for one without an exact counterpart."""
    opt = source.optimizer
    if opt is None:
        return None, None
    if not isinstance(opt, torch.optim.Optimizer):
        with user_code(source.label, "the optimizer factory"):
            opt = opt(model.parameters())
    if len(opt.param_groups) != 1:
        raise InputError(f"{source.label}: an optimiser with {len(opt.param_groups)} parameter "
                         "groups; the reference has one set of hyperparameters")
    g = opt.param_groups[0]
    name = type(opt).__name__
    # a subclass (its own step) is judged against its base class's formulation
    base = next((c for c in (torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD)
                 if isinstance(opt, c)), None)
    # SGD's and Adam's weight_decay: L2 inside the optimiser on every parameter (``l2``)
    l2 = g.get("weight_decay", 0) if base in (torch.optim.SGD, torch.optim.Adam) else 0.0
    if g.get("maximize"):
        raise InputError(f"{source.label}: {name}(maximize=True)")
    if base is torch.optim.SGD and not g["nesterov"] and not g["dampening"]:
        kind = "momentum" if g["momentum"] else "sgd"
        return opt, Optimizer(kind, lr=g["lr"], momentum=g["momentum"] or 0.9, variant="torch",
                              l2=l2)
    if base in (torch.optim.Adam, torch.optim.AdamW) and not g["amsgrad"]:
        b1, b2 = g["betas"]
        adamw = base is torch.optim.AdamW
        return opt, Optimizer("adamw" if adamw else "adam", lr=g["lr"], beta1=b1, beta2=b2,
                              eps=g["eps"], variant="torch",
                              decay=g["weight_decay"] if adamw else 0.01, l2=l2)
    raise InputError(f"{source.label}: optimiser {name} with {dict(g, params='...')} has no exact "
                     "counterpart in the reference (SGD with or without momentum, no dampening "
                     "or nesterov; Adam or AdamW without amsgrad)")


def _load_state_dict(source: ModelSource, model: nn.Module,
                     weights: dict[str, np.ndarray]) -> None:
    """``model.load_state_dict`` from NumPy arrays, strict; exit 2 naming what does not fit."""
    try:
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise InputError(f"{source.label}: the weights do not fit the model: "
                         f"{' '.join(line.strip() for line in first[:3])}") from None


class TorchUserModel:
    """The user's module, traced once (:attr:`structure`), then run on NumPy batches."""

    backend = "torch-model"

    def __init__(self, source: ModelSource, dtype: str | None = None,
                 weights: dict[str, np.ndarray] | None = None, device: str = "cpu") -> None:
        self.source, model, self.device = source, source.model, device
        if weights is not None:
            _load_state_dict(source, model, weights)
        if dtype is not None:
            model.to(dtype={"float64": torch.float64, "float32": torch.float32}[dtype])
        model.to(device)
        for module in model.modules():
            if getattr(module, "inplace", False):
                module.inplace = False
        model.train()
        first = next(model.parameters(), None)
        if first is None:
            raise InputError(f"{source.label}: the model has no parameters")
        self.model, self.dtype = model, DTYPES.get(first.dtype)
        if self.dtype is None:
            raise InputError(f"{source.label}: parameters of dtype {first.dtype}; the reference "
                             "has float64 and float32")
        self.loss_name, reduction, self.loss_fn = _loss_function(source)
        with _state_kept(model):  # the probe in training mode must not move running stats
            layers, events = self._trace(self._probe())
        probabilities = "BCELoss" if isinstance(self.loss_fn, nn.BCELoss) else None
        self.structure: Structure = build(layers, source.input_shape, self.loss_name, reduction,
                                          self.dtype, _sources(events),
                                          sigmoid_output=probabilities)
        self.spec = self.structure.spec
        self.named = self._named(layers)
        self.kinds = [layer.kind for layer in layers]
        self.torch_optimizer, self.optimizer = _optimizer(source, model)

    def _probe(self) -> torch.Tensor:
        """A batch of 2 zeros fitting the first Linear/Conv2d (in module order) or the given
        input shape."""
        shape = self.source.input_shape
        for module in self.model.modules():
            if isinstance(module, nn.Linear) and not shape:
                shape = (module.in_features,)
            if isinstance(module, nn.Conv2d | nn.Linear):
                break
        if not shape:
            raise InputError(f"{self.source.label}: give --input-shape H,W,C")
        native = (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape
        first = next(self.model.parameters())
        return torch.zeros((2, *native), dtype=first.dtype, device=first.device)

    def _trace(self, x: torch.Tensor) -> tuple[list[Layer], list[tuple]]:
        recorder = _Recorder(self.model, self.source.layers)
        try:
            with recorder, user_code(self.source.label, "the model",
                                     f" on an input of shape {tuple(x.shape)}"):
                output = self.model(x)
        finally:
            recorder.remove()
        if not isinstance(output, torch.Tensor):
            raise InputError(f"{self.source.label}: the model returned a "
                             f"{type(output).__name__}, not one tensor")
        if recorder.detached:
            raise InputError(f"{self.source.label}: the model calls {recorder.detached} in its "
                             "forward: it cuts the gradient there, which changes the gradients "
                             "being checked (the reference differentiates through every layer)")
        layers = explicit_same([make() for make, _, _ in recorder.events])
        return _global_pool_flatten(layers), recorder.events

    def _named(self, layers: list[Layer]) -> dict[str, nn.Parameter]:
        modules = {}
        for label, module in self.model.named_modules():
            modules[_label(label, module)] = module
        named = {}
        for name, (index, role) in self.structure.params.items():
            module = modules[layers[index].label]
            named[name] = getattr(module, TORCH_ATTRIBUTES[role])
        used = {id(p) for p in named.values()}
        for label, parameter in self.model.named_parameters():
            if id(parameter) not in used and parameter.requires_grad:
                raise InputError(f"{self.source.label}: parameter {label} is not one the "
                                 "reference's model has")
        return named

    def params(self) -> dict[str, np.ndarray]:
        """The model's parameters in the canonical layout."""
        return {k: layout.from_framework(FRAMEWORK, k, p.detach().cpu().numpy(), self.spec)
                for k, p in self.named.items()}

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Set the model's parameters from the canonical layout (a port's transfer)."""
        with torch.no_grad():
            for k, p in self.named.items():
                value = layout.to_framework(FRAMEWORK, k, params[k], self.spec)
                p.copy_(torch.from_numpy(value.astype(self.spec.dtype)))

    def _input(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(edges.input_to_framework(FRAMEWORK, self.spec, x)).to(self.device)

    def _targets(self, y: np.ndarray, n: int) -> torch.Tensor:
        if self.loss_name == "ce" and np.asarray(y).ndim == 1:
            return torch.from_numpy(np.asarray(y, dtype=np.int64)).to(self.device)
        t = as_targets(self.loss_name, y, n, self.spec.output_dim, np.dtype(self.spec.dtype))
        return torch.from_numpy(t).to(self.device)

    def _forward(self, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, dict, Any]:
        """Run the model (recording); ``(loss, tensors by canonical key, canonical mask)``."""
        layers, events = self._trace(self._input(x))
        if [layer.kind for layer in layers] != self.kinds:
            raise InputError(f"{self.source.label}: the model ran another chain of layers on "
                             "this batch than when it was traced")
        tensors = {key: events[i][2] for key, i in self.structure.keys.items()}
        mask = None
        if self.structure.dropouts and self.model.training:
            mask = np.concatenate([layout.tensor_from_framework(
                FRAMEWORK, self.spec, key,
                (tensors[key].detach().cpu().numpy() != 0).astype(self.spec.dtype))
                for key in self.structure.dropouts], axis=1)
        targets = self._targets(y, len(x))
        output = tensors[list(tensors)[-1]] if self.structure.loss_input is None \
            else events[self.structure.loss_input][2]
        with user_code(self.source.label, "the loss"):
            loss = self.loss_fn(output, targets)
        return loss, tensors, mask

    def run(self, x: np.ndarray, y: np.ndarray,
            training: bool = True) -> tuple[Trace, Gradients, np.ndarray | None]:
        """Forward, loss, deltas and gradients of batch ``(x, y)``, in the canonical layout,
        and the dropout mask the model drew (canonical, or None; none in eval mode)."""
        self.model.zero_grad(set_to_none=True)
        self.model.train(training)
        try:
            loss, tensors, mask = self._forward(x, y)
        finally:
            self.model.train()
        zs = {k[2:]: t for k, t in tensors.items() if k.startswith("z.")}
        for z in zs.values():
            z.retain_grad()
        with user_code(self.source.label, "backward"):
            loss.backward()
        numpy = {k: t.detach().cpu().numpy() for k, t in tensors.items()}
        trace = edges.make_trace(FRAMEWORK, self.spec, numpy)
        grads = edges.make_gradients(
            FRAMEWORK, self.spec, loss.item(),
            {k: p.grad.detach().cpu().numpy() for k, p in self.named.items()
             if not self.spec.is_state(k)},
            {k: z.grad.detach().cpu().numpy() for k, z in zs.items()}, trace.output)
        return trace, grads, mask

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray | None]:
        """One step of the user's optimiser: ``(loss before it, the dropout mask drawn)``."""
        with user_code(self.source.label, "the optimizer's zero_grad"):
            self.torch_optimizer.zero_grad(set_to_none=True)
        loss, _, mask = self._forward(x, y)
        with user_code(self.source.label, "backward"):
            loss.backward()
        with user_code(self.source.label, "the optimizer's step"):
            self.torch_optimizer.step()
        return float(loss.item()), mask
