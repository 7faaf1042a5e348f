"""PyTorch as a user writes it, one function per building block of the teaching page.

What the page shows in the PyTorch column: modules (``nn.Linear``, ``nn.Conv2d``, ``nn.PReLU``),
losses, ``backward()`` and ``torch.optim`` steps, on torch's own layout (``Linear.weight``
``[D_out, D_in]``, NCHW, OIHW). A layer's backward starts from the gradient the layer above
sends (``z.backward(dz)``); an optimiser's steps from a loss whose gradient is the given one.
The page runs these very functions: :mod:`.torch_feed` builds their arguments from the fixed
example (weights copied in, layouts converted) and converts the results back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Out = dict[str, Tensor]  # outputs by the reference's names, in torch's layout


def dense(layer: nn.Linear, x: Tensor, dz: Tensor) -> Out:
    z = layer(x)       # x @ layer.weight.T + layer.bias
    z.backward(dz)     # dL/dz arrives from the layer above
    dW, db = layer.weight.grad, layer.bias.grad  # dW: [D_out, D_in]
    return {"z": z, "dx": x.grad, "dW": dW, "db": db}


def sigmoid(z: Tensor, dh: Tensor) -> Out:
    h = torch.sigmoid(z)
    h.backward(dh)
    return {"h": h, "dz": z.grad}


def tanh(z: Tensor, dh: Tensor) -> Out:
    h = torch.tanh(z)
    h.backward(dh)
    return {"h": h, "dz": z.grad}


def relu(z: Tensor, dh: Tensor) -> Out:
    h = torch.relu(z)  # autograd: relu'(0) = 0
    h.backward(dh)
    return {"h": h, "dz": z.grad}


def relu3(z: Tensor, dh: Tensor) -> Out:
    h = torch.relu(z) ** 3
    h.backward(dh)
    return {"h": h, "dz": z.grad}


def identity(z: Tensor, dh: Tensor) -> Out:
    h = nn.Identity()(z)
    h.backward(dh)
    return {"h": h, "dz": z.grad}


def prelu(act: nn.PReLU, z: Tensor, dh: Tensor) -> Out:
    h = act(z)  # one shared slope: act.weight
    h.backward(dh)
    return {"h": h, "dz": z.grad, "da": act.weight.grad}


def softmax_ce(o: Tensor, y: Tensor) -> Out:
    loss = F.cross_entropy(o, y, reduction="sum")  # softmax inside
    loss.backward()
    return {"loss": loss, "do": o.grad}


def l2(o: Tensor, t: Tensor) -> Out:
    loss = 0.5 * F.mse_loss(o, t, reduction="sum")
    loss.backward()
    return {"loss": loss, "do": o.grad}


def log_loss(o: Tensor, t: Tensor) -> Out:
    loss = F.binary_cross_entropy_with_logits(o, t, reduction="sum")
    loss.backward()
    return {"loss": loss, "do": o.grad}


def mean_ce(o: Tensor, y: Tensor) -> Out:
    loss = F.cross_entropy(o, y)  # reduction="mean": divides by N
    loss.backward()
    return {"loss": loss, "do": o.grad}


def weight_decay(W: nn.Parameter, g: Tensor, lr: float, wd: float) -> Out:
    penalty = 0.5 * wd * (W**2).sum()  # written out: no penalty object
    (dW,) = torch.autograd.grad(penalty, W)
    # weight_decay=wd adds wd * W to W.grad in the step
    optimizer = torch.optim.SGD([W], lr=lr, weight_decay=wd)
    loss = (W * g).sum()  # a data loss whose gradient is g
    loss.backward()
    optimizer.step()
    return {"penalty": penalty, "dW": dW, "W after one SGD step": W}


def tf_same_pads(h: int, w: int, k: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow's SAME padding as ``F.pad`` wants it: (left, right, top, bottom)."""
    ph = max((-(-h // stride) - 1) * stride + k - h, 0)
    pw = max((-(-w // stride) - 1) * stride + k - w, 0)
    return (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # the odd pixel: bottom/right


def conv2d(conv: nn.Conv2d, x: Tensor, dz: Tensor, stride: int,
           padding: str) -> Out:
    k = conv.kernel_size[0]
    pads = (0, 0, 0, 0)
    if padding == "SAME":  # padding=1 would pad both sides: not TF's SAME
        pads = tf_same_pads(*x.shape[2:], k, stride)
    z = conv(F.pad(x, pads))  # x: NCHW
    z.backward(dz)
    dW, db = conv.weight.grad, conv.bias.grad  # dW: OIHW
    return {"z": z, "dx": x.grad, "dW": dW, "db": db}


def maxpool2d(x: Tensor, dy: Tensor, k: int, stride: int) -> Out:
    pads = tf_same_pads(*x.shape[2:], k, stride)  # padding never wins
    y = F.max_pool2d(F.pad(x, pads, value=-torch.inf), k, stride)
    y.backward(dy)
    return {"y": y, "dx": x.grad}


def avgpool2d(x: Tensor, dy: Tensor, k: int, stride: int) -> Out:
    # SAME on 5x5, k=3, stride 2 pads one cell on every side: torch's symmetric padding
    pool = nn.AvgPool2d(k, stride, padding=k // 2, count_include_pad=False)
    y = pool(x)  # the default, count_include_pad=True, would count the padded zeros
    y.backward(dy)
    return {"y": y, "dx": x.grad}


def global_avgpool(x: Tensor, dy: Tensor) -> Out:
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # [N, C, 1, 1] -> [N, C]
    y = pool(x)
    y.backward(dy)
    return {"y": y, "dx": x.grad}


def flatten_dense(layer: nn.Linear, x: Tensor, dz: Tensor) -> Out:
    z = layer(torch.flatten(x, 1))  # NCHW: one channel plane after another
    z.backward(dz)
    return {"z": z, "dx": x.grad, "dW": layer.weight.grad}


def dropout(h: Tensor, mask: Tensor, keep_prob: float, dy: Tensor) -> Out:
    y = h * mask / keep_prob  # F.dropout would draw its own mask
    y.backward(dy)
    return {"y": y, "dh": h.grad}


def batchnorm(bn: nn.BatchNorm1d, x: Tensor, dy: Tensor) -> Out:
    bn.train()  # batch statistics (bn.eval() would use the running ones)
    y = bn(x)
    y.backward(dy)
    return {"y": y, "dx": x.grad, "dgamma": bn.weight.grad, "dbeta": bn.bias.grad}


def layernorm(ln: nn.LayerNorm, x: Tensor, dy: Tensor) -> Out:
    y = ln(x)  # statistics over each row's last dimension
    y.backward(dy)
    return {"y": y, "dx": x.grad, "dgamma": ln.weight.grad, "dbeta": ln.bias.grad}


class Residual(nn.Module):
    def __init__(self, fc: nn.Linear) -> None:
        super().__init__()
        self.fc = fc

    def forward(self, x: Tensor) -> Tensor:
        return x + torch.tanh(self.fc(x))  # the skip path plus f(x)


def residual(block: Residual, x: Tensor, dy: Tensor) -> Out:
    y = block(x)
    y.backward(dy)
    dW = block.fc.weight.grad  # [D_out, D_in]
    return {"y": y, "dx": x.grad, "dW": dW, "db": block.fc.bias.grad}


def gelu(z: Tensor, dh: Tensor) -> Out:
    h = F.gelu(z)  # exact (erf) by default
    h.backward(dh)
    return {"h": h, "dz": z.grad}


def gelu_tanh(z: Tensor, dh: Tensor) -> Out:
    h = F.gelu(z, approximate="tanh")
    h.backward(dh)
    return {"h": h, "dz": z.grad}


def train(optimizer: torch.optim.Optimizer, W: nn.Parameter,
          grads: list[Tensor]) -> Tensor:
    """One step per gradient ``g``, each from a loss whose gradient is ``g``."""
    for g in grads:
        optimizer.zero_grad()
        loss = (W * g).sum()
        loss.backward()
        optimizer.step()
    return W


def sgd(W: nn.Parameter, grads: list[Tensor], lr: float) -> Out:
    optimizer = torch.optim.SGD([W], lr=lr)
    return {"W (torch formula)": train(optimizer, W, grads)}


def momentum(W: nn.Parameter, grads: list[Tensor], lr: float,
             mu: float) -> Out:
    optimizer = torch.optim.SGD([W], lr=lr, momentum=mu)
    return {"W (torch formula)": train(optimizer, W, grads)}


def adam(W: nn.Parameter, grads: list[Tensor], lr: float) -> Out:
    optimizer = torch.optim.Adam([W], lr=lr, eps=1e-8)
    return {"W (torch formula)": train(optimizer, W, grads)}
