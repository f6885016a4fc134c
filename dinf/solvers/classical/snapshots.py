"""A time-marching classical solver's solution between its steps: states stored on a uniform time
lattice t0 + jΔ (j = 0 … m), interpolated in time

- by cubic Hermite interpolation between the two neighbouring snapshots when the solver can give
  the state's time derivative there (``rate(state)``: the semi-discrete system's right-hand
  side; ``solver=spectral``): error about Δ⁴ |∂ₜ⁴u| / 384 mid-interval;
- else by the cubic Lagrange polynomial through the four nearest snapshots (fewer where there
  are fewer; ``solver=taylor_hood``, whose pressure has no rate): about (3/128) Δ⁴ |∂ₜ⁴u|
  mid-interval, up to (5/128) Δ⁴ |∂ₜ⁴u| in the end intervals.

At a snapshot's time either gives the snapshot itself. The solvers' docstrings give the spacing
they store and the interpolation error measured with it.

``combine`` evaluates each snapshot (or rate) a query needs once, for all the points that need
it, so a probe's cost is its space interpolation at the distinct snapshots; ``distinct`` splits
coordinates into their distinct values. ``matmul`` multiplies the probes' small dense matrices
on one thread: on a shared 2-core machine numpy's two BLAS threads made them 10–40 times
slower, waiting for a core."""
from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np
import torch

RATES_KEPT = 64  # rates computed for one probe and kept for the next (a reference file's chunks)


class Snapshots:
    """``states`` ``[m + 1, ...]`` at t0, t0 + Δ, …, t0 + mΔ; ``rate``: the time derivative of a
    state (None: Lagrange interpolation, see the module docstring)."""

    def __init__(self, t0: float, dt: float, states: np.ndarray,
                 rate: Optional[Callable[[np.ndarray], np.ndarray]] = None):
        self.t0, self.dt, self.states, self.rate = float(t0), float(dt), states, rate
        self.m = states.shape[0] - 1
        self._rates: "OrderedDict[int, np.ndarray]" = OrderedDict()

    @property
    def t1(self) -> float:
        return self.t0 + self.m * self.dt

    @property
    def nbytes(self) -> int:
        return int(self.states.nbytes)

    def _position(self, times: np.ndarray) -> np.ndarray:
        """Each time in units of Δ from t0, clipped to [0, m]; within 1e-9 of a snapshot, on it."""
        s = np.clip((np.asarray(times, float) - self.t0) / self.dt, 0.0, float(self.m))
        near = np.round(s)
        return np.where(np.abs(s - near) < 1e-9, near, s)

    def slots(self, times: np.ndarray) -> List[Tuple[np.ndarray, bool, np.ndarray]]:
        """Each time's interpolation as terms ``(snapshot [T], is_rate, weight [T])``: Σ weight ·
        (the snapshot's state, or its rate)."""
        s = self._position(times)
        if self.m == 0:
            return [(np.zeros(s.size, int), False, np.ones(s.size))]
        if self.rate is not None:
            j = np.minimum(np.floor(s).astype(int), self.m - 1)
            x = s - j
            h00, h10 = (1 + 2 * x) * (1 - x) ** 2, x * (1 - x) ** 2
            h01, h11 = x * x * (3 - 2 * x), x * x * (x - 1)
            return [(j, False, h00), (j, True, self.dt * h10), (j + 1, False, h01), (j + 1, True, self.dt * h11)]
        k = min(4, self.m + 1)
        first = np.clip(np.floor(s).astype(int) - (k - 1) // 2, 0, self.m - k + 1)
        theta = s - first  # in [0, k - 1]
        out = []
        for i in range(k):
            w = np.ones(s.size)
            for j in range(k):
                if j != i:
                    w *= (theta - j) / (i - j)
            out.append((first + i, False, w))
        return out

    def item(self, j: int, is_rate: bool) -> np.ndarray:
        """Snapshot ``j``'s state, or its rate (computed once, the last ``RATES_KEPT`` kept)."""
        if not is_rate:
            return self.states[j]
        if j in self._rates:
            self._rates.move_to_end(j)
            return self._rates[j]
        r = self.rate(self.states[j])
        self._rates[j] = r
        if len(self._rates) > RATES_KEPT:
            self._rates.popitem(last=False)
        return r

    def at(self, times: np.ndarray) -> np.ndarray:
        """The interpolated states ``[T, ...]`` at ``times``."""
        out = np.zeros((np.size(times),) + self.states.shape[1:], dtype=self.states.dtype)
        shape = (-1,) + (1,) * (self.states.ndim - 1)
        for j, is_rate, w in self.slots(times):
            for key in np.unique(j):
                sel = j == key
                out[sel] += w[sel].reshape(shape) * self.item(int(key), is_rate)
        return out

    def combine(self, times: np.ndarray, evaluate: Callable[[np.ndarray, np.ndarray], np.ndarray],
                channels: int) -> np.ndarray:
        """Values ``[P, channels]`` at points whose times are ``times`` ``[P]``: each point's
        weighted sum of ``evaluate(item, idx)`` (a snapshot's state or rate, as values ``[len(idx),
        channels]`` at the points ``idx``), called once per snapshot and term for all the points
        that need it (a point at a snapshot's time needs that snapshot alone)."""
        out = np.zeros((np.size(times), channels))
        for j, is_rate, w in self.slots(times):
            use = np.flatnonzero(w != 0)
            if use.size == 0:
                continue
            order = np.argsort(j[use], kind="stable")
            keys, starts = np.unique(j[use][order], return_index=True)
            for key, idx in zip(keys, np.split(use[order], starts[1:])):
                out[idx] += w[idx, None] * evaluate(self.item(int(key), is_rate), idx)
        return out


def distinct(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The distinct values of a 1-D array and each entry's index among them."""
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, np.asarray(inverse).reshape(-1)


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread inside the block (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` by torch on one thread (see the module docstring)."""
    with one_thread():
        return torch.matmul(torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))).numpy()
