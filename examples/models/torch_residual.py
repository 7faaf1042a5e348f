"""PyTorch residual blocks: a module whose forward adds its input to its body's output
(``x + self.body(x)``), with a Linear projection on the skip path where the widths differ.

``model``: Linear -> Tanh -> [Linear -> GELU -> Linear] + x -> [Linear -> Tanh] + Linear(x) ->
Linear, cross-entropy, Adam, float64. ``cnn``: a convolutional block (two 3x3 convolutions, the
input added). Expected: every tensor matches the reference's ``residual`` layers."""

import torch
from torch import nn


class Residual(nn.Module):
    """``skip(x) + body(x)``; ``skip`` is the identity unless a projection is given."""

    def __init__(self, body: nn.Module, projection: nn.Module | None = None) -> None:
        super().__init__()
        self.body, self.projection = body, projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.projection is None else self.projection(x)
        return skip + self.body(x)


def model() -> dict:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(6, 5), nn.Tanh(),
        Residual(nn.Sequential(nn.Linear(5, 5), nn.GELU(), nn.Linear(5, 5))),
        Residual(nn.Sequential(nn.Linear(5, 4), nn.Tanh()), projection=nn.Linear(5, 4)),
        nn.Linear(4, 3)).double()
    return {"model": net, "loss": nn.CrossEntropyLoss(),
            "optimizer": lambda params: torch.optim.Adam(params, lr=0.01)}


class ConvBlock(nn.Module):
    """``x + conv2(relu(conv1(x)))``: the functional form, written out in ``forward``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class Cnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.block = nn.Conv2d(2, 3, 3, padding=1), ConvBlock(3)
        self.fc = nn.Linear(3 * 6 * 6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(torch.tanh(self.stem(x)))
        return self.fc(torch.flatten(h, 1))


def cnn() -> dict:
    """Input 6x6x2 (NHWC, as the reference writes it), SGD with momentum."""
    torch.manual_seed(0)
    return {"model": Cnn().double(), "loss": nn.CrossEntropyLoss(), "input_shape": (6, 6, 2),
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9)}
