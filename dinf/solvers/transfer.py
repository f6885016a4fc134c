"""Moving a solution onto another grid: the least-squares fit of a grid field to given values.

After a moving grid remaps its axes (``grid.adapt: r``), the node values that held the old
solution describe another function: the same values seen through new maps. The next solve starts
from the old solution fitted onto the new grid, ``min_z ‖E z − u_old‖² + μ‖z‖²`` over points
spread evenly per new cell (``E`` the field's basis at the points, order 0), one sparse solve of
the grid's size, far cheaper than the Gauss–Newton steps it saves.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from dinf.linear_system import LinearSystem
from dinf.solvers.least_squares import assemble, write_back
from dinf.solvers.linalg.gram import normal_matrix
from dinf.solvers.linalg.sparse_solve import solve_spd


def fit_values(field: torch.nn.Module, x: torch.Tensor, values: torch.Tensor, damping: float = 1e-10,
               backend: str = "auto") -> float:
    """Set a linear-decoder grid ``field``'s node values to the least-squares fit of ``values``
    ``[N, C]`` at points ``x`` ``[N, d]`` (``damping``: the Tikhonov weight relative to the mean
    diagonal of EᵀE, as least squares'). Returns the fit's relative L2 misfit at the points."""
    x = x.to(torch.float64)
    values = values.to(torch.float64).reshape(x.shape[0], -1)
    n, c = values.shape
    coef = torch.eye(c, dtype=torch.float64).reshape(1, c, c, 1).expand(n, c, c, 1)  # row (n, e) reads u_e(x_n)
    asm = assemble(field, LinearSystem(x, coef, values))
    A = asm.matrix
    AtA = normal_matrix(A)
    AtA = AtA + damping * float(AtA.diagonal().mean()) * sp.identity(AtA.shape[0], format="csr")
    z = solve_spd(AtA.tocsr(), A.T @ asm.rhs, backend)
    write_back(field, z, asm)
    misfit = A @ z - asm.rhs
    return float(np.linalg.norm(misfit) / max(np.linalg.norm(asm.rhs), 1e-300))
