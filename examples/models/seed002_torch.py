"""The three-framework notes' MNIST CNN written in PyTorch (the port of seed002_keras.py):
conv 5x5x32 relu -> max-pool 2 -> conv 5x5x64 relu -> max-pool 2 -> flatten (NCHW order) ->
dense 1024 relu -> dropout 0.5 -> dense 10, cross-entropy (mean), Adam 1e-4, float64.

Expected: every tensor matches the reference (give --input-shape 28,28,1); against the Keras
file, the port check passes, with the drift between torch's Adam and Keras' epsilon-hat Adam
stated instead of failed.
"""

import torch
import torch.nn.functional as F
from torch import nn


class MnistCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(7 * 7 * 64, 1024)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(1024, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def model() -> dict:
    net = MnistCNN().double()
    return {"model": net, "loss": nn.CrossEntropyLoss(), "input_shape": (28, 28, 1),
            "optimizer": lambda params: torch.optim.Adam(params, lr=1e-4)}
