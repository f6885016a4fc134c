"""The normal equations' direct solve: PARDISO and SuperLU agree; the threaded AᵀA is AᵀA."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from dinf import sparse_solve
from dinf.errors import ConfigError
from dinf.gauss_newton import GaussNewton
from dinf.lsq import LeastSquares
from dinf.sparse_solve import backend_for, normal_matrix, pardiso_available, solve_spd


def _system(seed=0, rows=30_000, cols=2_000):
    rng = np.random.default_rng(seed)
    A = sp.random(rows, cols, density=8 / cols, format="csr", random_state=rng)
    M = normal_matrix(A, threads=2) + 1e-3 * sp.identity(cols, format="csr")
    return A, M, rng.standard_normal(cols)


def test_threaded_normal_matrix_equals_the_plain_product():
    A, _, _ = _system()
    assert A.shape[0] >= 10_000  # the threaded path
    diff = normal_matrix(A, threads=2) - (A.T @ A)
    assert abs(diff).max() < 1e-12


def test_superlu_solves_the_system():
    _, M, b = _system(1)
    x = solve_spd(M, b, backend="superlu")
    np.testing.assert_allclose(M @ x, b, rtol=0, atol=1e-9 * np.abs(b).max())


@pytest.mark.skipif(not pardiso_available(), reason="pypardiso is not installed")
def test_pardiso_equals_superlu():
    _, M, b = _system(2)
    x = solve_spd(M, b, backend="pardiso")
    np.testing.assert_allclose(x, solve_spd(M, b, backend="superlu"), rtol=1e-9, atol=1e-12)
    assert backend_for("auto") == "pardiso"


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="no sparse backend 'mumps'"):
        backend_for("mumps")
    with pytest.raises(ConfigError, match="optimizer.lsq.backend: 'mumps' is not one of auto, pardiso, superlu"):
        try:
            LeastSquares(backend="mumps")
        except ConfigError as e:
            raise e.prefixed("optimizer.lsq") from None


def test_missing_pardiso_is_one_line(monkeypatch):
    monkeypatch.setattr(sparse_solve, "pardiso_available", lambda: False)
    with pytest.raises(ConfigError, match="pardiso needs pypardiso"):
        GaussNewton(backend="pardiso")
    assert sparse_solve.backend_for("auto") == "superlu"
