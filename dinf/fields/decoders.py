"""Decoders from concatenated grid features to field values, applied to whole jets."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from dinf.jet import Jet


def _linear_jet(layer: nn.Linear, z: Jet) -> Jet:
    w = layer.weight  # [C, K]
    value = z.value @ w.t()
    if layer.bias is not None:
        value = value + layer.bias
    grad = None if z.grad is None else torch.einsum("nkd,ck->ncd", z.grad, w)
    hess = None if z.hess is None else torch.einsum("nkde,ck->ncde", z.hess, w)
    higher = None if z.higher is None else torch.einsum("nkh,ck->nch", z.higher, w)
    return Jet(value, grad, hess, higher)


def _xavier(layer: nn.Linear) -> nn.Linear:
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class LinearDecoder(nn.Module):
    """A single linear layer (the paper's default): Xavier-uniform weights, zero bias."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.layer = _xavier(nn.Linear(in_features, out_features))

    def forward(self, z: Tensor) -> Tensor:
        return self.layer(z)

    def jet(self, z: Jet) -> Jet:
        return _linear_jet(self.layer, z)


class MLPDecoder(nn.Module):
    """``in -> hidden -> tanh -> out``; jets by the chain rule through tanh (up to order 2)."""

    max_order = 2

    def __init__(self, in_features: int, out_features: int, hidden: int = 64):
        super().__init__()
        self.hidden = _xavier(nn.Linear(in_features, hidden))
        self.out = _xavier(nn.Linear(hidden, out_features))

    def forward(self, z: Tensor) -> Tensor:
        return self.out(torch.tanh(self.hidden(z)))

    def jet(self, z: Jet) -> Jet:
        h = _linear_jet(self.hidden, z)
        y = torch.tanh(h.value)
        s = 1.0 - y * y  # tanh'
        grad = hess = None
        if h.grad is not None:
            grad = s.unsqueeze(-1) * h.grad
            if h.hess is not None:
                # tanh'' = -2 tanh tanh'
                hess = s[..., None, None] * h.hess - 2.0 * (y * s)[..., None, None] * (
                    h.grad.unsqueeze(-1) * h.grad.unsqueeze(-2)
                )
        return _linear_jet(self.out, Jet(y, grad, hess))


DECODERS = {"linear": LinearDecoder, "mlp": MLPDecoder}
