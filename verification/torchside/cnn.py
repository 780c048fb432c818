"""The paper's small CNN (arXiv 2510.02239): three 3 × 3 convolutions with 64, 128 and 256 channels
and a linear head — four layers for Drop-Muon, numbered from the input. No biases, so each layer is
one matrix (a conv kernel ``C_out × C_in × 3 × 3`` is the matrix ``C_out × 9 C_in``)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CNN", "make_cnn"]


class CNN(nn.Module):
    """conv(64) → ReLU → conv(128) → ReLU → 2×2 max-pool → conv(256) → ReLU → global average pool
    → linear head. ``width`` scales the channel counts (1.0 is the paper's 64/128/256).

    >>> m = CNN(in_channels=1, num_classes=10)
    >>> [tuple(p.shape) for p in m.layer_parameters()[0]] + [tuple(m.head.weight.shape)]
    [(64, 1, 3, 3), (10, 256)]
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: float = 1.0):
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be positive; got width = {width!r}")
        c = [max(1, int(round(k * width))) for k in (64, 128, 256)]
        self.conv1 = nn.Conv2d(in_channels, c[0], 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c[0], c[1], 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(c[1], c[2], 3, padding=1, bias=False)
        self.head = nn.Linear(c[2], num_classes, bias=False)
        self.pool = nn.MaxPool2d(2)

    @property
    def layers(self) -> list[nn.Module]:
        """The four layers, input first."""
        return [self.conv1, self.conv2, self.conv3, self.head]

    def layer_parameters(self) -> list[list[torch.Tensor]]:
        """``[[params of layer 1], …]`` for :class:`DropMuon` ``layers=``."""
        return [list(m.parameters()) for m in self.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.relu(self.conv3(x))
        return self.head(x.mean(dim=(2, 3)))


def make_cnn(in_channels: int, num_classes: int, *, width: float = 1.0, seed: int = 0, device="cpu") -> CNN:
    """A CNN initialised reproducibly from ``seed`` (PyTorch's default initialisation)."""
    g = torch.random.fork_rng(devices=[])
    with g:
        torch.manual_seed(seed)
        model = CNN(in_channels, num_classes, width)
    return model.to(device)
