"""PyTorch, idiomatically, one function per building block of the teaching page.

Each function is both what the page shows in the PyTorch column and what it runs to measure
parity: it takes NumPy arrays in the canonical layout (NHWC, HWIO, ``W [D_in, D_out]``), builds
the ordinary torch objects, lets autograd do the backward pass from an upstream gradient, and
returns tensors named as the reference's outputs (in the canonical layout again).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Array = np.ndarray  # inputs: NumPy arrays in the canonical layout
Out = dict[str, torch.Tensor]  # outputs by the reference's names


def leaf(a: np.ndarray) -> torch.Tensor:
    """A tensor autograd differentiates with respect to (same dtype as ``a``)."""
    return torch.tensor(a, requires_grad=True)


def dense(x: Array, W: Array, b: Array, dz: Array) -> Out:
    layer = nn.Linear(*W.shape, dtype=torch.from_numpy(W).dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W.T))  # nn.Linear keeps W.T: [D_out, D_in]
        layer.bias.copy_(torch.from_numpy(b))
    x = leaf(x)
    z = layer(x)
    z.backward(torch.from_numpy(dz))
    return {"z": z, "dx": x.grad, "dW": layer.weight.grad.T, "db": layer.bias.grad}


def sigmoid(z: Array, dh: Array) -> Out:
    z = leaf(z)
    h = torch.sigmoid(z)
    h.backward(torch.from_numpy(dh))
    return {"h": h, "dz": z.grad}


def tanh(z: Array, dh: Array) -> Out:
    z = leaf(z)
    h = torch.tanh(z)
    h.backward(torch.from_numpy(dh))
    return {"h": h, "dz": z.grad}


def relu(z: Array, dh: Array) -> Out:
    z = leaf(z)
    h = torch.relu(z)  # autograd: relu'(0) = 0
    h.backward(torch.from_numpy(dh))
    return {"h": h, "dz": z.grad}


def relu3(z: Array, dh: Array) -> Out:
    z = leaf(z)
    h = torch.relu(z) ** 3
    h.backward(torch.from_numpy(dh))
    return {"h": h, "dz": z.grad}


def identity(z: Array, dh: Array) -> Out:
    z = leaf(z)
    h = nn.Identity()(z)
    h.backward(torch.from_numpy(dh))
    return {"h": h, "dz": z.grad}


def prelu(z: Array, a: Array, dh: Array) -> Out:
    act = nn.PReLU(init=float(a[0]), dtype=torch.from_numpy(z).dtype)  # one shared slope
    z = leaf(z)
    h = act(z)
    h.backward(torch.from_numpy(dh))
    return {"h": h, "dz": z.grad, "da": act.weight.grad}


def softmax_ce(o: Array, y: Array) -> Out:
    o = leaf(o)
    loss = F.cross_entropy(o, torch.from_numpy(y), reduction="sum")  # softmax inside
    loss.backward()
    return {"loss": loss, "do": o.grad}


def l2(o: Array, t: Array) -> Out:
    o = leaf(o)
    loss = 0.5 * F.mse_loss(o, torch.from_numpy(t), reduction="sum")
    loss.backward()
    return {"loss": loss, "do": o.grad}


def log_loss(o: Array, t: Array) -> Out:
    o = leaf(o)
    loss = F.binary_cross_entropy_with_logits(o, torch.from_numpy(t), reduction="sum")
    loss.backward()
    return {"loss": loss, "do": o.grad}


def mean_ce(o: Array, y: Array) -> Out:
    o = leaf(o)
    loss = F.cross_entropy(o, torch.from_numpy(y))  # reduction="mean": divides by N
    loss.backward()
    return {"loss": loss, "do": o.grad}


def weight_decay(W: Array, g: Array, lr: float, wd: float) -> Out:
    W = leaf(W)
    penalty = 0.5 * wd * (W**2).sum()  # torch has no penalty object: written out
    (dW,) = torch.autograd.grad(penalty, W)
    opt = torch.optim.SGD([W], lr=lr, weight_decay=wd)  # adds wd * W to W.grad
    W.grad = torch.from_numpy(g)
    opt.step()
    return {"penalty": penalty, "dW": dW, "W after one SGD step": W}


def tf_same_pads(h: int, w: int, k: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow's SAME padding as ``F.pad`` wants it: (left, right, top, bottom)."""
    ph = max((-(-h // stride) - 1) * stride + k - h, 0)
    pw = max((-(-w // stride) - 1) * stride + k - w, 0)
    return (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # the odd pixel: bottom/right


def conv2d(x: Array, W: Array, b: Array, dz: Array, stride: int, padding: str) -> Out:
    k, _, c_in, c_out = W.shape
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=0, dtype=torch.from_numpy(W).dtype)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(W).permute(3, 2, 0, 1))  # HWIO -> OIHW
        conv.bias.copy_(torch.from_numpy(b))
    pads = tf_same_pads(*x.shape[1:3], k, stride) if padding == "SAME" else (0, 0, 0, 0)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().requires_grad_()  # NHWC -> NCHW
    z = conv(F.pad(x, pads))
    z.backward(torch.from_numpy(dz).permute(0, 3, 1, 2))
    return {"z": z.permute(0, 2, 3, 1), "dx": x.grad.permute(0, 2, 3, 1),
            "dW": conv.weight.grad.permute(2, 3, 1, 0), "db": conv.bias.grad}


def maxpool2d(x: Array, dy: Array, k: int, stride: int) -> Out:
    pads = tf_same_pads(*x.shape[1:3], k, stride)  # SAME; a padded cell must never win
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().requires_grad_()
    y = F.max_pool2d(F.pad(x, pads, value=-torch.inf), k, stride)
    y.backward(torch.from_numpy(dy).permute(0, 3, 1, 2))
    return {"y": y.permute(0, 2, 3, 1), "dx": x.grad.permute(0, 2, 3, 1)}


def flatten_dense(x: Array, W: Array, b: Array, dz: Array) -> Out:
    h, w, c = x.shape[1:]
    order = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    layer = nn.Linear(*W.shape, dtype=torch.from_numpy(W).dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W[order].T))  # rows NHWC -> NCHW flatten order
        layer.bias.copy_(torch.from_numpy(b))
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().requires_grad_()
    z = layer(torch.flatten(x, 1))  # NCHW flatten: one channel plane after another
    z.backward(torch.from_numpy(dz))
    return {"z": z, "dx": x.grad.permute(0, 2, 3, 1), "dW": layer.weight.grad.T[np.argsort(order)]}


def dropout(h: Array, mask: Array, keep_prob: float, dy: Array) -> Out:
    h = leaf(h)  # F.dropout draws its own mask; an explicit one is a multiplication
    y = h * torch.from_numpy(mask) / keep_prob
    y.backward(torch.from_numpy(dy))
    return {"y": y, "dh": h.grad}


def _run(opt_class: type[torch.optim.Optimizer], W: Array, grads: list[Array],
         **hyper: float) -> torch.Tensor:
    W = leaf(W)
    opt = opt_class([W], **hyper)
    for g in grads:
        W.grad = torch.from_numpy(g)
        opt.step()
    return W


def sgd(W: Array, grads: list[Array], lr: float) -> Out:
    return {"W (torch formula)": _run(torch.optim.SGD, W, grads, lr=lr)}


def momentum(W: Array, grads: list[Array], lr: float, mu: float) -> Out:
    return {"W (torch formula)": _run(torch.optim.SGD, W, grads, lr=lr, momentum=mu)}


def adam(W: Array, grads: list[Array], lr: float) -> Out:
    return {"W (torch formula)": _run(torch.optim.Adam, W, grads, lr=lr, eps=1e-8)}


def to_numpy(t) -> np.ndarray:
    """A returned tensor as a NumPy array."""
    return t.detach().numpy()
