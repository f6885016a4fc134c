"""``periodic``: the two faces of a space axis agree in value and derivatives along the axis.

Its points come in pairs, the first half on the ``x_min`` face and the second half opposite; its
residual at a pair is the difference of the two points' values (``u``, ``u_x``, … up to
``derivatives``, default 1; a fourth-order equation needs 3: ``u_xxx``). In least squares the
pairs' rows become differences through the system's ``mix`` (``pair_rows``)."""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from dinf.equations import Residual
from dinf.errors import ConfigError
from dinf.geometry.domain import Spacing
from dinf.jet import Jet
from dinf.pdes.conditions.base import Condition, Reading, read_targets


class Periodic(Condition):
    """The faces of coordinate ``axis`` (its index among the coordinates) paired."""

    type = "periodic"
    default_points = 512

    def __init__(self, name: str, axis: int, residuals: List[Residual], targets: Optional[Mapping[str, Any]] = None,
                 **common: Any):
        super().__init__(name, residuals, targets, **common)
        self.axis = axis

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any], reading: Reading, key: str) -> "Periodic":
        targets = read_targets(spec, reading.unknowns, key, cls.type, default=0, every=True)
        axis_name = spec.get("axis")
        space = [x for x in reading.coords if x != reading.time]
        if axis_name not in space:
            raise ConfigError(f"{key}.axis", f"{axis_name!r} is not a space coordinate ({', '.join(space)})")
        k = spec.get("derivatives", 1)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 5:
            raise ConfigError(f"{key}.derivatives", f"the highest derivative along the axis that agrees: 0 … 5 "
                                                   f"(3 for a fourth-order equation), got {k!r}")
        texts = [f"{u}_{axis_name * m}" if m else u for m in range(k + 1) for u in targets]
        return cls(name, reading.coords.index(axis_name), reading.residuals(texts, f"{key}.expr"), targets)

    def sample(self, domain: Any, m: int, generator: torch.Generator,
               spacing: Spacing = None) -> Tuple[Tensor, Optional[Tensor]]:
        x, _ = domain.sample_boundary(f"{domain.coords[self.axis]}_min", m, generator)
        other = x.clone()
        other[:, self.axis] = float(domain.bounds[self.axis, 1])
        return torch.cat([x, other]), None

    def terms(self, m: int) -> int:
        return m // 2

    def pairs(self, start: int, m: int) -> List[Tuple[int, int]]:
        return [(start, m // 2)]

    def values(self, jet: Jet, data: Mapping[str, Tensor]) -> Tensor:
        values = super().values(jet, data)
        half = values.shape[0] // 2
        return values[:half] - values[half:]


def pair_rows(rhs: Tensor, pairs: List[Tuple[int, int]]) -> Tuple[Tensor, None, Tensor]:
    """``rhs`` and ``mix`` for a system whose periodic blocks hold point pairs (``(first point,
    count)``: the first half on one face, the second half opposite): each pair's rows are
    subtracted, the others kept."""
    n, e = rhs.shape
    keep = torch.ones(n, dtype=torch.bool)
    out_of, minus = torch.arange(n), torch.full((n,), -1)
    for start, count in pairs:
        keep[start + count:start + 2 * count] = False
        minus[start:start + count] = torch.arange(start + count, start + 2 * count)
    kept = torch.nonzero(keep).squeeze(1)
    r = kept.shape[0]
    rows, cols, vals = [], [], []
    for k in range(e):
        rows.append(torch.arange(r) * e + k)
        cols.append(out_of[kept] * e + k)
        vals.append(torch.ones(r, dtype=rhs.dtype))
        paired = minus[kept] >= 0
        rows.append((torch.arange(r) * e + k)[paired])
        cols.append(minus[kept][paired] * e + k)
        vals.append(-torch.ones(int(paired.sum()), dtype=rhs.dtype))
    mix = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals),
                                  (r * e, n * e), check_invariants=False).coalesce()
    # A pair's right side is the difference of its points' sides (zero for linear periodic rows;
    # not for rows linearised around a jet, where each side is coef·J₀ − r(J₀)).
    measured = torch.sparse.mm(mix, rhs.reshape(-1, 1)).reshape(r, e)
    return measured, None, mix.to(rhs.device)
