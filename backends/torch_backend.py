"""The ``torch`` backend: an ordinary ``torch.nn.Module`` built from an :class:`MLPSpec` or a
:class:`CNNSpec`.

- MLP: ``nn.Linear`` layers, each followed by an activation module (``nn.Sigmoid``, ``nn.Tanh``,
  ``nn.ReLU``, ``nn.Identity``, ``nn.LeakyReLU(0.01)``, or the tiny :class:`ReLU3`), in the spec's
  dtype. Weights are copied in from the canonical layout by :mod:`.layout`
  (``Linear.weight = W.T``, ``Linear.bias = b.reshape(-1)``).
- CNN (the three-framework notes): on NCHW, per block ``nn.Conv2d`` -> activation ->
  ``nn.MaxPool2d``, then ``nn.Flatten`` and ``nn.Linear`` layers. :mod:`.layout` converts kernels
  HWIO -> OIHW and permutes ``fc1``'s rows from NHWC to NCHW flatten order. SAME padding follows
  TensorFlow: a symmetric one is the layer's ``padding``, an asymmetric one (stride 2, even window)
  an explicit ``nn.ConstantPad2d`` (zeros before a conv, ``-inf`` before a pool). Dropout applies
  the given 0/1 mask, ``h * (mask / keep_prob)``: no torch RNG.
- Loss: ``F.cross_entropy`` on logits (class indices or dense targets),
  ``F.binary_cross_entropy_with_logits``, ``F.mse_loss`` (``mse``: its ``mean`` is over N·K
  elements), or ``0.5 * sum((o - t)^2)``; reduction ``sum`` or ``mean`` (divided by N samples),
  plus ``0.5 * lambda * sum(W^2)`` over weights.
- Gradients by autograd; deltas ``dL/dz`` are the gradients of the retained pre-activations,
  returned (like every traced map) in the canonical NHWC layout.
- Steps by ``torch.optim.SGD`` (with or without momentum) and ``torch.optim.Adam``: the reference's
  ``"torch"`` optimiser variant. Optimiser state moves to and from the reference's flat format.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnparity.reference.activations import PRELU_INIT
from nnparity.reference.cnn_spec import CNNSpec, ConvBlock
from nnparity.reference.conv import output_size, padding_amounts
from nnparity.reference.family import Spec
from nnparity.reference.optim import ADAMS, Optimizer, init_state
from nnparity.reference.params import check_params
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.spec import MLPSpec

from . import edges, layout
from .cnn_graph import trace_cnn
from .determinism import configure_torch
from .precision import check_device
from .protocol import Backend, Params, State

configure_torch()

FRAMEWORK = "torch"
VARIANT = "torch"
DTYPES = {"float64": torch.float64, "float32": torch.float32}


class ReLU3(nn.Module):
    """``relu(z)^3`` (the Fashion-MNIST report's RELU3); autograd gives ``3 relu(z)^2``."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        r = torch.relu(z)
        return r * r * r


def activation_module(name: str, dtype: torch.dtype = torch.float64,
                      slopes: int = 1) -> nn.Module:
    """The torch module for a reference activation name (``prelu``: ``nn.PReLU()`` with
    ``slopes`` slopes, 1 shared or one per unit, initialised to 0.25, in ``dtype``)."""
    modules = {
        "prelu": lambda: nn.PReLU(num_parameters=slopes, init=PRELU_INIT, dtype=dtype),
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "identity": nn.Identity,
        "relu3": ReLU3,
        "leaky_relu": lambda: nn.LeakyReLU(negative_slope=0.01),
    }
    if name not in modules:
        raise ValueError(f"the torch backend has no activation {name!r}")
    return modules[name]()


class TorchMLP(nn.Module):
    """``z_l = h_{l-1} W_l^T + b_l`` by ``nn.Linear``, ``h_l = f_l(z_l)`` by an activation module.

    ``x [N, D_0]`` in, ``o [N, D_L]`` out; :meth:`trace` also returns every ``z_l`` and ``h_l``.
    """

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        dtype = DTYPES[spec.dtype]
        widths = spec.widths
        self.layer_names = spec.layer_names
        self.linears = nn.ModuleList(
            nn.Linear(widths[i], widths[i + 1], bias=spec.bias, dtype=dtype)
            for i in range(spec.depth)
        )
        slopes = spec.layers if spec.prelu_slopes == "unit" else (1,) * spec.depth
        self.activations = nn.ModuleList(activation_module(a, dtype, n)
                                         for a, n in zip(spec.activations, slopes, strict=True))

    def trace(self, x: torch.Tensor, dropout_mask: None = None) -> dict[str, torch.Tensor]:
        """``{"z.layer1": z_1, "h.layer1": h_1, ...}`` in forward order, each ``[N, D_l]``."""
        out: dict[str, torch.Tensor] = {}
        h = x
        for name, linear, activation in zip(self.layer_names, self.linears, self.activations,
                                            strict=True):
            z = out[f"z.{name}"] = linear(h)
            h = out[f"h.{name}"] = activation(z)
        return out

    def forward(self, x: torch.Tensor, dropout_mask: None = None) -> torch.Tensor:
        return self.trace(x)[f"h.{self.layer_names[-1]}"]

    def canonical_parameters(self) -> dict[str, nn.Parameter]:
        """Canonical name -> parameter (``W1 -> linears[0].weight``, ``b1 -> ...bias``,
        ``a1 -> activations[0].weight`` for ``nn.PReLU``)."""
        named: dict[str, nn.Parameter] = {}
        for i, (linear, activation) in enumerate(zip(self.linears, self.activations,
                                                     strict=True), 1):
            named[f"W{i}"] = linear.weight
            if linear.bias is not None:
                named[f"b{i}"] = linear.bias
            if isinstance(activation, nn.PReLU):
                named[f"a{i}"] = activation.weight
        return named


def tf_same_pad(hw: tuple[int, int], window: int, stride: int, padding: str,
                value: float = 0.0) -> tuple[nn.Module, int | tuple[int, int]]:
    """TensorFlow's padding rule as torch modules: ``(pad module, padding for the conv/pool)``.

    A symmetric SAME padding (odd window, stride 1) goes to the layer's own ``padding``; an
    asymmetric one (stride 2 or even window: the extra pixel bottom/right, see
    :func:`reference.conv.padding_amounts`) is an explicit ``nn.ConstantPad2d`` with
    ``(left, right, top, bottom)`` and ``value`` (``-inf`` before a max-pool) before a layer
    with ``padding=0``. VALID: no padding.
    """
    (top, bottom), (left, right) = padding_amounts(hw, (window, window), stride, padding)
    if top == bottom and left == right:
        return nn.Identity(), (top, left)
    return nn.ConstantPad2d((left, right, top, bottom), value), 0


class TorchConvBlock(nn.Module):
    """One :class:`ConvBlock` on NCHW: ``[pad] -> nn.Conv2d -> activation -> [pad -inf] ->
    [nn.MaxPool2d]``; ``x [N, C, H, W]`` -> ``(z, h, pooled)`` (``pooled`` None without pool)."""

    def __init__(self, block: ConvBlock, cin: int, hw: tuple[int, int], dtype: torch.dtype) -> None:
        super().__init__()
        k, s = block.kernel, block.stride
        self.pad, padding = tf_same_pad(hw, k, s, block.padding)
        self.conv = nn.Conv2d(cin, block.filters, k, stride=s, padding=padding, dtype=dtype)
        self.activation = activation_module(block.activation)
        self.pool: nn.Module | None = None
        if block.pool:
            conv_hw = tuple(output_size(n, k, s, block.padding) for n in hw)
            self.pool_pad, padding = tf_same_pad(conv_hw, block.pool, block.pool_stride,
                                                 block.pool_padding, value=-math.inf)
            self.pool = nn.MaxPool2d(block.pool, block.pool_stride, padding=padding)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        z = self.conv(self.pad(x))
        h = self.activation(z)
        return z, h, None if self.pool is None else self.pool(self.pool_pad(h))


class TorchCNN(nn.Module):
    """A :class:`CNNSpec` on NCHW: conv blocks -> ``nn.Flatten`` (NCHW order) -> ``nn.Linear``
    layers, with explicit dropout ``h * (mask / keep_prob)`` on the output layer's input.

    ``x [N, C, H, W]`` in, logits ``[N, classes]`` out. ``fc1``'s rows are in NCHW flatten order
    (the layout module permutes them from the canonical NHWC order).
    """

    def __init__(self, spec: CNNSpec) -> None:
        super().__init__()
        dtype = DTYPES[spec.dtype]
        shapes = spec.feature_shapes()
        self.spec = spec
        self.blocks = nn.ModuleList(
            TorchConvBlock(block, cin, (h, w), dtype)
            for block, (h, w, cin) in zip(spec.conv, shapes[:-1], strict=True)
        )
        self.flatten = nn.Flatten()
        widths = spec.dense_widths
        self.linears = nn.ModuleList(nn.Linear(widths[j], widths[j + 1], dtype=dtype)
                                     for j in range(len(widths) - 1))
        self.activations = nn.ModuleList(activation_module(a)
                                         for a in (*spec.dense_activations, "identity"))

    def trace(self, x: torch.Tensor,
              dropout_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every ``z``/``h`` in forward order under the reference's keys
        (:func:`layout.trace_cnn`); maps are NCHW, ``h.flatten`` is in NCHW order."""
        return trace_cnn(self.spec, x, self.blocks, self.flatten,
                                list(zip(self.linears, self.activations, strict=True)),
                                dropout_mask)

    def forward(self, x: torch.Tensor, dropout_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.trace(x, dropout_mask)[f"h.{self.spec.fc_names[-1]}"]

    def canonical_parameters(self) -> dict[str, nn.Parameter]:
        """Canonical name -> parameter (``conv1.W -> blocks[0].conv.weight``,
        ``fc1.W -> linears[0].weight``, ...), in the spec's parameter order."""
        named: dict[str, nn.Parameter] = {}
        modules = [b.conv for b in self.blocks] + list(self.linears)
        for name, module in zip(self.spec.layer_names, modules, strict=True):
            named[f"{name}.W"], named[f"{name}.b"] = module.weight, module.bias
        return named


Model = TorchMLP | TorchCNN
MODELS: dict[str, type[TorchMLP] | type[TorchCNN]] = {"mlp": TorchMLP, "cnn": TorchCNN}


def build_model(spec: Spec, params: Params,
                device: str = "cpu") -> tuple[Model, dict[str, nn.Parameter]]:
    """The model for ``spec`` (:class:`TorchMLP` or :class:`TorchCNN`) holding ``params``
    (canonical layout, converted by :mod:`.layout`) on ``device``, and its parameters by
    canonical name."""
    check_params(spec, params)
    model = MODELS[spec.family](spec).to(device)
    named = model.canonical_parameters()
    with torch.no_grad():
        for name, parameter in named.items():
            parameter.copy_(_tensor(layout.to_framework(FRAMEWORK, name, params[name], spec),
                                    spec))
    return model, named


def _tensor(a: np.ndarray, spec: Spec, device: str | torch.device = "cpu") -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=spec.dtype).copy()).to(device)


def _mask(spec: Spec, mask: np.ndarray | None, device: str = "cpu") -> torch.Tensor | None:
    """A checked canonical dropout mask as a tensor in the order of the model's dropout input."""
    mask = edges.dropout_mask_to_framework(FRAMEWORK, spec, mask)
    return None if mask is None else torch.from_numpy(mask).to(device)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _loss(spec: MLPSpec, named: dict[str, nn.Parameter], output: torch.Tensor,
          y: np.ndarray) -> torch.Tensor:
    """The reduced loss of ``output [N, K]`` against labels ``y``, plus weight decay."""
    n, k = output.shape
    targets, indices = edges.split_labels(spec.loss, y, n, k, spec.dtype)
    reduction, device = spec.reduction, output.device
    target = _tensor(targets, spec, device)
    if spec.loss == "ce":
        labels = torch.from_numpy(indices).to(device) if indices is not None else target
        value = F.cross_entropy(output, labels, reduction=reduction)
    elif spec.loss == "bce":
        value = F.binary_cross_entropy_with_logits(output, target, reduction=reduction)
    elif spec.loss == "mse":
        value = F.mse_loss(output, target, reduction=reduction)
    else:
        value = 0.5 * torch.sum(torch.square(output - target))
        if reduction == "mean":
            value = value / n
    if spec.weight_decay:
        squares = sum(torch.sum(p * p) for name, p in named.items() if spec.is_weight(name))
        value = value + 0.5 * spec.weight_decay * squares
    return value


def _input(spec: Spec, x: np.ndarray, device: str = "cpu") -> torch.Tensor:
    return torch.from_numpy(edges.input_to_framework(FRAMEWORK, spec, x)).to(device)


def torch_optimizer(optimizer: Optimizer, parameters: list[nn.Parameter]) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` / ``SGD(momentum=mu)`` / ``Adam`` / ``AdamW`` for a reference
    :class:`Optimizer`.

    Raises ``ValueError`` for the ``keras`` variant.
    """
    edges.check_variant(optimizer, VARIANT, "torch", "torch.optim")
    if optimizer.name == "adamw":
        return torch.optim.AdamW(parameters, lr=optimizer.lr,
                                 betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.eps,
                                 weight_decay=optimizer.decay)
    if optimizer.name == "adam":
        return torch.optim.Adam(parameters, lr=optimizer.lr, weight_decay=optimizer.l2,
                                betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.eps)
    momentum = optimizer.momentum if optimizer.name == "momentum" else 0.0
    return torch.optim.SGD(parameters, lr=optimizer.lr, momentum=momentum,
                           weight_decay=optimizer.l2)


class TorchTrainer:
    """A torch model and its ``torch.optim`` optimiser; NumPy in and out.

    A CNN with ``keep_prob < 1`` draws each step's dropout mask from
    ``default_rng(dropout_seed)`` unless ``step`` is given one, as the reference trainer does.
    """

    def __init__(self, spec: Spec, params: Params, optimizer: Optimizer,
                 state: State | None = None, dropout_seed: int = 0, device: str = "cpu") -> None:
        self.spec, self.optimizer, self.device = spec, optimizer, device
        self.model, self._named = build_model(spec, params, device)
        self._opt = torch_optimizer(optimizer, list(self._named.values()))
        self._load_state(init_state(optimizer, params) if state is None else state)
        self._dropout_rng = np.random.default_rng(dropout_seed)

    def _load_state(self, state: State) -> None:
        t, slots = edges.split_state(state)
        for name, per in slots.items():
            parameter = self._named[name]
            native = {s: _tensor(layout.to_framework(FRAMEWORK, name, a, self.spec), self.spec,
                                 self.device) for s, a in per.items()}
            if self.optimizer.name in ADAMS:
                self._opt.state[parameter] = {
                    "step": torch.tensor(float(t), dtype=torch.get_default_dtype()),
                    "exp_avg": native["m"],
                    "exp_avg_sq": native["v"],
                }
            else:
                self._opt.state[parameter] = {"momentum_buffer": native["v"]}

    def step(self, x: np.ndarray, y: np.ndarray, dropout_mask: np.ndarray | None = None) -> float:
        mask = edges.training_mask(self.spec, len(x), dropout_mask, self._dropout_rng)
        self._opt.zero_grad(set_to_none=True)
        output = self.model(_input(self.spec, x, self.device),
                            _mask(self.spec, mask, self.device))
        loss = _loss(self.spec, self._named, output, y)
        loss.backward()
        self._opt.step()
        return float(loss.item())

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return _numpy(self.model(_input(self.spec, x, self.device)))

    def params(self) -> Params:
        return {k: layout.from_framework(FRAMEWORK, k, _numpy(p), self.spec)
                for k, p in self._named.items()}

    def state(self) -> State:
        if self.optimizer.name == "sgd":
            return {}
        keys = {"m": "exp_avg", "v": "exp_avg_sq"} if self.optimizer.name in ADAMS \
            else {"v": "momentum_buffer"}
        slots, t = {}, None
        for name, parameter in self._named.items():
            native = self._opt.state[parameter]
            slots[name] = {s: layout.from_framework(FRAMEWORK, name, _numpy(native[key]),
                                                    self.spec)
                           for s, key in keys.items()}
            if "step" in native:
                t = int(native["step"].item())
        return edges.join_state(t, slots, list(self._named))


class TorchBackend(Backend):
    """PyTorch: ``nn.Module`` + ``torch.nn.functional`` losses + autograd + ``torch.optim``."""

    name = "torch"
    optimizer_variant = VARIANT

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def on(self, device: str) -> TorchBackend:
        """This backend computing on ``device`` (``cpu`` or ``cuda``; see
        :func:`.precision.check_device`)."""
        check_device("torch", device)
        return self if device == self.device else TorchBackend(device)

    def _run(self, spec: Spec, params: Params, x: np.ndarray,
             dropout_mask: np.ndarray | None) -> tuple[dict[str, nn.Parameter],
                                                       dict[str, torch.Tensor]]:
        """Build the model and trace ``x``: ``(params by name, traced tensors)``."""
        edges.check_spec(spec, self.name)
        model, named = build_model(spec, params, self.device)
        mask = edges.as_dropout_mask(spec, dropout_mask, len(x))
        return named, model.trace(_input(spec, x, self.device), _mask(spec, mask, self.device))

    def forward(self, spec: Spec, params: Params, x: np.ndarray, *,
                dropout_mask: np.ndarray | None = None) -> Trace:
        with torch.no_grad():
            _, tensors = self._run(spec, params, x, dropout_mask)
        return edges.make_trace(FRAMEWORK, spec, {k: _numpy(t) for k, t in tensors.items()})

    def gradients(self, spec: Spec, params: Params, x: np.ndarray, y: np.ndarray,
                  *, dropout_mask: np.ndarray | None = None) -> Gradients:
        named, tensors = self._run(spec, params, x, dropout_mask)
        zs = {layer: tensors[f"z.{layer}"] for layer in spec.layer_names}
        for z in zs.values():
            z.retain_grad()
        output = tensors[f"h.{spec.layer_names[-1]}"]
        loss = _loss(spec, named, output, y)
        loss.backward()
        return edges.make_gradients(
            FRAMEWORK, spec, loss.item(), {k: _numpy(p.grad) for k, p in named.items()},
            {k: _numpy(z.grad) for k, z in zs.items()}, _numpy(output))

    def trainer(self, spec: Spec, params: Params, optimizer: Optimizer,
                state: State | None = None, dropout_seed: int = 0) -> TorchTrainer:
        edges.check_spec(spec, self.name)
        return TorchTrainer(spec, params, optimizer, state, dropout_seed, self.device)


BACKEND = TorchBackend()
