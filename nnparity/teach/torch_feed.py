"""How the page runs :mod:`.torch_blocks` on its fixed example: the measuring harness.

:func:`run` takes the example's NumPy arrays in the canonical layout (``W [D_in, D_out]``,
NHWC, HWIO), builds each block function's arguments (tensors autograd tracks, layers with the
example's weights copied in, NCHW/OIHW), calls the function and returns its outputs as NumPy
arrays in the canonical layout again. The page shows this code only in a fold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from . import torch_blocks as BLOCKS

Array = np.ndarray
Out = dict[str, torch.Tensor]
TRACKED = ("x", "z", "h", "o")  # the inputs a block differentiates with respect to


def leaf(a: Array) -> torch.Tensor:
    """A tensor autograd differentiates with respect to (same dtype as ``a``)."""
    return torch.tensor(a, requires_grad=True)


def nchw(a: Array, tracked: bool = False) -> torch.Tensor:
    """An NHWC array as an NCHW tensor (a leaf when ``tracked``)."""
    t = torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()
    return t.requires_grad_() if tracked else t


def nhwc(t: torch.Tensor) -> torch.Tensor:
    """An NCHW tensor back in NHWC."""
    return t.permute(0, 2, 3, 1)


def linear(W: Array, b: Array) -> nn.Linear:
    """``nn.Linear`` holding ``W [D_in, D_out]`` (as ``weight = W.T``) and ``b``."""
    layer = nn.Linear(*W.shape, dtype=torch.from_numpy(W).dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W.T))
        layer.bias.copy_(torch.from_numpy(b))
    return layer


def plain(fn: Callable[..., Out], **inputs: Any) -> Out:
    """Arrays as tensors (the tracked ones as leaves), everything else as it is."""
    args = {name: (leaf(v) if name in TRACKED else torch.from_numpy(v))
            if isinstance(v, np.ndarray) else v for name, v in inputs.items()}
    return fn(**args)


def dense(fn: Callable[..., Out], x: Array, W: Array, b: Array, dz: Array) -> Out:
    out = fn(linear(W, b), leaf(x), torch.from_numpy(dz))
    return {**out, "dW": out["dW"].T}


def prelu(fn: Callable[..., Out], z: Array, a: Array, dh: Array) -> Out:
    act = nn.PReLU(init=float(a[0]), dtype=torch.from_numpy(z).dtype)
    return fn(act, leaf(z), torch.from_numpy(dh))


def parameter(fn: Callable[..., Out], W: Array, **rest: Any) -> Out:
    """``W`` as an ``nn.Parameter``; gradients as tensors."""
    args = {name: [torch.from_numpy(g) for g in v] if isinstance(v, list)
            else torch.from_numpy(v) if isinstance(v, np.ndarray) else v
            for name, v in rest.items()}
    return fn(nn.Parameter(torch.from_numpy(W.copy())), **args)


def conv2d(fn: Callable[..., Out], x: Array, W: Array, b: Array, dz: Array, stride: int,
           padding: str) -> Out:
    k, _, c_in, c_out = W.shape
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, dtype=torch.from_numpy(W).dtype)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(W).permute(3, 2, 0, 1))  # HWIO -> OIHW
        conv.bias.copy_(torch.from_numpy(b))
    out = fn(conv, nchw(x, tracked=True), nchw(dz), stride, padding)
    return {"z": nhwc(out["z"]), "dx": nhwc(out["dx"]),
            "dW": out["dW"].permute(2, 3, 1, 0), "db": out["db"]}


def pool2d(fn: Callable[..., Out], x: Array, dy: Array, k: int, stride: int) -> Out:
    """A pooling block (max or average): NHWC in and out, NCHW for torch."""
    out = fn(nchw(x, tracked=True), nchw(dy), k, stride)
    return {"y": nhwc(out["y"]), "dx": nhwc(out["dx"])}


def flatten_dense(fn: Callable[..., Out], x: Array, W: Array, b: Array, dz: Array) -> Out:
    h, w, c = x.shape[1:]
    order = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    out = fn(linear(W[order], b), nchw(x, tracked=True), torch.from_numpy(dz))  # NCHW rows
    return {"z": out["z"], "dx": nhwc(out["dx"]), "dW": out["dW"].T[np.argsort(order)]}


def affine(layer: nn.Module, gamma: Array, beta: Array) -> nn.Module:
    """A normalisation layer holding ``gamma`` (``weight``) and ``beta`` (``bias``)."""
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(gamma))
        layer.bias.copy_(torch.from_numpy(beta))
    return layer


def batchnorm(fn: Callable[..., Out], x: Array, gamma: Array, beta: Array, dy: Array,
              epsilon: float) -> Out:
    bn = nn.BatchNorm1d(x.shape[1], eps=epsilon, dtype=torch.from_numpy(x).dtype)
    return fn(affine(bn, gamma, beta), leaf(x), torch.from_numpy(dy))


def layernorm(fn: Callable[..., Out], x: Array, gamma: Array, beta: Array, dy: Array,
              epsilon: float) -> Out:
    ln = nn.LayerNorm(x.shape[1], eps=epsilon, dtype=torch.from_numpy(x).dtype)
    return fn(affine(ln, gamma, beta), leaf(x), torch.from_numpy(dy))


def global_avgpool(fn: Callable[..., Out], x: Array, dy: Array) -> Out:
    out = fn(nchw(x, tracked=True), torch.from_numpy(dy))
    return {"y": out["y"], "dx": nhwc(out["dx"])}


def residual(fn: Callable[..., Out], x: Array, W: Array, b: Array, dy: Array) -> Out:
    out = fn(BLOCKS.Residual(linear(W, b)), leaf(x), torch.from_numpy(dy))
    return {**out, "dW": out["dW"].T}


FEEDERS: dict[str, Callable[..., Out]] = {
    "dense": dense, "prelu": prelu, "weight_decay": parameter, "conv2d": conv2d,
    "maxpool2d": pool2d, "avgpool2d": pool2d, "flatten_dense": flatten_dense, "sgd": parameter,
    "momentum": parameter, "adam": parameter, "batchnorm": batchnorm, "layernorm": layernorm,
    "global_avgpool": global_avgpool, "residual": residual}


def feeder(function: str) -> Callable[..., Out]:
    """The harness function that feeds ``BLOCKS.<function>``."""
    return FEEDERS.get(function, plain)


def run(function: str, inputs: dict[str, Any]) -> dict[str, Array]:
    """``BLOCKS.<function>`` on ``inputs`` (canonical NumPy), its outputs as canonical NumPy."""
    outputs = feeder(function)(getattr(BLOCKS, function), **inputs)
    return {name: t.detach().numpy() for name, t in outputs.items()}
