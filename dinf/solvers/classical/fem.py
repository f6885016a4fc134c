"""Finite elements for a steady, linear, scalar equation stated in a config file (``solver=fem``),
in 2D (triangles) or 3D (tetrahedra: a box, or a mesh file's domain);
the Kirchhoff plate's elements are in ``dinf.solvers.classical.plate_fem``.

The residual ``r = Σ D_ij u_ij + b·∇u + c u + r_0`` (``D`` constant, ``b``, ``c``, ``r_0``
functions of the coordinates, read off the parsed equation as least squares reads its rows)
becomes, for test functions ``v`` that vanish on the Dirichlet boundary (``∫ (D:∇²u) v =
−∫ D∇u·∇v``) and with the sign ``s = ±1`` that makes ``−sD`` positive definite,

    ∫ (−sD)∇u·∇v + s (b·∇u) v + s c u v  =  ∫ −s r_0 v.

scikit-fem assembles it on triangles or tetrahedra: a structured mesh of the box, a mesh file's
own cells (a domain ``mesh:``; an STL filled with tetrahedra by gmsh, its triangles their
boundary; split until no edge is longer than ``h``), or a gmsh mesh of the box minus disks whose
P2 edges are curved onto the circles. The Dirichlet values are the conditions' (``u = g`` on their pieces); a piece
without a condition gets the natural (zero-flux) one. The solve is PARDISO or SuperLU
(``dinf.solvers.linalg.sparse_solve``). Its result is a field (``probe`` interpolates the solution), so the
problem's ``evaluate``, pictures and ``metrics.json`` treat it as any model's, and its training
time is meshing, assembly and solve.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

from dinf.solvers.classical.base import ClassicalSolver
from dinf.solvers.classical.plate_fem import PLATE_ELEMENTS, solve_plate
from dinf.equations.evaluate import evaluate
from dinf.errors import ConfigError, check, require
from dinf.geometry.shapes import Ball
from dinf.equations.residual import Residual
from dinf.pdes.conditions import Dirichlet
from dinf.pdes.equation_problem import EquationProblem
from dinf.pdes.plate import KirchhoffPlate
from dinf.solvers.linalg.sparse_solve import solve_spd, warm_up as sparse_warm_up

ORDERS = (1, 2)
OUTSIDE = 0.05  # how far outside its nearest cell (reference coordinates) a probe still counts as inside


class FiniteElements(ClassicalSolver):
    """Triangles (tetrahedra in 3D) of size ``h`` for a steady linear scalar problem (P1 or P2, ``order``) or the
    Kirchhoff plate (``plate_element``: Morley or Argyris, ``dinf.solvers.classical.plate_fem``);
    ``backend`` as in ``dinf.solvers.linalg.sparse_solve``. ``h`` may be a list of sizes: each ``solve`` (what a
    least-squares run calls) then solves at the next one, coarse to fine, afresh, so one run draws
    the method's error-against-time curve; each point is timed alone (``independent_solves``)."""

    name = "finite elements"

    prefix = "fem"

    def __init__(self, in_dim: int = 2, out_dim: int = 1, h: Union[float, Sequence[float]] = 0.02, order: int = 2,
                 plate_element: str = "argyris", backend: str = "auto"):
        super().__init__(in_dim, out_dim, "finite elements", in_dims=(2, 3))
        sizes = [float(v) for v in (h if isinstance(h, (list, tuple)) else [h])]
        check(len(sizes) > 0 and all(v > 0 for v in sizes), "h", f"must be > 0 (or a list of such), got {h!r}")
        check(int(order) in ORDERS, "order", f"must be one of {ORDERS}, got {order!r}")
        check(plate_element in PLATE_ELEMENTS, "plate_element", f"must be one of {PLATE_ELEMENTS}, got {plate_element!r}")
        self.order, self.backend = int(order), backend
        self.sizes, self.plate_element = sorted(sizes, reverse=True), plate_element
        self.h = self.sizes[0]
        self._basis: Any = None
        self._holes: List[Any] = []
        self._solved = 0  # refinements solved so far

    @property
    def refinements(self) -> int:
        """How many solves the run makes (one per size in ``h``)."""
        return len(self.sizes)

    def probe(self, x: Tensor) -> Tensor:
        """The solution at ``x`` ``[N, 2]`` (zero before the solve)."""
        if self._u is None:
            return torch.zeros(x.shape[0], 1, dtype=torch.float64)
        pts = x.detach().double().cpu()[:, : self._basis.mesh.p.shape[0]]
        out = torch.full((pts.shape[0], 1), float("nan"), dtype=torch.float64)
        ok = torch.ones(pts.shape[0], dtype=torch.bool)
        for shape in self._holes:  # a hole's points (a picture's grid) have no element: NaN
            ok &= shape.sdf(pts) > -1e-3 * self.h
        out[ok, 0] = torch.as_tensor(probe(self._basis, self._u, pts[ok].numpy().T))
        return out

    def mesh_solution(self) -> Optional[Tuple[np.ndarray, str, np.ndarray, np.ndarray]]:
        """The last solve on its own mesh, for ParaView (``dinf.app.vtk.export_mesh``): ``(points
        [P, 2], meshio cell type, cells [T, k], values [P])``: the degrees of freedom where they
        lie, which for Lagrange elements are the solution's values there, on P1's triangles or
        P2's six-node ones (a triangle's vertices, then its edges (0, 1), (1, 2), (0, 2): VTK's
        order too). None before a solve and for the plate's elements, whose degrees of freedom
        are not point values."""
        from skfem import ElementTetP1, ElementTetP2, ElementTriP1, ElementTriP2

        basis = self._basis
        # skfem's P2 edge dofs follow its reference edges (0,1), (1,2), (0,2)[, (0,3), (1,3), (2,3)]: VTK's order.
        kinds = {ElementTriP1: "triangle", ElementTriP2: "triangle6", ElementTetP1: "tetra", ElementTetP2: "tetra10"}
        if basis is None or self._u is None or type(basis.elem) not in kinds:
            return None
        kind = kinds[type(basis.elem)]
        return (np.asarray(basis.doflocs, dtype=np.float64).T.copy(), kind,
                np.asarray(basis.element_dofs).T.copy(), np.asarray(self._u, dtype=np.float64))

    def warm_up(self) -> None:
        """Load scikit-fem and the sparse backend on a tiny system, so the first solve's timing
        holds only its own work (as the neural runs' warm-up does for theirs)."""
        from skfem import Basis, ElementTriArgyris, ElementTriMorley, ElementTriP2, MeshTri

        for element in (ElementTriP2(), ElementTriMorley(), ElementTriArgyris()):
            Basis(MeshTri(), element)
        sparse_warm_up(self.backend)

    def check(self, field: Any, problem: Any) -> None:
        require("skfem", "solver", "solver=fem", "pip install scikit-fem")
        if not isinstance(problem, KirchhoffPlate):
            weak_form(problem)
            check_meshable(problem.domain)
            if problem.domain.holes:  # meshed by gmsh
                require("gmsh", "solver", "solver=fem on a domain with holes",
                        "pip install gmsh (on Linux it also needs libGLU: apt-get install libglu1-mesa libxcursor1 "
                        "libxft2 libxinerama1)")

    def _solve(self, problem: Any) -> Dict[str, Any]:
        """Mesh, assemble and solve at the next size; returns timings, degrees of freedom and the
        algebraic residual (``time_s``: this solve's own time)."""
        self.h = self.sizes[min(self._solved, len(self.sizes) - 1)]
        t0 = time.perf_counter()
        if isinstance(problem, KirchhoffPlate):
            basis, u, residual = solve_plate(problem, self.h, self.plate_element, self.backend)
            timings: Dict[str, float] = {}
        else:
            basis, u, residual, timings = self._solve_scalar(problem)
        holes = problem.domain.holes if isinstance(problem, EquationProblem) else {}  # the plate is a square
        self._basis, self._u, self._holes = basis, u, list(holes.values())
        self._solved += 1
        self.info = {"loss": residual, "loss_zero": 1.0, "dofs": int(basis.N), "elements": int(basis.mesh.t.shape[1]),
                     "h": self.h, **timings, "time_s": time.perf_counter() - t0,
                     "converged": self._solved >= len(self.sizes)}
        return self.info

    def _solve_scalar(self, problem: Any) -> Tuple[Any, np.ndarray, float, Dict[str, float]]:
        from skfem import (Basis, BilinearForm, ElementTetP1, ElementTetP2, ElementTriP1, ElementTriP2, LinearForm,
                           condense)
        from skfem.helpers import grad

        logging.getLogger("skfem").setLevel(logging.ERROR)  # its notes on array layouts
        form = weak_form(problem)
        t0 = time.perf_counter()
        m = mesh_of(problem.domain, self.h, self.order)
        t1 = time.perf_counter()
        d = len(form.coords)
        element = {(2, 1): ElementTriP1, (2, 2): ElementTriP2, (3, 1): ElementTetP1, (3, 2): ElementTetP2}[d, self.order]
        basis = Basis(m, element(), intorder=2 * self.order + 2)
        D = form.diffusion

        @BilinearForm
        def a(u, v, w):
            du, dv = grad(u), grad(v)
            flux = sum(D[i][j] * du[j] * dv[i] for i in range(d) for j in range(d))
            out = flux + form.reaction(w.x) * u * v
            adv = form.advection(w.x)
            if adv is not None:
                out = out + sum(adv[i] * du[i] for i in range(d)) * v
            return out

        @LinearForm
        def rhs(v, w):
            return form.source(w.x) * v

        A, b = a.assemble(basis), rhs.assemble(basis)
        u = np.zeros(basis.N)
        dofs, values = dirichlet_values(problem, form, basis)
        t2 = time.perf_counter()
        if dofs is None:  # no Dirichlet piece: the natural condition everywhere
            K, f, interior = A.tocsr(), b, np.arange(basis.N)
        else:
            u[dofs] = values
            K, f, _, interior = condense(A, b, x=u, D=dofs)
            K = K.tocsr()
        if form.symmetric_definite:
            u[interior] = solve_spd(K, f, self.backend)
        else:
            u[interior] = spla.spsolve(sp.csc_matrix(K), f)
        t3 = time.perf_counter()
        residual = float(np.linalg.norm(K @ u[interior] - f) / max(np.linalg.norm(f), 1e-300))
        return basis, u, residual, {"mesh_s": t1 - t0, "assemble_s": t2 - t1, "solve_s": t3 - t2}


class WeakForm:
    """The residual's coefficients, signed: ``diffusion`` ``−sD`` (2 × 2 constants, positive
    definite), and ``advection`` ``s b``, ``reaction`` ``s c``, ``source`` ``−s r_0`` as
    functions of quadrature points ``[2, …]``. ``symmetric_definite``: no advection and a
    constant reaction ≥ 0, so the matrix is SPD (else the solve is SuperLU's LU)."""

    def __init__(self, problem: Any):
        if not isinstance(problem, EquationProblem):
            raise ConfigError("solver", f"solver=fem solves problems stated in a config file; "
                                       f"{type(problem).__name__} is not one")
        name = problem.name
        if problem.time is not None:
            raise ConfigError("solver", f"solver=fem solves steady problems; {name} has the time axis {problem.time}")
        if problem.in_dim not in (2, 3) or problem.out_dim != 1:
            raise ConfigError("solver", f"solver=fem solves one real unknown in 2 or 3 coordinates; {name} has "
                                       f"{problem.in_dim} coordinates and {problem.out_dim} output channels")
        if len(problem.residuals) != 1:
            raise ConfigError("solver", f"solver=fem solves one equation; {name} has {len(problem.residuals)}")
        (rname, r), = problem.residuals.items()
        if not isinstance(r, Residual) or not r.linear:
            raise ConfigError("solver", f"solver=fem needs a linear equation; residuals.{rname} is not one")
        part = r.parts[0]
        self.coords = list(problem.coords)
        d = len(self.coords)
        D = [[0.0] * d for _ in range(d)]
        adv: List[Any] = [0] * d
        reaction: Any = 0
        for symbol, c in part.coefficients.items():
            entry = r.vocab.entries[symbol.name]
            if entry.order == 2:
                if c.free_symbols:
                    raise ConfigError("solver", f"solver=fem needs constant second-order coefficients; "
                                               f"residuals.{rname} has {c} on {symbol.name}")
                i, j = entry.axes
                D[i][j] += float(c) / (1.0 if i == j else 2.0)
                if i != j:
                    D[j][i] += float(c) / 2.0
            elif entry.order == 1:
                adv[entry.axes[0]] = c
            else:
                reaction = c
        eig = np.linalg.eigvalsh(np.array(D))
        if not (eig.min() > 0 or eig.max() < 0):  # definite: elliptic
            raise ConfigError("solver", f"solver=fem needs an elliptic equation; residuals.{rname} is not")
        self.sign = -1.0 if eig.min() > 0 else 1.0  # ∫ D u_ij v = −∫ D∇u·∇v: the flux term enters as −D
        s = self.sign
        self.diffusion = [[-s * D[i][j] for j in range(d)] for i in range(d)]
        self._adv = [s * a for a in adv] if any(a != 0 for a in adv) else None
        self._reaction, self._source = s * reaction, -s * part.constant
        self.symmetric_definite = self._adv is None and _is_number(self._reaction) and float(self._reaction) >= 0

    def _at(self, expr: Any, x: np.ndarray) -> np.ndarray:
        flat = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(len(self.coords), -1))
        data = {name: flat[i] for i, name in enumerate(self.coords)}
        out = evaluate(expr, data, flat[0]) if not _is_number(expr) else torch.full_like(flat[0], float(expr))
        return out.numpy().reshape(np.shape(x)[1:])

    def advection(self, x: np.ndarray) -> Optional[List[np.ndarray]]:
        return None if self._adv is None else [self._at(a, x) for a in self._adv]

    def reaction(self, x: np.ndarray) -> np.ndarray:
        return self._at(self._reaction, x)

    def source(self, x: np.ndarray) -> np.ndarray:
        return self._at(self._source, x)


def _is_number(expr: Any) -> bool:
    return isinstance(expr, (int, float)) or bool(getattr(expr, "is_number", False))


def weak_form(problem: Any) -> WeakForm:
    """The problem's weak form, or a one-line ``ConfigError`` saying why there is none."""
    form = WeakForm(problem)
    for c in problem.conditions:
        if not isinstance(c, Dirichlet):
            raise ConfigError("solver", f"solver=fem takes Dirichlet conditions; conditions.{c.name} is {c.type}")
    return form


def dirichlet_values(problem: Any, form: WeakForm, basis: Any) -> Tuple[Optional[np.ndarray], np.ndarray]:
    """The boundary dofs each Dirichlet condition's pieces hold, and their values ``g``
    (``Condition.prescribed``)."""
    m = basis.mesh
    boundary = basis.get_dofs(m.boundary_facets()).all()
    xy = basis.doflocs[:, boundary]
    domain = problem.domain
    tol = 1e-6 * float((domain.bounds[:, 1] - domain.bounds[:, 0]).max())
    dofs, values = [], []
    for c in problem.conditions:
        pieces = domain.resolve(c.piece, f"pde.conditions.{c.name}.piece")
        on = np.zeros(xy.shape[1], dtype=bool)
        for piece in pieces:
            on |= _on_piece(domain, piece, xy, tol)
        if not on.any():
            continue
        dofs.append(boundary[on])
        values.append(form._at(c.prescribed(), xy[:, on]))
    if not dofs:
        return None, np.zeros(0)
    d, v = np.concatenate(dofs), np.concatenate(values)
    first = np.unique(d, return_index=True)[1]  # a corner on two pieces: the first condition's value
    return d[first], v[first]


def _on_piece(domain: Any, piece: str, xy: np.ndarray, tol: float) -> np.ndarray:
    if domain.mesh is not None and piece in domain.mesh.pieces:  # within reach of the piece's facets
        k = domain.mesh.pieces.index(piece)
        return domain.mesh.distance(torch.as_tensor(xy.T), domain.mesh.piece_of == k).numpy() < tol
    if piece in domain.holes or piece in domain.additions:
        shape = domain.holes.get(piece) or domain.additions[piece]
        return np.abs(shape.sdf(torch.as_tensor(xy.T)).numpy()) < 1e3 * tol
    name, side = piece.rsplit("_", 1)
    axis = domain.coords.index(name)
    bound = float(domain.bounds[axis, 0 if side == "min" else 1])
    return np.abs(xy[axis] - bound) < tol


def check_meshable(domain: Any) -> None:
    """Refuse, in one line, a domain ``mesh_of`` cannot mesh: additions, holes other than disks
    (in 3D any), a mesh file's region with shapes cut from it, a 2D one without triangles."""
    if domain.mesh is not None:
        if domain.holes or domain.additions or domain.within:
            raise ConfigError("solver", "solver=fem solves on the mesh file's own cells; this domain also "
                                        "cuts or adds shapes (holes, additions, within)")
        if domain.mesh.dim == 2 and domain.mesh.cells is None:
            raise ConfigError("solver", "solver=fem needs a 2D mesh file with triangles; this one has only its boundary")
        return
    if domain.additions:
        raise ConfigError("solver", "solver=fem meshes a box with disk holes; this domain has additions")
    for name, shape in domain.holes.items():
        if not isinstance(shape, Ball) or domain.space_dim != 2:
            raise ConfigError("solver", f"solver=fem meshes disk holes in 2D; holes.{name} is a "
                                        f"{domain.space_dim}D {type(shape).__name__}")


def mesh_of(domain: Any, h: float, order: int) -> Any:
    """Triangles (2D) or tetrahedra (3D) of size ``h``: a structured mesh of a box, gmsh's of a
    box minus disks, or a mesh file's own cells (an STL's: gmsh fills the surface with
    tetrahedra, the STL's triangles their boundary), split (in four, or in eight) until the
    longest edge is at most ``h`` (none where it already is)."""
    from skfem import MeshTet, MeshTri

    check_meshable(domain)
    if domain.mesh is not None:
        region = domain.mesh
        if region.dim == 2:
            m = MeshTri(region.points.numpy().T.copy(), region.cells[1].T.copy())
        else:
            p, t = (region.points.numpy(), region.cells[1]) if region.cells is not None else tetrahedralize(region)
            m = MeshTet(p.T.copy(), t.T.copy())
        while _longest_edge(m) > h * (1 + 1e-9):
            m = m.refined()
        return m
    lo, hi = domain.bounds[:, 0].tolist(), domain.bounds[:, 1].tolist()
    axes = [np.linspace(a, b, max(1, math.ceil((b - a) / h)) + 1) for a, b in zip(lo, hi)]
    if domain.space_dim == 3:
        return MeshTet.init_tensor(*axes)
    if not domain.holes:
        return MeshTri.init_tensor(*axes)
    disks = [(tuple(shape.center.tolist()), float(shape.radius)) for shape in domain.holes.values()]
    return mesh(tuple(zip(lo, hi)), disks, h, curved=order == 2)


def _longest_edge(m: Any) -> float:
    edges = m.facets if m.p.shape[0] == 2 else m.edges
    return float(np.linalg.norm(m.p[:, edges[0]] - m.p[:, edges[1]], axis=0).max())


def tetrahedralize(region: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Tetrahedra filling a closed triangle surface (an STL), by gmsh: ``(points [P, 3], tets
    [T, 4])``, the surface's triangles kept as their boundary (its points first, as they were)."""
    import gmsh

    points, tri = region.points.numpy(), region.facets.numpy()
    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Verbosity", 0)
    try:
        gmsh.model.add("surface")
        surface = gmsh.model.addDiscreteEntity(2)
        gmsh.model.mesh.addNodes(2, surface, np.arange(1, len(points) + 1), points.reshape(-1))
        gmsh.model.mesh.addElementsByType(surface, 2, [], (tri + 1).reshape(-1))  # type 2: 3-node triangles
        gmsh.model.geo.addVolume([gmsh.model.geo.addSurfaceLoop([surface])])
        gmsh.model.geo.synchronize()
        gmsh.model.mesh.generate(3)
        tags, coords, _ = gmsh.model.mesh.getNodes()
        _, nodes = gmsh.model.mesh.getElementsByType(4)  # 4-node tetrahedra
    finally:
        gmsh.finalize()
    index = np.zeros(int(tags.max()) + 1, dtype=np.int64)
    index[tags.astype(np.int64)] = np.arange(len(tags))
    return coords.reshape(-1, 3), index[nodes.astype(np.int64)].reshape(-1, 4)


def mesh(box, disks, h: float, curved: bool = True):
    """A triangle mesh of ``box`` minus ``disks`` (gmsh); ``curved``: quadratic, with the
    midpoints of the circles' edges on the circles (isoparametric P2)."""
    import gmsh
    from skfem import MeshTri, MeshTri2

    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Verbosity", 0)
    try:
        occ = gmsh.model.occ
        (x0, x1), (y0, y1) = box
        rect = occ.addRectangle(x0, y0, 0, x1 - x0, y1 - y0)
        holes = [occ.addDisk(cx, cy, 0, r, r) for (cx, cy), r in disks]
        occ.cut([(2, rect)], [(2, d) for d in holes])
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMin", h)
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)
        gmsh.model.mesh.generate(2)
        tags, coords, _ = gmsh.model.mesh.getNodes()
        _, _, conn = gmsh.model.mesh.getElements(2)
    finally:
        gmsh.finalize()
    index = {int(t): i for i, t in enumerate(tags)}
    p = coords.reshape(-1, 3)[:, :2].T
    t = np.vectorize(index.get)(conn[0].astype(int)).reshape(-1, 3).T
    used = np.unique(t)  # gmsh keeps the geometry's points; drop any no triangle uses
    remap = -np.ones(p.shape[1], int)
    remap[used] = np.arange(used.size)
    straight = MeshTri(p[:, used], remap[t])
    if not curved:
        return straight
    m = MeshTri2.from_mesh(straight)
    dofs = m.dofs.get_facet_dofs(m.boundary_facets()).flatten()
    locs = m.doflocs.copy()
    for (cx, cy), r in disks:
        d = locs[:, dofs] - np.array([[cx], [cy]])
        dist = np.hypot(*d)
        on = np.abs(dist - r) < 0.25 * h
        locs[:, dofs[on]] = np.array([[cx], [cy]]) + d[:, on] * (r / dist[on])
    return MeshTri2(locs, m.t)


def probe(basis, u: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``u`` at points ``x`` ``[d, M]`` (scikit-fem finds no elements on quadratic meshes, and
    searches all of them for a point outside): among each point's 8 nearest cells (by centroid),
    the one whose straight-sided triangle (tetrahedron) holds it or, for a node just outside, the
    least outside; then the curved cell's own coordinates. Points farther outside every cell than
    ``OUTSIDE`` (in reference coordinates) are NaN."""
    from scipy.spatial import cKDTree
    from skfem import MeshTet, MeshTri

    m = basis.mesh
    d = m.p.shape[0]
    affine = (MeshTri if d == 2 else MeshTet)(m.p, m.t[: d + 1])._mapping()  # straight-sided cells: a first guess
    tree = cKDTree(m.p[:, m.t].mean(axis=1).T)
    best, worst = np.zeros(x.shape[1], int), np.full(x.shape[1], -np.inf)
    todo = np.arange(x.shape[1])
    for k in (8, 64):  # 8 nearest centroids; 64 for points they miss (long cells at a boundary, 3D)
        near = tree.query(x[:, todo].T, min(k, m.t.shape[1]))[1].reshape(len(todo), -1)
        for j in range(near.shape[1]):
            cells = near[:, j]
            X = affine.invF(x[:, todo, None], tind=cells)[:, :, 0]
            margin = np.minimum(X.min(axis=0), 1 - X.sum(axis=0))  # ≥ 0 inside the cell
            better = margin > worst[todo]
            best[todo[better]], worst[todo[better]] = cells[better], margin[better]
        todo = todo[worst[todo] < 0]
        if not len(todo):
            break
    out = np.full(x.shape[1], np.nan)  # outside the mesh (in a hole: a picture's grid): NaN
    ok = worst > -OUTSIDE
    cells = best[ok]
    X = affine.invF(x[:, ok, None], tind=cells)  # exact on straight cells
    curved = np.abs(basis.mapping.F(X, tind=cells) - x[:, ok, None]).max(axis=(0, 2)) > 1e-14
    if curved.any():
        X[:, curved] = _newton(basis.mapping, x[:, ok][:, curved], cells[curved], X[:, curved])
    phis = np.array([basis.elem.gbasis(basis.mapping, X, k, tind=cells)[0] for k in range(basis.Nbfun)])
    out[ok] = np.einsum("kmq,km->m", phis, u[basis.element_dofs[:, cells]])
    return out


def _newton(mapping: Any, x: np.ndarray, cells: np.ndarray, guess: np.ndarray, steps: int = 30) -> np.ndarray:
    """Reference coordinates of ``x`` ``[2, M]`` in curved ``cells`` by Newton from ``guess``
    ``[2, M, 1]``, unclipped (scikit-fem's clips to the unit square and can stall at an edge);
    a point that does not converge keeps its straight-sided guess."""
    X = guess.copy()
    for _ in range(steps):
        dX = np.einsum("ijkl,jkl->ikl", mapping.invDF(X, cells), x[:, :, None] - mapping.F(X, cells))
        X += dX
        if np.abs(dX).max() < 1e-13:
            break
    bad = ~np.isfinite(X).all(axis=(0, 2)) | (np.abs(mapping.F(X, cells) - x[:, :, None]).max(axis=(0, 2)) > 1e-10)
    X[:, bad] = guess[:, bad]
    return X
