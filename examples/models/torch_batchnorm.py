"""A PyTorch MLP with batch normalisation: Linear (no bias: the normalisation removes it) ->
BatchNorm1d -> ReLU -> Linear, cross-entropy, SGD with momentum. Expected: every tensor matches
the reference, the running mean and variance after each step included (torch's momentum 0.1
weighs the new batch: the reference's 0.9; its running variance is the unbiased one)."""

import torch
from torch import nn


def model() -> dict:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(),
                        nn.Linear(8, 3)).double()
    return {"model": net, "loss": nn.CrossEntropyLoss(),
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9)}
