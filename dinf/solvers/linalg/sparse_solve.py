"""Direct solves of the symmetric positive definite normal equations ``(AᵀA + μI) z = b``.

Intel's PARDISO (``pip install pypardiso``, x86-64) when it is installed, else scipy's SuperLU.
PARDISO factorises SPD matrices by a supernodal Cholesky on a nested-dissection ordering; SuperLU
does a general LU. On a Gauss–Newton step of NS2d-C (64² cells, 15 k unknowns, 4.8 M nonzeros in
AᵀA) PARDISO takes 0.88–0.98 s and SuperLU 14.8–15.5 s, agreeing to 5e-12
(``python experiments/bench_sparse.py``, two runs).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import logging
import os
import threading
import weakref
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from dinf.errors import ConfigError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "pardiso", "superlu")


def pardiso_available() -> bool:
    """Whether pypardiso (and its MKL) can be imported."""
    if importlib.util.find_spec("pypardiso") is None:
        return False
    try:
        import pypardiso  # noqa: F401 - loads MKL; fails when the library is missing
    except (ImportError, OSError):
        return False
    return True


def backend_for(name: str = "auto") -> str:
    """The backend ``name`` resolves to (``auto``: PARDISO when available)."""
    if name not in BACKENDS:
        raise ValueError(f"no sparse backend {name!r} ({', '.join(BACKENDS)})")
    if name == "auto":
        return "pardiso" if pardiso_available() else "superlu"
    if name == "pardiso" and not pardiso_available():
        raise ImportError("the pardiso backend needs pypardiso: pip install pypardiso (x86-64)")
    return name


def check_backend(name: str) -> None:
    """Raise a one-line ``ConfigError`` for an unknown backend or a missing PARDISO."""

    if name not in BACKENDS:
        raise ConfigError("backend", f"{name!r} is not one of {', '.join(BACKENDS)}")
    if name == "pardiso" and not pardiso_available():
        raise ConfigError("backend", 'pardiso needs pypardiso: pip install -e ".[pardiso]" (x86-64)')


_PARDISO_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _pardiso_spd():
    """One PARDISO handle for real SPD matrices (it reads the upper triangle), kept: creating one
    searches the file system for MKL (1.1 s in this project's virtual environment)."""
    import pypardiso

    solver = pypardiso.PyPardisoSolver(mtype=2)
    solver.set_statistical_info_off()
    return solver


def warm_up(backend: str = "auto") -> None:
    """Load the backend (PARDISO's handle, MKL) on a 1 × 1 system, so a solve's timing does not include it."""
    solve_spd(sp.csr_matrix(np.ones((1, 1))), np.ones(1), backend)


def solve_spd(M: sp.spmatrix, b: np.ndarray, backend: str = "auto") -> np.ndarray:
    """``M⁻¹ b`` for a symmetric positive definite sparse ``M``."""
    with too_large(M):
        if backend_for(backend) == "pardiso":
            with _PARDISO_LOCK:
                solver = _pardiso_spd()
                try:
                    return solver.solve(sp.triu(M, format="csr"), np.asarray(b, dtype=np.float64))
                except Exception as e:  # noqa: BLE001 - PyPardisoError: a (numerically) singular matrix
                    text = str(e)
                    # Out of memory goes to too_large's one line; a zero pivot (-4) to SuperLU.
                    if type(e).__name__ != "PyPardisoError" or f"{PARDISO_OUT_OF_MEMORY}" in text:
                        raise
                    log.warning("PARDISO could not factor the %d × %d system (%s); solving it with SuperLU",
                                M.shape[0], M.shape[1], text.split(".")[0])
                finally:
                    solver.free_memory(everything=True)
        # COLAMD ordering: experiment=helmholtz_lsq runs in 31 s, 51 s with MMD_AT_PLUS_A.
        return spla.spsolve(sp.csc_matrix(M), b, permc_spec="COLAMD")


# PARDISO's error code for "not enough memory" (its manual's table of phase errors).
PARDISO_OUT_OF_MEMORY = -2


@contextlib.contextmanager
def too_large(M: sp.spmatrix) -> Iterator[None]:
    """Turn a factorisation that runs out of memory (PARDISO's error -2, SuperLU's "Not enough
    memory", a MemoryError) into one line with the system's size and the keys that shrink it."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - PyPardisoError is a bare Exception; others are re-raised
        text = str(e)
        if not (isinstance(e, MemoryError) or "memory" in text.lower() or f"error code {PARDISO_OUT_OF_MEMORY}" in text
                or f"error {PARDISO_OUT_OF_MEMORY}" in text):
            raise
        raise ConfigError("solver.method", f"the direct solve of {M.shape[0]:,} unknowns ({M.nnz:,} nonzeros) ran out "
                          f"of memory in its factorisation ({available_bytes() / 1e9:.1f} GB are available); use fewer unknowns "
                          "(grid.resolution, grid.levels, a narrower kernel: kernel.rho) or an iterative solve "
                          "(solver.method=lsqr or cg)") from None


def available_bytes() -> float:
    """Memory a new allocation can have now: Linux's MemAvailable (free plus reclaimable caches),
    else the free pages, else infinity where the platform does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return float("inf")


def from_upper(upper: sp.spmatrix) -> sp.csr_matrix:
    """The whole symmetric (complex: Hermitian) matrix from its upper triangle."""
    return (upper + sp.triu(upper, k=1, format="csr").conj().T).tocsr()


def solve_hpd(upper: sp.spmatrix, b: np.ndarray, backend: str = "auto") -> np.ndarray:
    """``M⁻¹ b`` for a complex Hermitian positive definite ``M`` given by its upper triangle.

    PARDISO's complex Hermitian Cholesky (matrix type 4), called through the MKL that pypardiso
    loads (pypardiso itself takes real matrices only): half the unknowns, and about half the time
    and memory, of the real form ``[[R, −I], [I, R]]``. Without PARDISO, SuperLU's complex LU of
    the whole matrix."""
    upper = sp.csr_matrix(upper, dtype=np.complex128)
    upper.sort_indices()
    b = np.ascontiguousarray(b, dtype=np.complex128)
    if backend_for(backend) != "pardiso":
        return spla.spsolve(sp.csc_matrix(from_upper(upper)), b, permc_spec="COLAMD")
    import ctypes

    with _PARDISO_LOCK:
        call = _pardiso_spd()._mkl_pardiso  # argtypes set by pypardiso: pointers, so any dtype passes
        pt = np.zeros(64, dtype=np.int64)
        iparm = np.zeros(64, dtype=np.int32)  # iparm[0] = 0: PARDISO's defaults for the matrix type
        ia = (upper.indptr + 1).astype(np.int32)  # one-based, as PARDISO's default
        ja = (upper.indices + 1).astype(np.int32)
        x = np.zeros_like(b)
        error = ctypes.c_int32(0)
        i32 = ctypes.POINTER(ctypes.c_int32)

        def run(phase: int) -> None:
            call(pt.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), ctypes.byref(ctypes.c_int32(1)),
                 ctypes.byref(ctypes.c_int32(1)), ctypes.byref(ctypes.c_int32(4)), ctypes.byref(ctypes.c_int32(phase)),
                 ctypes.byref(ctypes.c_int32(upper.shape[0])), upper.data.ctypes.data_as(ctypes.c_void_p),
                 ia.ctypes.data_as(i32), ja.ctypes.data_as(i32), np.zeros(0, np.int32).ctypes.data_as(i32),
                 ctypes.byref(ctypes.c_int32(1)), iparm.ctypes.data_as(i32), ctypes.byref(ctypes.c_int32(0)),
                 b.ctypes.data_as(ctypes.c_void_p), x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(error))

        try:
            with too_large(upper):
                run(13)  # analysis, factorisation, solve
                if error.value != 0:
                    raise RuntimeError(f"PARDISO (complex Hermitian) failed with error {error.value}")
        finally:
            run(-1)  # release its memory
    return x


class PatternSolver:
    """Direct solves of ``M δ = b`` for symmetric positive definite ``M`` given by its upper
    triangle, all with one sparsity pattern: PARDISO orders and analyses it once and then only
    factorises (on the cloth: 0.07 s of a 0.24 s solve saved each time); SuperLU
    without PARDISO."""

    def __init__(self, backend: str):
        self.backend = backend_for(backend)
        self._pardiso = None

    def __call__(self, upper: sp.csr_matrix, b: np.ndarray) -> np.ndarray:
        if self.backend != "pardiso":
            return solve_spd(from_upper(upper), b, self.backend)
        if self._pardiso is None:
            self._pardiso = _own_pardiso()
            weakref.finalize(self, self._pardiso.free_memory, True)  # PARDISO's memory goes with this solver
            self._run(11, upper, b)
        self._run(22, upper, b)
        return self._run(33, upper, b)

    def _run(self, phase: int, upper: sp.csr_matrix, b: np.ndarray) -> np.ndarray:
        self._pardiso.set_phase(phase)
        with too_large(upper):
            return self._pardiso._call_pardiso(upper, np.asarray(b, dtype=np.float64))


def _own_pardiso() -> Any:
    """A PARDISO handle of its own (its memory holds the analysis), sharing the MKL that the
    kept handle loaded: finding it again takes 0.7 s."""
    base = _pardiso_spd()
    handle = copy.copy(base)
    handle.pt, handle.iparm = np.zeros_like(base.pt), np.zeros_like(base.iparm)
    return handle
