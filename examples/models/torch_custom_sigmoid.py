"""A sigmoid written as a torch.autograd.Function, used through a module that
NNPARITY_LAYERS maps to the reference's sigmoid, so its hand-written backward is what the check
measures.

- ``correct``: ``backward`` returns ``grad * h * (1 - h)``. Expected: every tensor matches.
- ``faulty``: ``backward`` returns ``grad * h`` (the ``(1 - h)`` forgotten). Expected: forward and
  loss match, the delta of the sigmoid layer differs, diagnosed as that module's backward.
"""

import torch
from torch import nn

NNPARITY_LAYERS = {"MySigmoid": "sigmoid", "FaultySigmoid": "sigmoid"}


class SigmoidFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        h = 1 / (1 + torch.exp(-z))
        ctx.save_for_backward(h)
        return h

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        return grad * h * (1 - h)


class FaultySigmoidFunction(SigmoidFunction):
    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        return grad * h  # wrong: the derivative is h * (1 - h)


class MySigmoid(nn.Module):
    def forward(self, z):
        return SigmoidFunction.apply(z)


class FaultySigmoid(nn.Module):
    def forward(self, z):
        return FaultySigmoidFunction.apply(z)


def _net(activation: nn.Module) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 10), activation, nn.Linear(10, 3)).double()


def correct() -> dict:
    net = _net(MySigmoid())
    return {"model": net, "loss": "ce", "optimizer": torch.optim.SGD(net.parameters(), lr=0.5)}


def faulty() -> dict:
    net = _net(FaultySigmoid())
    return {"model": net, "loss": "ce", "optimizer": torch.optim.SGD(net.parameters(), lr=0.5)}
