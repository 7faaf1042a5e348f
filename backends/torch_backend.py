"""The ``torch`` backend: an ordinary ``torch.nn.Module`` built from an :class:`MLPSpec`.

- Model: ``nn.Linear`` layers, each followed by an activation module (``nn.Sigmoid``, ``nn.Tanh``,
  ``nn.ReLU``, ``nn.Identity``, ``nn.LeakyReLU(0.01)``, or the tiny :class:`ReLU3`), in the spec's
  dtype. Weights are copied in from the canonical layout by :mod:`.layout`
  (``Linear.weight = W.T``, ``Linear.bias = b.reshape(-1)``).
- Loss: ``F.cross_entropy`` on logits (class indices or dense targets),
  ``F.binary_cross_entropy_with_logits``, or ``0.5 * sum((o - t)^2)``; reduction ``sum`` or
  ``mean`` (divided by N samples), plus ``0.5 * lambda * sum(W^2)`` over weights.
- Gradients by autograd; deltas ``dL/dz`` are the gradients of the retained pre-activations.
- Steps by ``torch.optim.SGD`` (with or without momentum) and ``torch.optim.Adam``: the reference's
  ``"torch"`` optimiser variant. Optimiser state moves to and from the reference's flat format.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnparity.reference.mlp import check_params
from nnparity.reference.optim import Optimizer, init_state
from nnparity.reference.results import Gradients, Trace
from nnparity.reference.spec import MLPSpec

from . import layout
from .determinism import configure_torch
from .protocol import Backend, Params, State

configure_torch()

FRAMEWORK = "torch"
VARIANT = "torch"
DTYPES = {"float64": torch.float64, "float32": torch.float32}


class ReLU3(nn.Module):
    """``relu(z)^3`` (seed 004's RELU3); autograd gives ``3 relu(z)^2``."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        r = torch.relu(z)
        return r * r * r


def activation_module(name: str) -> nn.Module:
    """The torch module for a reference activation name."""
    modules = {
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
        self.linears = nn.ModuleList(
            nn.Linear(widths[i], widths[i + 1], bias=spec.bias, dtype=dtype)
            for i in range(spec.depth)
        )
        self.activations = nn.ModuleList(activation_module(a) for a in spec.activations)

    def trace(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``([z_1..z_L], [h_1..h_L])``, each ``[N, D_l]``."""
        zs, hs = [], []
        h = x
        for linear, activation in zip(self.linears, self.activations, strict=True):
            z = linear(h)
            h = activation(z)
            zs.append(z)
            hs.append(h)
        return zs, hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trace(x)[1][-1]


def _named_parameters(spec: MLPSpec, model: TorchMLP) -> dict[str, nn.Parameter]:
    """Canonical name -> the module's parameter (``W1 -> linears[0].weight``, ...)."""
    named: dict[str, nn.Parameter] = {}
    for i, linear in enumerate(model.linears, 1):
        named[f"W{i}"] = linear.weight
        if spec.bias:
            named[f"b{i}"] = linear.bias
    return named


def build_model(spec: MLPSpec, params: Params) -> tuple[TorchMLP, dict[str, nn.Parameter]]:
    """A :class:`TorchMLP` holding ``params`` (canonical layout), and its parameters by name."""
    check_params(spec, params)
    model = TorchMLP(spec)
    named = _named_parameters(spec, model)
    with torch.no_grad():
        for name, parameter in named.items():
            parameter.copy_(_tensor(layout.to_framework(FRAMEWORK, name, params[name]), spec))
    return model, named


def _tensor(a: np.ndarray, spec: MLPSpec) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=spec.dtype).copy())


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def _loss(spec: MLPSpec, named: dict[str, nn.Parameter], output: torch.Tensor,
          y: np.ndarray) -> torch.Tensor:
    """The reduced loss of ``output [N, K]`` against labels ``y``, plus weight decay."""
    n, k = output.shape
    targets, indices = layout.split_labels(spec.loss, y, n, k, spec.dtype)
    reduction = spec.reduction
    if spec.loss == "ce":
        labels = torch.from_numpy(indices) if indices is not None else _tensor(targets, spec)
        value = F.cross_entropy(output, labels, reduction=reduction)
    elif spec.loss == "bce":
        value = F.binary_cross_entropy_with_logits(output, _tensor(targets, spec),
                                                   reduction=reduction)
    else:
        value = 0.5 * torch.sum(torch.square(output - _tensor(targets, spec)))
        if reduction == "mean":
            value = value / n
    if spec.weight_decay:
        squares = sum(torch.sum(p * p) for name, p in named.items() if spec.is_weight(name))
        value = value + 0.5 * spec.weight_decay * squares
    return value


def _input(spec: MLPSpec, x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(layout.as_input(spec, x))


def torch_optimizer(optimizer: Optimizer, parameters: list[nn.Parameter]) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` / ``SGD(momentum=mu)`` / ``Adam`` for a reference :class:`Optimizer`.

    Raises ``ValueError`` for the ``keras`` variant.
    """
    layout.check_variant(optimizer, VARIANT, "torch", "torch.optim")
    if optimizer.name == "adam":
        return torch.optim.Adam(parameters, lr=optimizer.lr,
                                betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.eps)
    momentum = optimizer.momentum if optimizer.name == "momentum" else 0.0
    return torch.optim.SGD(parameters, lr=optimizer.lr, momentum=momentum)


class TorchTrainer:
    """A :class:`TorchMLP` and its ``torch.optim`` optimiser; NumPy in and out."""

    def __init__(self, spec: MLPSpec, params: Params, optimizer: Optimizer,
                 state: State | None = None) -> None:
        self.spec, self.optimizer = spec, optimizer
        self.model, self._named = build_model(spec, params)
        self._opt = torch_optimizer(optimizer, list(self._named.values()))
        self._load_state(init_state(optimizer, params) if state is None else state)

    def _load_state(self, state: State) -> None:
        t, slots = layout.split_state(state)
        for name, per in slots.items():
            parameter = self._named[name]
            native = {s: _tensor(layout.to_framework(FRAMEWORK, name, a), self.spec)
                      for s, a in per.items()}
            if self.optimizer.name == "adam":
                self._opt.state[parameter] = {
                    "step": torch.tensor(float(t), dtype=torch.get_default_dtype()),
                    "exp_avg": native["m"],
                    "exp_avg_sq": native["v"],
                }
            else:
                self._opt.state[parameter] = {"momentum_buffer": native["v"]}

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self._opt.zero_grad(set_to_none=True)
        loss = _loss(self.spec, self._named, self.model(_input(self.spec, x)), y)
        loss.backward()
        self._opt.step()
        return float(loss.item())

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return _numpy(self.model(_input(self.spec, x)))

    def params(self) -> Params:
        return {k: layout.from_framework(FRAMEWORK, k, _numpy(p)) for k, p in self._named.items()}

    def state(self) -> State:
        if self.optimizer.name == "sgd":
            return {}
        keys = {"m": "exp_avg", "v": "exp_avg_sq"} if self.optimizer.name == "adam" \
            else {"v": "momentum_buffer"}
        slots, t = {}, None
        for name, parameter in self._named.items():
            native = self._opt.state[parameter]
            slots[name] = {s: layout.from_framework(FRAMEWORK, name, _numpy(native[key]))
                           for s, key in keys.items()}
            if "step" in native:
                t = int(native["step"].item())
        return layout.join_state(t, slots, list(self._named))


class TorchBackend(Backend):
    """PyTorch: ``nn.Module`` + ``torch.nn.functional`` losses + autograd + ``torch.optim``."""

    name = "torch"
    optimizer_variant = VARIANT

    def forward(self, spec: MLPSpec, params: Params, x: np.ndarray, *,
                dropout_mask: np.ndarray | None = None) -> Trace:
        layout.check_mlp(spec, self.name, dropout_mask)
        model, _ = build_model(spec, params)
        with torch.no_grad():
            zs, hs = model.trace(_input(spec, x))
        return layout.make_trace(spec.layer_names, [_numpy(z) for z in zs],
                                 [_numpy(h) for h in hs])

    def gradients(self, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray, *,
                  dropout_mask: np.ndarray | None = None) -> Gradients:
        layout.check_mlp(spec, self.name, dropout_mask)
        model, named = build_model(spec, params)
        zs, hs = model.trace(_input(spec, x))
        for z in zs:
            z.retain_grad()
        loss = _loss(spec, named, hs[-1], y)
        loss.backward()
        grads = {k: _numpy(p.grad) for k, p in named.items()}
        return layout.make_gradients(FRAMEWORK, list(named), loss.item(), grads,
                                     spec.layer_names, [_numpy(z.grad) for z in zs],
                                     _numpy(hs[-1]))

    def trainer(self, spec: MLPSpec, params: Params, optimizer: Optimizer,
                state: State | None = None) -> TorchTrainer:
        layout.check_mlp(spec, self.name)
        return TorchTrainer(spec, params, optimizer, state)


BACKEND = TorchBackend()
