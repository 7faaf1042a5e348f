"""A plain PyTorch MLP on iris-shaped inputs: Linear -> ReLU -> Linear -> tanh (functional) ->
Linear, cross-entropy, SGD with momentum. Expected: every tensor matches the reference."""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(4, 16)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(16, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.fc1(x))
        h = torch.tanh(self.fc2(h))  # a function, not a module: traced all the same
        return self.out(h)


def model() -> dict:
    net = Net().double()
    return {"model": net, "loss": nn.CrossEntropyLoss(),
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9)}


def adam_float32() -> dict:
    """The same net in float32 with Adam (torch's defaults but eps 1e-3, see the README)."""
    return {"model": Net(), "loss": "ce",
            "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3, eps=1e-3)}

