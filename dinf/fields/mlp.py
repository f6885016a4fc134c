"""A plain PINN MLP with a smooth activation (the classic physics-informed baseline)."""
from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dinf.errors import check, check_choice
from dinf.fields.base import Field

# Second derivatives enter PDE losses, so only C² activations (no ReLU: its Hessian is 0).
ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sin": torch.sin,
    "softplus": F.softplus,
    "gelu": F.gelu,
}


class MLP(Field):
    """``layers`` hidden layers of width ``hidden`` with ``activation``, then a linear output.

    Xavier-normal weights, zero biases.
    """

    def __init__(self, in_dim: int = 2, out_dim: int = 1, hidden: int = 128, layers: int = 4, activation: str = "tanh"):
        super().__init__(in_dim, out_dim)
        check(in_dim >= 1, "in_dim", f"must be >= 1, got {in_dim}")
        check(layers >= 1, "layers", f"must be >= 1, got {layers}")
        check(hidden >= 1, "hidden", f"must be >= 1, got {hidden}")
        check_choice("activation", activation, ACTIVATIONS)
        self.activation = activation
        self.act = ACTIVATIONS[activation]
        widths = [in_dim] + [hidden] * layers + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        return self.layers[-1](x)
