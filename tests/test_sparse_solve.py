"""The normal equations' direct solve: PARDISO and SuperLU agree; the threaded AᵀA is AᵀA."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from dinf.solvers.linalg import sparse_solve
from dinf.errors import ConfigError
from dinf.solvers.gauss_newton import GaussNewton
from dinf.solvers.least_squares import LeastSquares
from dinf.solvers.linalg.gram import normal_matrix
from dinf.solvers.linalg.sparse_solve import backend_for, pardiso_available, solve_spd


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
    with pytest.raises(ConfigError, match="solver.backend: 'mumps' is not one of auto, pardiso, superlu"):
        try:
            LeastSquares(backend="mumps")
        except ConfigError as e:
            raise e.prefixed("solver") from None


def test_missing_pardiso_is_one_line(monkeypatch):
    monkeypatch.setattr(sparse_solve, "pardiso_available", lambda: False)
    with pytest.raises(ConfigError, match="pardiso needs pypardiso"):
        GaussNewton(backend="pardiso")
    assert sparse_solve.backend_for("auto") == "superlu"


def _grouped_rows(seed=0, groups=300, cols=3_000, k=40):
    """Rows in groups that share one sorted column set (as a cell's collocation points do),
    shuffled, with some rows of their own."""
    rng = np.random.default_rng(seed)
    sets = [np.sort(rng.choice(cols, k, replace=False)) for _ in range(groups)]
    rows = [(s, rng.standard_normal(k)) for s in sets for _ in range(rng.integers(1, 30))]
    rows += [(np.sort(rng.choice(cols, 7, replace=False)), rng.standard_normal(7)) for _ in range(50)]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    indptr = np.cumsum([0] + [len(c) for c, _ in rows])
    A = sp.csr_matrix((np.concatenate([v for _, v in rows]), np.concatenate([c for c, _ in rows]), indptr),
                      shape=(len(rows), cols))
    return A


def test_grouped_normal_matrix_equals_the_plain_product():
    from dinf.solvers.linalg.gram import MIN_ROWS_PER_GROUP, groups, normal_matrix_grouped

    A = _grouped_rows()
    order, bounds = groups(A)
    assert order.size >= MIN_ROWS_PER_GROUP * (bounds.size - 1) and bounds.size - 1 <= 350
    assert sorted(order) == list(range(A.shape[0]))
    M = normal_matrix_grouped(A)
    assert M is not None
    plain = (A.T @ A).tocsr()
    assert abs(M - plain).max() < 1e-12 * abs(plain).max()
    assert (M != M.T).nnz == 0
    # Unsorted columns within rows and an empty row give the same product.
    B = sp.vstack([A, sp.csr_matrix((1, A.shape[1]))]).tocsr()
    B.indices, B.data = B.indices.copy(), B.data.copy()
    for r in range(0, B.shape[0] - 1, 3):
        lo, hi = B.indptr[r], B.indptr[r + 1]
        B.indices[lo:hi], B.data[lo:hi] = B.indices[lo:hi][::-1].copy(), B.data[lo:hi][::-1].copy()
    B.has_sorted_indices = False
    assert abs(normal_matrix(B) - plain).max() < 1e-12 * abs(plain).max()


def test_grouped_normal_matrix_declines_rows_of_their_own():
    from dinf.solvers.linalg.gram import normal_matrix_grouped

    A = sp.random(2_000, 500, density=0.02, format="csr", random_state=np.random.default_rng(3))
    assert normal_matrix_grouped(A) is None  # every row its own group: the plain product is cheaper
    assert abs(normal_matrix(A) - (A.T @ A)).max() < 1e-12


def test_least_squares_matrix_from_groups_equals_the_plain_product():
    """On an assembled config problem (Poisson2d-C, holes, soft conditions): the rows of one cell share
    their columns, so the grouped path applies, and it equals scipy's product."""
    import torch

    from dinf.solvers.linalg.gram import MIN_ROWS_PER_GROUP, groups
    from dinf.solvers.least_squares import assemble
    from dinf.app.run import build
    from tests.helpers import compose_cfg

    cfg = compose_cfg(["pde=poisson2d_c", "kernel=gaussian_wide", "grid.levels=1", "grid.resolution=16"])
    problem, field, _ = build(cfg)
    batch = problem.sample(8_000, torch.Generator().manual_seed(0))
    with torch.no_grad():
        A = assemble(field, problem.linear_system(batch)).matrix
    order, bounds = groups(A.sorted_indices())
    assert A.shape[0] >= MIN_ROWS_PER_GROUP * (bounds.size - 1)  # the grouped path applies
    plain = (A.T @ A).tocsr()
    assert abs(normal_matrix(A) - plain).max() < 1e-12 * abs(plain).max()


@pytest.mark.parametrize("backend", ["superlu", "pardiso"])
def test_a_solve_out_of_memory_is_one_line_with_its_size(monkeypatch, backend):
    """A factorisation that runs out of memory stops with the system's size and the keys that
    shrink it, not PARDISO's error code or SuperLU's "Not enough memory"."""
    if backend == "pardiso" and not pardiso_available():
        pytest.skip("pypardiso is not installed")
    M = sp.identity(5, format="csr") * 2.0
    if backend == "superlu":
        def fail(*args, **kwargs):
            raise RuntimeError("Not enough memory to perform factorization.")
        monkeypatch.setattr(sparse_solve.spla, "spsolve", fail)
    else:
        from pypardiso.pardiso_wrapper import PyPardisoError

        def fail(*args, **kwargs):
            raise PyPardisoError(-2)
        monkeypatch.setattr(type(sparse_solve._pardiso_spd()), "solve", fail)
    with pytest.raises(ConfigError) as info:
        solve_spd(M, np.ones(5), backend=backend)
    message = str(info.value)
    assert message.startswith("solver.method: the direct solve of 5 unknowns") and "\n" not in message
    assert "grid.resolution" in message and "solver.method=lsqr" in message


def test_other_solve_failures_are_not_called_memory():
    with pytest.raises(ValueError, match="dimension mismatch"):
        solve_spd(sp.identity(3, format="csr"), np.ones(4), backend="superlu")


@pytest.mark.skipif(not pardiso_available(), reason="pypardiso is not installed")
def test_a_pardiso_failure_other_than_memory_is_solved_by_superlu_and_logged(monkeypatch, caplog):
    """PARDISO's zero pivot (-4, met by Gauss–Newton on a nearly singular system) is not a crash:
    the solve goes to SuperLU, with a warning."""
    from pypardiso.pardiso_wrapper import PyPardisoError

    def fail(*args, **kwargs):
        raise PyPardisoError(-4)
    monkeypatch.setattr(type(sparse_solve._pardiso_spd()), "solve", fail)
    _, M, b = _system(3, rows=3_000, cols=200)
    with caplog.at_level("WARNING"):
        x = solve_spd(M, b, backend="pardiso")
    np.testing.assert_allclose(M @ x, b, rtol=0, atol=1e-9 * np.abs(b).max())
    assert "PARDISO could not factor the 200 × 200 system" in caplog.text
