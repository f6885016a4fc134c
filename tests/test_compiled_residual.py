"""Compiled residuals (dinf/equations/compile.py) against the tree walk they replace.

The tree walk (``evaluate_tree``, ``Residual.evaluate_tree``, ``Residual.rows_tree``) and
autograd through it (``linearize.autograd_rows``) are the references: on every shipped config
problem, float64, the compiled values equal them bit for bit, and the linearised rows Gauss–Newton
solves agree to rounding.
"""
from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import sympy as sp
import torch
from omegaconf import OmegaConf

from dinf.equations import Residual, Unknowns, Vocabulary
from dinf.equations.compile import Uncompilable, compile_exprs
from dinf.equations.evaluate import compiled, evaluate, evaluate_tree
from dinf.equations.linearize import autograd_rows, linearized_rows
from dinf.jet import Jet, higher_axes
from dinf.pdes.equation_problem import EquationProblem

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (ROOT / "conf" / "pde").glob("*.yaml")
                 if "dinf.pdes.EquationProblem" in p.read_text())


def _problem(name: str) -> EquationProblem:
    """A shipped problem from its YAML alone: interpolations (``hard: ${…}``) off, keys that are
    not the problem's (run settings) dropped."""
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "pde" / f"{name}.yaml"), resolve=False)

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return False if isinstance(v, str) and v.startswith("${") else v

    keys = set(inspect.signature(EquationProblem.__init__).parameters) - {"self"}
    return EquationProblem(**{k: plain(v) for k, v in cfg.items() if k in keys})


def _residuals(problem: EquationProblem):
    out = [(f"residuals.{n}", r) for n, r in problem.residuals.items()]
    out += [(f"conditions.{c.name}[{i}]", r) for c in problem.conditions for i, r in enumerate(c.residuals)]
    return [(key, r) for key, r in out if isinstance(r, Residual)]


def _jet(n: int, c: int, d: int, seed: int, order: int = 2) -> Jet:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, c, d, d, generator=g, dtype=torch.float64)
    f64 = torch.float64
    higher = torch.randn(n, c, len(higher_axes(d, order)), generator=g, dtype=f64) if order > 2 else None
    return Jet(torch.randn(n, c, generator=g, dtype=f64), torch.randn(n, c, d, generator=g, dtype=f64),
               h + h.transpose(-1, -2), higher)


def _data(problem: EquationProblem, n: int, seed: int):
    """Points in the domain's box, and a unit normal for boundary residuals."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = problem.domain.bounds[:, 0].double(), problem.domain.bounds[:, 1].double()
    x = lo + (hi - lo) * torch.rand(n, problem.in_dim, generator=g, dtype=torch.float64)
    data = {c: x[:, i] for i, c in enumerate(problem.coords)}
    space = [c for c in problem.coords if c != problem.time]
    normal = torch.randn(n, len(space), generator=g, dtype=torch.float64)
    normal = normal / normal.norm(dim=1, keepdim=True)
    data.update({f"n_{c}": normal[:, i] for i, c in enumerate(space)})
    return data


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def test_every_shipped_equation_problem_is_checked():
    assert {"burgers1d", "ns2d_c", "poisson2d_c", "heat2d_ms", "wave1d"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_compiled_residuals_equal_the_tree_walk_on_shipped_problems(name):
    problem = _problem(name)
    # Residuals read the unknowns and any unknown parameters (more channels: dinf.pdes.inferred).
    d, c, n, order = problem.in_dim, problem.symbols.out_dim, 64, problem.jet_order
    residuals = _residuals(problem)
    assert residuals
    for seed, (key, r) in enumerate(residuals):
        jet, data = _jet(n, c, d, seed, order), _data(problem, n, seed)
        like = data[problem.coords[0]]
        # Values: the same operations in the same order, so the same bits.
        got = r.evaluate(jet, data)
        assert r._function("values") is not None, f"{name} {key} did not compile"
        assert got.shape == (n, len(r.parts)) and got.dtype == torch.float64
        _same(got, r.evaluate_tree(jet, data))
        # Linearised rows (Gauss–Newton): symbolic derivatives against autograd through the walk.
        coef, rhs = linearized_rows(r, jet, data, d, order)
        assert r._function("linearized") is not None, f"{name} {key}: linearisation did not compile"
        want_coef, want_rhs = autograd_rows(r.evaluate_tree, jet, data, d, order)
        torch.testing.assert_close(coef, want_coef, rtol=1e-12, atol=1e-12, equal_nan=True)
        torch.testing.assert_close(rhs, want_rhs, rtol=1e-10, atol=1e-10, equal_nan=True)
        if r.linear:  # least-squares rows of an affine residual
            coef, rhs = r.rows(data, d, order, like)
            assert r._function("rows") is not None
            want_coef, want_rhs = r.rows_tree(data, d, order, like)
            _same(coef, want_coef)
            _same(rhs, want_rhs)


def test_linearised_rows_reproduce_the_residual_and_its_first_order_change():
    """At J₀ the rows give r(J₀); at J₀ + h·δ they give r(J₀) + h·∂r·δ (checked by differences)."""
    vocab = Vocabulary(["u", "v"], ["x", "y"], {"nu": 0.01})
    r = Residual("u*u_x + v*u_y + exp(v)*sin(u_xy) - nu*(u_xx + u_yy) + x*y", vocab, Unknowns(["u", "v"]), "r",
                 {"nu": 0.01})
    x = torch.rand(32, 2, dtype=torch.float64)
    jet, data = _jet(32, 2, 2, 3), {"x": x[:, 0], "y": x[:, 1]}
    coef, rhs = linearized_rows(r, jet, data, 2, 2)
    from dinf.equations.linearize import _entries

    J = _entries(jet, 7)
    rows = torch.einsum("npca,nca->np", coef, J) - rhs
    torch.testing.assert_close(rows, r.evaluate(jet, data), rtol=1e-12, atol=1e-12)
    delta = _jet(32, 2, 2, 4)
    h = 1e-6
    moved = Jet(jet.value + h * delta.value, jet.grad + h * delta.grad, jet.hess + h * delta.hess)
    # The residual reads only the upper Hessian entry: the rows' ∂r/∂H_xy multiplies that one.
    slope = (r.evaluate(moved, data) - r.evaluate(jet, data)) / h
    torch.testing.assert_close(torch.einsum("npca,nca->np", coef, _entries(delta, 7)), slope, rtol=1e-4, atol=1e-4)


# --- the compiler on each kind of node ----------------------------------------------------------
x, y, u = sp.symbols("x y u", real=True)
NODES = [
    2 * x + 3, x * y * u - 1, x**2 + u**-1 + sp.sqrt(x) + x**sp.Rational(3, 2) + 2**x + x**y,
    sp.sin(x) + sp.cos(y) + sp.tan(u) + sp.exp(-x) + sp.log(x) + sp.sinh(u) + sp.cosh(u) + sp.tanh(u),
    sp.asin(x) + sp.acos(x) + sp.atan(u) + sp.Abs(u) + sp.sign(u), sp.sin(3) * x,
    sp.atan2(u, x - 0.5), sp.atan2(1, x), sp.Heaviside(u, 1) + sp.Heaviside(x - 0.5), sp.Min(x, y, 0.5) + sp.Max(u, 0),
    sp.Piecewise((1, x < 0.25), (u, (x < 0.5) & (y > 0.5)), (2, ~(y <= 0.1) | (x >= 0.9)), (x, True)),
    sp.Piecewise((x, x < 0.5)),  # no piece applies at x ≥ 0.5: NaN, as the walk gives
    sp.pi * x + sp.E, sp.Float(2.5), sp.Integer(0), sp.true, x < y,
]


@pytest.mark.parametrize("expr", NODES, ids=[str(e)[:40] for e in NODES])
def test_compiled_expressions_equal_the_tree_walk(expr):
    g = torch.Generator().manual_seed(0)
    env = {"x": torch.rand(50, generator=g, dtype=torch.float64), "y": torch.rand(50, generator=g, dtype=torch.float64),
           "u": torch.randn(50, generator=g, dtype=torch.float64)}
    assert compiled(expr) is not None
    got, want = evaluate(expr, env, env["x"]), evaluate_tree(expr, env, env["x"])
    assert got.shape == want.shape == (50,) and got.dtype == want.dtype
    _same(got, want)
    # float32 too: what Adam trains in
    env32 = {k: v.float() for k, v in env.items()}
    _same(evaluate(expr, env32, env32["x"]), evaluate_tree(expr, env32, env32["x"]))


def test_shared_nodes_are_computed_once():
    fn = compile_exprs([sp.sin(x * y) + u, sp.sin(x * y) * 2, sp.diff(sp.sin(x * y) * u, u)])
    assert fn.source.count("torch.sin(") == 1
    out = fn({"x": torch.ones(3), "y": torch.ones(3), "u": torch.zeros(3)}, torch.ones(3))
    assert len(out) == 3 and all(o.shape == (3,) for o in out)


def test_nodes_without_a_torch_form_fall_back_to_the_walk_and_its_error():
    with pytest.raises(Uncompilable):
        compile_exprs([sp.floor(x)])
    with pytest.raises(Uncompilable):
        compile_exprs([sp.I * x])
    env = {"x": torch.rand(4, dtype=torch.float64)}
    assert compiled(sp.floor(x) + 1) is None
    with pytest.raises(ValueError, match="cannot evaluate floor"):
        evaluate(sp.floor(x) + 1, env, env["x"])
    with pytest.raises(KeyError, match="no value for symbol 'y'"):
        evaluate(x + y, env, env["x"])


def test_a_derivative_with_no_torch_form_is_linearised_by_autograd():
    """d/du heaviside(u) is a DiracDelta: the linearisation falls back to autograd (zero there)."""
    vocab = Vocabulary(["u"], ["x"])
    r = Residual("heaviside(u)*u_x + u^3", vocab, Unknowns(["u"]), "r")
    jet, data = _jet(16, 1, 1, 0), {"x": torch.rand(16, dtype=torch.float64)}
    coef, rhs = linearized_rows(r, jet, data, 1, 2)
    assert r._function("values") is not None and r._function("linearized") is None
    want = autograd_rows(r.evaluate_tree, jet, data, 1, 2)
    torch.testing.assert_close((coef, rhs), want)


def test_complex_unknowns_compile_with_their_real_and_imaginary_channels():
    vocab = Vocabulary(["psi"], ["x", "t"], time="t")
    r = Residual("I*psi_t + 0.5*psi_xx + psi*conj(psi)*psi", vocab, Unknowns({"psi": "complex"}), "r")
    jet, data = _jet(20, 2, 2, 1), {}
    _same(r.evaluate(jet, data), r.evaluate_tree(jet, data))
    coef, rhs = linearized_rows(r, jet, data, 2, 2)
    want_coef, want_rhs = autograd_rows(r.evaluate_tree, jet, data, 2, 2)
    torch.testing.assert_close(coef, want_coef, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(rhs, want_rhs, rtol=1e-10, atol=1e-10)
    assert math.isfinite(float(rhs.abs().max()))


def test_a_used_residual_pickles_and_compiles_again():
    import pickle

    vocab = Vocabulary(["u"], ["x"])
    r = Residual("u*u_x - 0.1*u_xx + sin(x)", vocab, Unknowns(["u"]), "r")
    jet, data = _jet(8, 1, 1, 0), {"x": torch.rand(8, dtype=torch.float64)}
    want = r.evaluate(jet, data)
    linearized_rows(r, jet, data, 1, 2)
    copy = pickle.loads(pickle.dumps(r))
    _same(copy.evaluate(jet, data), want)
    torch.testing.assert_close(linearized_rows(copy, jet, data, 1, 2), linearized_rows(r, jet, data, 1, 2))
