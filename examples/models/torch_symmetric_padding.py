"""A PyTorch port of a Keras CNN whose ``Conv2D(3, 3, strides=2, padding="same")`` became
``nn.Conv2d(2, 3, 3, stride=2, padding=1)``: on an 8x8 input TensorFlow's SAME pads 0 above and
1 below (0 left, 1 right), torch's ``padding=1`` pads 1 on every side. The output has the same
size but is shifted by one pixel. On its own (``check --model-file``) the model is a correct
network with ``"padding": 1`` and passes; as a port of the Keras model (``check --port
KERAS TORCH --transfer-weights``) it fails at ``z.conv1`` with the ``layer-settings``
diagnosis naming the two paddings, confirmed by re-running the reference with the port's."""

import torch
from torch import nn


def model() -> dict:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(3 * 4 * 4, 3)).double()
    return {"model": net, "loss": "ce", "input_shape": (8, 8, 2)}


class Fixed(nn.Module):
    """The port fixed: TensorFlow's SAME amounts by ``F.pad`` (left, right, top, bottom), then
    a ``padding=0`` convolution. Expected: every tensor matches."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 3, stride=2)
        self.fc = nn.Linear(3 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(nn.functional.pad(x, (0, 1, 0, 1))))
        return self.fc(torch.flatten(h, 1))


def fixed() -> dict:
    return {"model": Fixed().double(), "loss": "ce", "input_shape": (8, 8, 2),
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.1)}
