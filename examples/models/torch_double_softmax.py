"""A classifier that ends in ``nn.Softmax`` and is trained with ``nn.CrossEntropyLoss``, which
applies log-softmax itself: the softmax is applied twice. Expected: the check fails at the
output, diagnosed as softmax before a cross-entropy that already includes it (the model's output
equals softmax of the reference's logits)."""

import torch
from torch import nn


def model() -> dict:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1)).double()
    return {"model": net, "loss": nn.CrossEntropyLoss()}
