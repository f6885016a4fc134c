"""The problem abstraction: domain, sampling, loss terms, reference, metrics, pictures.

A problem never knows which field it is given: it asks for a jet of some order at its sample
points and turns it into loss terms; ``evaluate`` and ``pictures`` only call ``field(x)`` or
``field.jet(x, order)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field as dc_field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Protocol

import torch
from torch import Tensor, nn

from dinf.errors import check
from dinf.jet import Jet

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def grid_points(lin: Tensor) -> Tensor:
    """``[n², 2]`` points of the tensor grid ``lin × lin``; axis 0 of an image is ``x[:, 0]``."""
    return torch.stack(torch.meshgrid(lin, lin, indexing="ij"), -1).reshape(-1, 2)


def stratified(n: int, generator: torch.Generator, jitter: bool = True) -> Tensor:
    """``n`` points in ``[-1, 1]²``: one jittered point per cell of the largest ``m × m`` grid
    with ``m² ≤ n`` (its centre when ``jitter`` is false: a lattice), the remaining ``n - m²``
    uniform. Float64 ``[n, 2]``."""
    m = math.isqrt(n)
    cells = torch.stack(torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij"), -1).reshape(-1, 2)
    offset = torch.rand(m * m, 2, generator=generator, dtype=torch.float64) if jitter else 0.5
    strat = -1.0 + 2.0 * (cells + offset) / max(m, 1)
    rest = -1.0 + 2.0 * torch.rand(n - m * m, 2, generator=generator, dtype=torch.float64)
    return torch.cat([strat, rest])


def edge_points(n: int, generator: torch.Generator) -> Tensor:
    """``n`` points uniform on the four edges of ``[-1, 1]²``. Float32 ``[n, 2]``."""
    t = -1.0 + 2.0 * torch.rand(n, generator=generator)
    edge = torch.randint(0, 4, (n,), generator=generator)
    side = torch.where(edge % 2 == 0, -1.0, 1.0)  # edges 0/1: x = ∓1, 2/3: y = ∓1
    on_x = edge < 2
    return torch.stack([torch.where(on_x, side, t), torch.where(on_x, t, side)], -1)


BCS = ("hard", "soft")


def boundary_factor(x: Tensor) -> Jet:
    """``B = (1 - x²)(1 - y²)`` with its gradient and Hessian: 0 on the edges of ``[-1, 1]²``."""
    bx, by = 1.0 - x[:, 0] ** 2, 1.0 - x[:, 1] ** 2
    dx, dy = -2.0 * x[:, 0], -2.0 * x[:, 1]
    value = (bx * by).unsqueeze(1)
    grad = torch.stack([dx * by, bx * dy], -1).unsqueeze(1)
    hess = torch.stack([torch.stack([-2.0 * by, dx * dy], -1), torch.stack([dx * dy, -2.0 * bx], -1)], -2)
    return Jet(value, grad, hess.unsqueeze(1))


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values[mask]``; 0 (still in the graph) when the mask selects nothing."""
    n = int(mask.sum())
    return values[mask].sum() / n if n else values.sum() * 0.0


class FieldLike(Protocol):
    in_dim: int
    out_dim: int

    def __call__(self, x: Tensor) -> Tensor: ...

    def jet(self, x: Tensor, order: int = 2) -> Jet: ...


def field_device(field: FieldLike, default: torch.device) -> torch.device:
    """The device of a field's parameters (``default`` for a field without any)."""
    params = field.parameters() if hasattr(field, "parameters") else iter(())
    return next((p.device for p in params), default)


def field_dtype(field: Any, default: torch.dtype) -> torch.dtype:
    """The precision of a field's first floating parameter (``default`` for one without): the
    points it is given are cast to it."""
    params = field.parameters() if hasattr(field, "parameters") else iter(())
    return next((p.dtype for p in params if p.is_floating_point()), default)


@dataclass
class Batch:
    """Collocation points ``x`` ``[N, d]`` and whatever per-point data the loss needs."""

    x: Tensor
    data: Dict[str, Tensor] = dc_field(default_factory=dict)

    def flag(self, name: str) -> Tensor:
        """The boolean per-point mask ``data[name]`` on ``x``'s device; all False if absent."""
        mask = self.data.get(name)
        if mask is None:
            return torch.zeros(self.x.shape[0], dtype=torch.bool, device=self.x.device)
        return mask.to(self.x.device)


class Problem(nn.Module):
    """Base class. Subclasses set ``in_dim``, ``out_dim``, ``jet_order`` and ``metric_modes``.

    ``metric_modes`` maps each metric ``evaluate`` returns to "max" or "min" (which is better);
    the first is the primary metric that sweep reports rank runs by.
    ``targets`` maps a metric to thresholds for time-to-target (e.g. ``{"psnr": [25, 30]}``).
    Data tensors are registered as non-persistent buffers so they follow the module's device
    without bloating checkpoints.
    """

    in_dim: int = 2
    out_dim: int = 1
    jet_order: int = 0
    metric_modes: Dict[str, str] = {}
    bounds: Optional[List[List[float]]] = None  # the box a problem stated in its own coordinates (else [-1, 1]^d)
    published: Mapping[str, Any] = {}  # a result published for the same problem (PINNacle's best L2RE)

    def __init__(
        self,
        targets: Mapping[str, List[float]] | None = None,
        in_dim: int | None = None,
        out_dim: int | None = None,
    ):
        super().__init__()
        # Configs state the dimensions so that models can interpolate them; they must agree.
        for key, given, fixed in (("in_dim", in_dim, self.in_dim), ("out_dim", out_dim, self.out_dim)):
            check(given is None or given == fixed, key, f"{type(self).__name__} has {key}={fixed}, got {given}")
        self.targets: Dict[str, List[float]] = {k: list(v) for k, v in (targets or {}).items()}
        for name in self.targets:
            check(name in self.metric_modes, "targets",
                  f"{name!r} is not a metric of {type(self).__name__} ({', '.join(self.metric_modes)})")

    @property
    def device(self) -> torch.device:
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def predict(self, field: FieldLike, x: Tensor, chunk: int = 65536) -> Tensor:
        """``field(x)`` in chunks without gradients, on the field's device; CPU float64 ``[N, C]``."""
        device = field_device(field, self.device)
        with torch.no_grad():
            return torch.cat([field(c.to(device)).double().cpu() for c in x.split(chunk)])

    def sample(self, n: int, generator: torch.Generator) -> Batch:
        """``n`` collocation points (drawn afresh each call) with their data."""
        raise NotImplementedError

    def loss(self, jet: Jet, batch: Batch) -> Dict[str, Tensor]:
        """Loss terms; key ``loss`` is the total that is minimised, others are logged."""
        raise NotImplementedError

    def evaluate(self, field: FieldLike) -> Dict[str, float]:
        """Metrics of a field against the reference (keys of ``metric_modes``)."""
        raise NotImplementedError

    def pictures(self, field: FieldLike) -> Dict[str, "Figure"]:
        """Figures worth looking at, by name (saved as ``<name>.png``)."""
        return {}

    def save(self, field: FieldLike, output_dir: str) -> List[str]:
        """Write other outputs (meshes, ...) into ``output_dir``; returns their paths."""
        return []
