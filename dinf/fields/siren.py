"""SIREN (Sitzmann et al. 2020): an MLP with sine activations, a smooth baseline field."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dinf.errors import check
from dinf.fields.base import Field


class Siren(Field):
    """``layers`` sine layers ``sin(ω0 (W x + b))`` of width ``hidden``, then a linear output."""

    def __init__(self, in_dim: int = 2, out_dim: int = 1, hidden: int = 256, layers: int = 5, omega0: float = 30.0):
        super().__init__(in_dim, out_dim)
        check(in_dim >= 1, "in_dim", f"must be >= 1, got {in_dim}")
        check(layers >= 1, "layers", f"must be >= 1, got {layers}")
        check(hidden >= 1, "hidden", f"must be >= 1, got {hidden}")
        check(omega0 > 0, "omega0", f"must be > 0, got {omega0}")
        self.omega0 = float(omega0)
        widths = [in_dim] + [hidden] * layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(hidden, out_dim)
        # SIREN init: the first layer spans [-1, 1] inputs with ω0 periods; later bounds are
        # divided by ω0 so pre-activations stay ~U(-sqrt(6), sqrt(6)) through depth.
        bound = math.sqrt(6.0 / hidden) / self.omega0
        with torch.no_grad():
            self.hidden[0].weight.uniform_(-1.0 / in_dim, 1.0 / in_dim)
            for layer in list(self.hidden[1:]) + [self.out]:
                layer.weight.uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.hidden:
            x = torch.sin(self.omega0 * layer(x))
        return self.out(x)
