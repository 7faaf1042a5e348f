"""The ``torch`` backend: an ordinary ``torch.nn.Module`` built from any spec's layer list.

- Model: :class:`TorchNetwork` folds :data:`.torch_layers.LAYERS` over ``spec.net``, one torch
  module per layer (``nn.Linear``, ``nn.Conv2d`` on NCHW with TensorFlow's SAME rule,
  ``nn.MaxPool2d``, ``nn.Flatten``, ``nn.PReLU``, activation modules, and dropout as the given
  0/1 mask, ``h * (mask / keep_prob)``: no torch RNG), in the spec's dtype. Parameters are
  copied in from the canonical layout by :mod:`.layout` (``Linear.weight = W.T``, biases
  ``[D]``, kernels HWIO -> OIHW, the rows of the first dense weight after a flatten permuted
  from NHWC to NCHW flatten order); inputs NHWC -> NCHW by :mod:`.edges`.
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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnparity.reference.family import Spec
from nnparity.reference.optim import ADAMS, Optimizer, init_state
from nnparity.reference.params import check_params, trainable
from nnparity.reference.results import Gradients, Trace

from . import edges, layout, torch_layers
from .determinism import configure_torch
from .precision import check_device
from .protocol import Backend, Params, State

configure_torch()

FRAMEWORK = "torch"
VARIANT = "torch"


class TorchNetwork(nn.Module):
    """``spec.net`` folded over :data:`.torch_layers.LAYERS`: one torch module per layer, run
    in order, for every spec.

    ``x`` (NCHW images or ``[N, D]``) in, the last layer's output out. :meth:`trace` records
    what the reference records (:mod:`reference.network`): ``z.<name>`` for a dense/conv layer
    (and ``h.<name>`` until its activation overwrites it), ``h.<name>`` for an activation (the
    name of the layer it follows), a pool, a flatten and a dropout layer (the last only with a
    mask, unless ``traced_without_mask``). Maps are NCHW, a flatten's ``h`` in NCHW order.
    """

    def __init__(self, spec: Spec) -> None:
        super().__init__()
        self.net = spec.net
        self.shapes = spec.layer_shapes[:-1]
        self.layers = nn.ModuleList(torch_layers.build(layer, shape, spec)
                                    for layer, shape in zip(self.net, self.shapes, strict=True))

    def run(self, x: torch.Tensor, dropout_mask: torch.Tensor | None = None
            ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``(traced tensors in forward order, output)``; ``dropout_mask [N, units]`` is the
        canonical 0/1 mask (each dropout layer picks its columns), None at evaluation."""
        out: dict[str, torch.Tensor] = {}
        h = torch_layers.run_chain(self.net, self.layers, x, dropout_mask, out)
        return out, h

    def trace(self, x: torch.Tensor,
              dropout_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every traced tensor (class docstring) in forward order."""
        return self.run(x, dropout_mask)[0]

    def forward(self, x: torch.Tensor, dropout_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.run(x, dropout_mask)[1]

    def canonical_parameters(self) -> dict[str, torch.Tensor]:
        """Canonical name -> parameter (``W1 -> layers[0].weight``, ``conv1.W ->
        layers[0].conv.weight``, ...) or state buffer (``batchnorm1.mean ->
        layers[1].running_mean``), in the spec's parameter order."""
        named: dict[str, torch.Tensor] = {}
        for layer, shape, module in zip(self.net, self.shapes, self.layers, strict=True):
            named.update(torch_layers.variables(layer, shape, module))
        return named


def build_model(spec: Spec, params: Params,
                device: str = "cpu") -> tuple[TorchNetwork, dict[str, torch.Tensor]]:
    """The :class:`TorchNetwork` of ``spec`` holding ``params`` (canonical layout, converted by
    :mod:`.layout`) on ``device``, and its parameters (and state buffers) by canonical name."""
    check_params(spec, params)
    model = TorchNetwork(spec).to(device)
    named = model.canonical_parameters()
    with torch.no_grad():
        for name, parameter in named.items():
            parameter.copy_(_tensor(layout.to_framework(FRAMEWORK, name, params[name], spec),
                                    spec))
    return model, named


def _tensor(a: np.ndarray, spec: Spec, device: str | torch.device = "cpu") -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=spec.dtype).copy()).to(device)


def _mask(mask: np.ndarray | None, device: str = "cpu") -> torch.Tensor | None:
    """A checked canonical dropout mask ``[N, units]`` as a tensor (each dropout layer picks
    its columns in its own order: :class:`.torch_layers.MaskedDropout`)."""
    return None if mask is None else torch.from_numpy(mask).to(device)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _loss(spec: Spec, named: dict[str, torch.Tensor], output: torch.Tensor,
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

    A spec with ``keep_prob < 1`` draws each step's dropout mask from
    ``default_rng(dropout_seed)`` unless ``step`` is given one, as the reference trainer does.
    """

    def __init__(self, spec: Spec, params: Params, optimizer: Optimizer,
                 state: State | None = None, dropout_seed: int = 0, device: str = "cpu") -> None:
        self.spec, self.optimizer, self.device = spec, optimizer, device
        self.model, self._named = build_model(spec, params, device)
        self._trained = trainable(spec, self._named)  # buffers (running statistics) left out
        self._opt = torch_optimizer(optimizer, list(self._trained.values()))
        self._load_state(init_state(optimizer, trainable(spec, params)) if state is None
                         else state)
        self._dropout_rng = np.random.default_rng(dropout_seed)

    def _load_state(self, state: State) -> None:
        t, slots = edges.split_state(state)
        for name, per in slots.items():
            parameter = self._trained[name]
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
        self.model.train()  # batch statistics; torch updates the running ones in forward
        output = self.model(_input(self.spec, x, self.device),
                            _mask(mask, self.device))
        loss = _loss(self.spec, self._named, output, y)
        loss.backward()
        self._opt.step()
        return float(loss.item())

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
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
        for name, parameter in self._trained.items():
            native = self._opt.state[parameter]
            slots[name] = {s: layout.from_framework(FRAMEWORK, name, _numpy(native[key]),
                                                    self.spec)
                           for s, key in keys.items()}
            if "step" in native:
                t = int(native["step"].item())
        return edges.join_state(t, slots, list(self._trained))


class TorchBackend(Backend):
    """PyTorch: ``nn.Module`` + ``torch.nn.functional`` losses + autograd + ``torch.optim``."""

    name = "torch"
    optimizer_variant = VARIANT
    batchnorm_variance = "unbiased"  # BatchNorm's running_var, no setting

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def on(self, device: str) -> TorchBackend:
        """This backend computing on ``device`` (``cpu`` or ``cuda``; see
        :func:`.precision.check_device`)."""
        check_device("torch", device)
        return self if device == self.device else TorchBackend(device)

    def _run(self, spec: Spec, params: Params, x: np.ndarray,
             dropout_mask: np.ndarray | None, training: bool
             ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
        """Build the model and run ``x`` in training (batch statistics) or evaluation mode:
        ``(params by name, traced tensors, output)``."""
        edges.check_spec(spec, self.name)
        model, named = build_model(spec, params, self.device)
        model.train(training)
        mask = edges.as_dropout_mask(spec, dropout_mask, len(x))
        return named, *model.run(_input(spec, x, self.device), _mask(mask, self.device))

    def forward(self, spec: Spec, params: Params, x: np.ndarray, *,
                dropout_mask: np.ndarray | None = None) -> Trace:
        with torch.no_grad():
            _, tensors, _ = self._run(spec, params, x, dropout_mask, dropout_mask is not None)
        return edges.make_trace(FRAMEWORK, spec, {k: _numpy(t) for k, t in tensors.items()})

    def gradients(self, spec: Spec, params: Params, x: np.ndarray, y: np.ndarray,
                  *, dropout_mask: np.ndarray | None = None) -> Gradients:
        named, tensors, output = self._run(spec, params, x, dropout_mask, True)
        zs = {layer: tensors[f"z.{layer}"] for layer in spec.layer_names}
        for z in zs.values():
            z.retain_grad()
        loss = _loss(spec, named, output, y)
        loss.backward()
        return edges.make_gradients(
            FRAMEWORK, spec, loss.item(),
            {k: _numpy(p.grad) for k, p in trainable(spec, named).items()},
            {k: _numpy(z.grad) for k, z in zs.items()}, _numpy(output))

    def trainer(self, spec: Spec, params: Params, optimizer: Optimizer,
                state: State | None = None, dropout_seed: int = 0) -> TorchTrainer:
        edges.check_spec(spec, self.name)
        return TorchTrainer(spec, params, optimizer, state, dropout_seed, self.device)


BACKEND = TorchBackend()
