"""A hand-written Adam, as a subclass of ``torch.optim.Adam`` with its own ``step``, so the
check runs it and judges it against torch's Adam formulation.

- ``correct``: epsilon added after the bias-corrected ``sqrt(v)`` (torch, the paper's
  algorithm). Expected: every tensor matches, updates included.
- ``faulty``: epsilon added to ``sqrt(v)`` before the bias correction (Keras' epsilon-hat
  placement, a classic port slip). Expected: forward, loss, deltas and gradients match; the first
  update differs, diagnosed as Adam's epsilon placement by re-running the reference's first step
  with that placement.
"""

import math

import torch
from torch import nn


class MyAdam(torch.optim.Adam):
    eps_hat = False

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            (b1, b2), lr, eps = group["betas"], group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                t, m, v = state["t"], state["m"], state["v"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                if self.eps_hat:  # wrong for torch's Adam: Keras' placement
                    p.sub_(lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (v.sqrt() + eps))
                else:
                    p.sub_(lr / (1 - b1**t) * m / (v.sqrt() / math.sqrt(1 - b2**t) + eps))


class FaultyAdam(MyAdam):
    eps_hat = True


def _entry(optimizer: type) -> dict:
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    # eps large enough to matter, as in float32 training
    return {"model": net, "loss": "ce",
            "optimizer": lambda params: optimizer(params, lr=0.01, eps=1e-3)}


def correct() -> dict:
    return _entry(MyAdam)


def faulty() -> dict:
    return _entry(FaultyAdam)
