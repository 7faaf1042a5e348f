"""A hand-written dropout module in a PyTorch MLP, mapped to the reference's dropout by
``NNPARITY_LAYERS``: ``correct`` is inverted dropout (kept units scaled by ``1/keep_prob`` in
training, nothing at evaluation) and passes; ``faulty`` is the original, non-inverted dropout
(``h * mask`` in training, ``h * keep_prob`` at evaluation), which fails and is diagnosed by
re-running the reference without the ``1/keep_prob``; ``eval_scaled`` is inverted in training
but scales by ``keep_prob`` at evaluation too, which the evaluation output shows."""

import torch
from torch import nn

NNPARITY_LAYERS = {"MyDropout": "dropout", "PlainDropout": "dropout",
                   "EvalScaledDropout": "dropout"}


class MyDropout(nn.Module):
    """Inverted dropout: ``h * mask / (1 - p)`` in training, ``h`` at evaluation."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return h
        return h * (torch.rand_like(h) >= self.p).to(h.dtype) / (1 - self.p)


class PlainDropout(MyDropout):
    """Non-inverted dropout: ``h * mask`` in training, ``h * (1 - p)`` at evaluation."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return h * (1 - self.p)
        return h * (torch.rand_like(h) >= self.p).to(h.dtype)


class EvalScaledDropout(MyDropout):
    """Inverted in training, and scaled by ``1 - p`` at evaluation as well (scaled twice)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return super().forward(h) if self.training else h * (1 - self.p)


def _net(dropout: type[MyDropout]) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), dropout(0.4), nn.Linear(16, 3)).double()


def correct() -> dict:
    return {"model": _net(MyDropout), "loss": "ce",
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.1)}


def faulty() -> dict:
    return {"model": _net(PlainDropout), "loss": "ce",
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.1)}


def eval_scaled() -> dict:
    return {"model": _net(EvalScaledDropout), "loss": "ce"}
