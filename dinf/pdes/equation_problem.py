"""A problem stated entirely in config: unknowns, domain, residuals, conditions, reference.

```yaml
_target_: dinf.pdes.EquationProblem
unknowns: [u]
domain: {space: {x: [-1, 1]}, time: {t: [0, 1]}}
params: {nu: 0.0031830988618379067}
residuals: {burgers: "u_t + u*u_x - nu*u_xx"}
conditions:
  initial: {type: initial, value: "-sin(pi*x)"}
  walls: {type: dirichlet, on: box, value: 0}
reference: {file: burgers1d.dat}
```

The loss is ``Σ_residuals w · mean_interior(r²) + Σ_conditions w · mean_points(r²)``. When every
residual and condition is affine in the unknowns, ``linear_system`` gives that loss as
least-squares rows (``solver=least_squares``); otherwise it refuses, naming the nonlinear term.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from dinf.equations import Residual, Unknowns, Vocabulary, parse
from dinf.equations.evaluate import evaluate as evaluate_expr
from dinf.equations.linearize import linearized_rows
from dinf.equations.python_residual import PythonResidual
from dinf.errors import ConfigError, check, check_int
from dinf.geometry import Domain
from dinf.geometry.domain import Spacing, closed_contains
from dinf.jet import Jet
from dinf.linear_system import LinearSystem
from dinf.pdes.capabilities import LinearProblem, ResidualProblem
from dinf.pdes.base import Batch, FieldLike, Problem, field_dtype
from dinf.pdes.conditions import Condition, Data, build_conditions, pair_rows
from dinf.pdes.conditions.initial import OnInitialSlice
from dinf.pdes.conditions.on_piece import OnPiece
from dinf.pdes.hard import build_hard
from dinf.pdes.inferred import InferredParams, split_params
from dinf.files import SEARCH_DIRS
from dinf.pdes.reference_data import load_reference
from dinf.pdes.regularization import NEEDS_SIGMA, read_regularization
from dinf.pdes.tables import read_functions

# A locally refined grid's finer cells (``EquationProblem.sample``): per lattice over the domain's
# box, its cells per axis, the cells (sorted flat indices), interior points per cell (one count or
# one per cell), and the conditions' density factor.
Refined = Optional[Sequence[Tuple[Sequence[int], np.ndarray, Any, float]]]

log = logging.getLogger(__name__)



class EquationProblem(Problem, LinearProblem, ResidualProblem):
    """A PDE from config (see the module doc and docs/guide/equations.md)."""

    def __init__(
        self,
        unknowns: Sequence[str] | Mapping[str, str],
        domain: Mapping[str, Any],
        residuals: Mapping[str, Any],
        conditions: Mapping[str, Any] | None = None,
        params: Mapping[str, float] | None = None,
        functions: Mapping[str, Any] | None = None,
        reference: Mapping[str, Any] | None = None,
        evaluation: Mapping[str, Any] | None = None,
        batch_size: int = 8192,
        name: str = "equation",
        targets: Mapping[str, List[float]] | None = None,
        in_dim: int | None = None,
        out_dim: int | None = None,
        resolution: Any = None,
        published: Mapping[str, Any] | None = None,
        lift: Mapping[str, str] | None = None,
        regularization: Mapping[str, Any] | None = None,
        coefficients: Mapping[str, Any] | None = None,
    ):
        # The options as given: a time window of this problem is built from them (dinf.pdes.windows).
        self.options: Dict[str, Any] = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.unknowns = Unknowns(unknowns)
        self.domain = Domain.from_config(dict(domain), key="domain")
        self.coords: List[str] = list(self.domain.coords)
        self.time: Optional[str] = _time_name(domain)
        self.in_dim, self.out_dim = len(self.coords), self.unknowns.out_dim
        for key, given, fixed, what in (("in_dim", in_dim, self.in_dim, ", ".join(self.coords)),
                                        ("out_dim", out_dim, self.out_dim, ", ".join(self.unknowns.channel_names()))):
            check(given is None or given == fixed, key, f"is {fixed} for this problem ({what}), got {given}")
        # Unknowns on their own axes (a(x, y) in a problem over x, y, t): the run builds a field
        # over those axes for each (dinf.fields.split).
        self.own_axes = read_coefficients(coefficients, self.unknowns, self.coords)
        known, unknown = split_params(params or {})
        self.params = _params(known)
        inferred = InferredParams(unknown)  # a module: registered once nn.Module is set up, below
        # Residuals read the unknown parameters as more channels of the jet (dinf.pdes.inferred).
        kinds = {u: "complex" if u in self.unknowns.complex else "real" for u in self.unknowns.names}
        self.symbols = (Unknowns({**kinds, **{p: "real" for p in inferred.names}}, key="params") if len(inferred)
                        else self.unknowns)
        # Expressions stay text; a mapping is a table of numbers (dinf.pdes.tables).
        self.functions = read_functions(functions, self.coords, self.domain.bounds, SEARCH_DIRS)
        vocab = Vocabulary(self.symbols.names, self.coords, self.params, self.functions, time=self.time)
        self.residuals: Dict[str, Residual] = {}
        self.residual_weights: Dict[str, float] = {}
        check(bool(residuals), "residuals", "at least one residual is needed, e.g. {pde: 'u_xx + u_yy'}")
        for rname, spec in residuals.items():
            key = f"residuals.{rname}"
            spec = dict(spec) if isinstance(spec, Mapping) else {"expr": spec}
            extra = set(spec) - {"expr", "python", "order", "weight"}
            if extra:
                raise ConfigError(f"{key}.{sorted(extra)[0]}", "not an option of a residual (expr, python, order, weight)")
            if "python" in spec:
                check(not len(inferred), key, "a Python residual takes known parameters only")
                self.residuals[rname] = PythonResidual(str(spec["python"]), vocab, self.unknowns, key, self.params,
                                                       self.domain.bounds, spec.get("order", 2))
            else:
                self.residuals[rname] = Residual(spec.get("expr"), vocab, self.symbols, key, self.params)
            self.residual_weights[rname] = self.number(spec.get("weight", 1.0), f"{key}.weight")
        # Regularisation terms are residuals that share one weight (dinf.pdes.regularization).
        self.regularization = read_regularization(regularization)
        for rname, text in (self.regularization.terms.items() if self.regularization else ()):
            key = f"regularization.terms.{rname}"
            check(rname not in self.residuals, key, f"residuals.{rname} has this name already; rename the term")
            self.residuals[rname] = Residual(text, vocab, self.symbols, key, self.params)
            self.residual_weights[rname] = self.regularization.weight
        every = build_conditions(conditions or {}, self.unknowns, self.coords, self.time, self.params,
                                 self.functions, self.domain, self.number, key="conditions", symbols=self.symbols)
        self.conditions: List[Condition] = [c for c in every if not c.hard]  # the loss terms
        _check_used(inferred.names, list(self.residuals.values()) + [r for c in every for r in c.residuals])
        if self.regularization is not None and self.regularization.mode in NEEDS_SIGMA:
            check(any(isinstance(c, Data) and c.sigma > 0 for c in self.conditions), "regularization.weight",
                  f"{self.regularization.mode} needs the observations' noise level: a data condition with "
                  "noise: {sigma: …, seed: …} (or sigma: … for values from a file), or a fixed weight")
        self.jet_order = max([r.order for r in self.residuals.values()] + [c.order for c in self.conditions])
        # Exact conditions: the unknowns are u = g + B·N of the field's output N.
        self.hard = build_hard(every, dict(lift or {}), self.unknowns, self.coords, self.time, self.domain.bounds,
                               self.domain, self.params, self.functions, self.jet_order)
        self.batch_size = check_int("batch_size", batch_size, 2)
        self.name = str(name)
        self.bounds = self.domain.bounds.tolist()
        self.evaluation = dict(evaluation or {})
        self.reference = _Reference(reference or {}, self)
        modes = {"l2re": "min"}
        if len(self.unknowns.names) > 1:
            modes.update({f"l2re_{u}": "min" for u in self.unknowns.names})
        if self.reference.exact is not None and self.reference.data is not None:
            modes["l2re_file"] = "min"
        if self.reference.formula is not None:
            modes["l2re_formula"] = "min"
        modes.update({f"{name}_error": "min" for name in inferred.truth})
        modes["max_error"] = "min"
        # Without a reference a run reports the RMS of its residuals on the evaluation grid.
        self.metric_modes = modes if self.reference.given else {"residual_rms": "min"}
        # Published results to compare with (e.g. PINNacle's best L2RE): metric -> value, and a source.
        self.published: Dict[str, Any] = dict(published or {})
        for k, v in self.published.items():
            if k != "source" and (k not in modes or isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ConfigError(f"published.{k}", f"give a number for a metric of this problem ({', '.join(modes)})")
        super().__init__(targets, in_dim, out_dim)
        self.inferred = inferred
        x, values = self.reference.points_and_values()
        self.register_buffer("eval_x", x, persistent=False)
        self.register_buffer("eval_values", values, persistent=False)

    # --- config helpers -------------------------------------------------------------------
    def number(self, value: Any, key: str) -> float:
        """A number from config, or an expression of the parameters (``1/(k^2 + 2*a^2*pi^2)^2``)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        expr = parse(value, Vocabulary([], [], self.params), key)
        out = complex(expr.subs({s: self.params[s.name] for s in expr.free_symbols}).evalf())
        check(out.imag == 0 and math.isfinite(out.real), key, f"{value!r} is not a finite real number")
        return out.real

    # --- sampling ---------------------------------------------------------------------------
    def counts(self, n: int) -> List[int]:
        """Points per batch: [interior, condition 1, …]. The conditions whose points are their
        own (observations, point values) come on top of ``n``; the others' counts shrink together
        when they would take more than half of ``n``. (Counting 2 500 observations against ``n``
        had left a wall condition one point and the interior too few.)"""
        want = [c.points for c in self.conditions]
        fixed = [c.fixed_points for c in self.conditions]
        free = sum(w for w, f in zip(want, fixed) if not f)
        scale = min(1.0, (n // 2) / free) if free else 1.0
        got = [w if f else max(1, int(w * scale)) for w, f in zip(want, fixed)]
        return [max(n - sum(g for g, f in zip(got, fixed) if not f), 1)] + got

    def sample(self, n: int, generator: torch.Generator, spacing: Spacing = None, refined: Refined = None,
               even: Spacing = None) -> Batch:
        """``n`` points: the interior's and each condition's. ``spacing`` (a graded field's, see
        ``dinf.fields.warped``) spreads the interior and initial points evenly over its cells.
        ``refined`` (a locally refined grid's, ``RefinedField.refined_lattices``) adds points in
        its finer cells: per lattice over the domain's box, ``(cells per axis, flat indices of the
        cells, per_cell, factor)``; on a graded grid the lattices are in its even coordinates,
        ``spacing`` taking them to the problem's and ``even`` (per axis) back."""
        counts = self.counts(int(n))
        xs, normals = [self.domain.sample_interior(counts[0], generator, spacing)], [None]
        for c, m in zip(self.conditions, counts[1:]):
            x, nrm = c.sample(self.domain, m, generator, spacing)
            xs.append(x)
            normals.append(nrm)
        weights = self._sample_refined(xs, normals, counts, refined, generator, spacing, even) if refined else None
        n_all = sum(x.shape[0] for x in xs)
        normal = torch.zeros(n_all, self.in_dim, dtype=torch.float64)
        start = 0
        for x, nrm in zip(xs, normals):
            if nrm is not None:
                normal[start:start + x.shape[0]] = nrm
            start += x.shape[0]
        sizes = torch.tensor([x.shape[0] for x in xs])
        dev = self.device
        x = torch.cat(xs).to(device=dev, dtype=torch.float32)
        data = {"normal": normal.to(dev), "sizes": sizes, "x64": torch.cat(xs).to(dev)}
        if weights is not None:
            data["weights"] = weights.to(dev)
        return Batch(x=x, data=data)

    def _sample_refined(self, xs: List[Tensor], normals: List[Optional[Tensor]], counts: List[int],
                        refined: Refined, generator: torch.Generator, spacing: Spacing = None,
                        even: Spacing = None) -> Tensor:
        """Append to the blocks ``xs`` the points of a locally refined grid's finer cells: per
        lattice ``(shape, cells, per_cell, factor)`` over the domain's box, ``per_cell`` (one
        count, or one per cell) uniform interior points in each of ``cells`` (sorted flat
        indices; those inside the domain), and the boundary and initial points a condition would
        have at ``factor`` times its density per unit length (drawn ``factor^(d−1)`` times over
        and kept in the cells; observations, point values and periodic pairs keep their own
        points).

        Returns each point's weight in its block's mean: the block's base density over the
        density where the point lies, scaled to a mean of 1 per block. The loss is then an
        estimate of the integral of the squared residuals, as on the even points: the many
        points of a refined corner do not outweigh the rest of the domain (on the L-shape,
        unweighted, the L2 error rose from 7.4e-5 to 2.6e-4 over five more levels at the
        corner). On a graded grid (``spacing``, ``even``) cells and densities are its even
        coordinates', where the drawn points lie evenly per cell."""
        if bool(spacing) != bool(even):
            raise ValueError("a graded grid's refined points need both spacing and even (its inverse)")
        bounds = torch.as_tensor(self.bounds, dtype=torch.float64)
        lo, width = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
        base_density = counts[0] / self.domain.interior_measure()
        extended = [k for k, c in enumerate(self.conditions, start=1)
                    if isinstance(c, (OnPiece, OnInitialSlice)) and not c.fixed_points]
        ratios = []  # per lattice: {block: density over the block's base density (the interior's per cell)}
        for shape, cells, per_cell, factor in refined:
            shape, cells = tuple(int(n) for n in shape), np.asarray(cells, dtype=np.int64)
            per_cell = torch.as_tensor(np.broadcast_to(np.asarray(per_cell, dtype=np.int64), cells.shape).copy())
            ratio = {0: per_cell.double() * float(np.prod(shape)) / float(width.prod()) / base_density}
            if len(cells):
                index = torch.from_numpy(np.stack(np.unravel_index(cells, shape), 1)).double()
                u = (index.repeat_interleave(per_cell, 0)
                     + torch.rand(int(per_cell.sum()), self.in_dim, generator=generator, dtype=torch.float64))
                x = _moved(lo + u / torch.tensor(shape, dtype=torch.float64) * width, spacing)
                xs[0] = torch.cat([xs[0], x[self.domain.contains(x)].to(xs[0].dtype)])
            window = _window(cells, shape, lo, width, spacing) if len(cells) else None
            for k in extended:
                want = int(math.ceil(counts[k] * factor ** (self.in_dim - 1)))
                ratio[k] = want / max(counts[k], 1)
                if window is None:
                    continue
                # Only the points in the cells' window are drawn (rejection from the whole piece
                # left a finest cell 2^-15 wide about one point of the L-shape's boundary).
                x, nrm, share = self.conditions[k - 1].sample_within(self.domain, want, generator, *window, spacing)
                ratio[k] *= share
                keep = _in_cells(_moved(x, even), cells, shape, lo, width)
                xs[k] = torch.cat([xs[k], x[keep].to(xs[k].dtype)])
                if nrm is not None:
                    normals[k] = torch.cat([normals[k], nrm[keep].to(normals[k].dtype)])
            ratios.append((shape, cells, ratio))
        weights = []
        for k, x in enumerate(xs):
            density = torch.ones(x.shape[0], dtype=torch.float64)
            if k == 0 or k in extended:
                for shape, cells, ratio in ratios:
                    if len(cells):
                        slot = _cell_slot(_moved(x, even), cells, shape, lo, width)
                        inside = slot >= 0
                        density[inside] += ratio[k][slot[inside]] if k == 0 else ratio[k]
            w = 1.0 / density
            weights.append(w * (len(w) / w.sum()) if len(w) else w)
        return torch.cat(weights)

    # --- loss -----------------------------------------------------------------------------
    def _point_data(self, x: Tensor, normal: Optional[Tensor]) -> Dict[str, Tensor]:
        data = {name: x[:, i] for i, name in enumerate(self.coords)}
        if normal is not None:
            space = [i for i, c in enumerate(self.coords) if c != self.time]
            data.update({f"n_{self.coords[i]}": normal[:, i].to(x.dtype) for i in space})
        return data

    def _blocks(self, batch: Batch) -> List[slice]:
        sizes = batch.data["sizes"].tolist()
        starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]

    def loss(self, jet: Jet, batch: Batch) -> Dict[str, Tensor]:
        blocks = self._blocks(batch)
        x = batch.data["x64"].to(jet.value.dtype)  # the same points; float64 where the jet is
        normal = batch.data["normal"]
        if self.hard:
            jet = self.hard.jet(jet, x)
        jet = self.extended(jet)
        terms: Dict[str, Tensor] = {}
        inner = _slice_jet(jet, blocks[0])
        data = self._point_data(x[blocks[0]], None)
        weights = batch.data.get("weights")  # a refined grid's points (_sample_refined); else all 1
        w0 = 1.0 if weights is None else weights[blocks[0]].to(x.dtype)
        for name, r in self.residuals.items():
            terms[f"loss_{name}"] = self.residual_weights[name] * (w0 * r.evaluate(inner, data).pow(2).sum(1)).mean()
        for c, block in zip(self.conditions, blocks[1:]):
            sub, own = _slice_jet(jet, block), self._point_data(x[block], normal[block])
            if weights is None or bool((weights[block] == 1).all()):
                terms[f"loss_{c.name}"] = c.loss(sub, own)
            else:  # a condition with points in refined cells (one residual row per point)
                terms[f"loss_{c.name}"] = c.weight * (weights[block].to(x.dtype) * c.values(sub, own).pow(2).sum(1)).mean()
        terms = {"loss": sum(terms.values()), **terms}
        return terms

    # --- least squares ----------------------------------------------------------------------
    def extended(self, jet: Jet) -> Jet:
        """The field's jet (after exact conditions) with the unknown parameters' channels."""
        return self.inferred.extend(jet) if len(self.inferred) else jet

    def nonlinear_term(self) -> Optional[str]:
        """Where the first term that is not linear is (None: the problem is linear)."""
        if len(self.inferred):
            return f"params.{self.inferred.names[0]} is unknown (identified with the field)"
        if self.regularization is not None and self.regularization.auto:
            return f"regularization.weight is chosen by {self.regularization.mode} (over several solves)"
        for name, r in self.residuals.items():
            if not r.linear:
                return f"residuals.{name} has the nonlinear term {r.nonlinear_term}"
        for c in self.conditions:
            for r in c.residuals:
                if not r.linear:
                    return f"conditions.{c.name} has the nonlinear term {r.nonlinear_term}"
        return None

    def linear_system(self, batch: Batch) -> LinearSystem:
        """The loss as rows over the jet's entries; equals ``loss`` for any field (tested).
        Periodic pairs become difference rows through ``mix``."""
        self.check_linear()
        d, order = self.in_dim, self.jet_order
        return self._system(batch, lambda r, jet, data: r.rows(data, d, order, data[self.coords[0]]))

    def linearized_system(self, batch: Batch, jet: Jet) -> LinearSystem:
        """The rows of the loss linearised around the field's ``jet`` at ``batch.x`` (float64,
        before exact conditions): a Gauss–Newton step solves them (``dinf.solvers.gauss_newton``). For a
        linear problem they are ``linear_system``'s. Their squares at ``jet`` sum to ``loss``."""
        x = batch.data["x64"].double()
        if self.hard:
            jet = self.hard.jet(jet, x)
        d, order = self.in_dim, self.jet_order
        return self._system(batch, lambda r, j, data: linearized_rows(r, j, data, d, order), self.extended(jet))

    def _system(self, batch: Batch, rows: Any, jet: Optional[Jet] = None) -> LinearSystem:
        """Rows of every residual and condition, weighted as ``loss`` weighs them; ``rows(residual,
        jet block, point data)`` gives one residual's ``coef, rhs`` (``jet`` None: linear rows)."""
        x = batch.data["x64"].double()
        normal = batch.data["normal"].double()
        blocks = self._blocks(batch)
        coefs: List[Tensor] = []
        rhss: List[Tensor] = []
        data = self._point_data(x[blocks[0]], None)
        inner = _slice_jet(jet, blocks[0]) if jet is not None else None
        n0 = blocks[0].stop - blocks[0].start
        parts = []
        for name, r in self.residuals.items():
            coef, rhs = rows(r, inner, data)
            w = math.sqrt(self.residual_weights[name] / max(n0, 1))
            parts.append((coef * w, rhs * w))
        coef, rhs = _concat(parts)
        coefs.append(coef)
        rhss.append(rhs)
        pairs: List[Tuple[int, int]] = []  # (first point, count) of each block of point pairs
        for c, block in zip(self.conditions, blocks[1:]):
            data = self._point_data(x[block], normal[block])
            coef, rhs = c.rows(rows, _slice_jet(jet, block) if jet is not None else None, data)
            coefs.append(coef)
            rhss.append(rhs)
            pairs += c.pairs(block.start, block.stop - block.start)
        width = max(t.shape[1] for t in coefs)
        coef = torch.cat([_pad(t, width, 1) for t in coefs])
        rhs = torch.cat([_pad(t, width, 1) for t in rhss])
        if "weights" in batch.data:  # a refined grid's points: each weighs what its share of the measure is
            root = batch.data["weights"].double().sqrt()
            coef, rhs = coef * root[:, None, None, None], rhs * root[:, None]
        if self.hard:
            coef, rhs = self.hard.rows(coef, rhs, x)
        if not pairs:
            return LinearSystem(x, coef, rhs)
        return LinearSystem(x, coef, *pair_rows(rhs, pairs))

    def noise_scale(self, batch: Batch, jet: Jet) -> float:
        """``c`` with ``loss / (2c)`` the negative log-posterior, for a Laplace approximation: the
        data conditions' (``type: data``) weight · σ² / points, σ their noise's (else their mean
        squared misfit at ``jet``); without data, the loss over the number of points."""
        misfits = self._misfits(batch, jet)
        if misfits:
            return float(np.mean([c.weight * (c.sigma**2 if c.sigma else m) / max(len(c.at), 1) for c, m in misfits]))
        return float(self.loss(jet, batch)["loss"]) / max(int(batch.data["sizes"].sum()), 1)

    def misfit_ratio(self, batch: Batch, jet: Jet) -> float:
        """The observations' mean squared misfit at ``jet`` over their σ², pooled over the data
        conditions of known σ (what a regularisation weight is chosen by)."""
        pairs = [(c, m) for c, m in self._misfits(batch, jet) if c.sigma > 0]
        counts = [len(c.at) * len(c.residuals) for c, _ in pairs]
        return float(sum(n * m / c.sigma**2 for n, (c, m) in zip(counts, pairs)) / max(sum(counts), 1))

    def set_regularization_weight(self, weight: float) -> None:
        """The regularisation terms' shared weight α (``dinf.solvers.weight_search`` chooses it)."""
        self.regularization.weight = float(weight)
        for name in self.regularization.terms:
            self.residual_weights[name] = float(weight)

    def lcurve_point(self, batch: Batch, jet: Jet) -> Tuple[float, float]:
        """``(fit, penalty)`` at ``jet``: the loss without the regularisation terms, and those
        terms' loss over their weight α (the L-curve's coordinates)."""
        terms = self.loss(jet, batch)
        names = [f"loss_{n}" for n in self.regularization.terms]
        weighted = sum(float(terms[n]) for n in names)
        return float(terms["loss"]) - weighted, weighted / self.regularization.weight

    def _misfits(self, batch: Batch, jet: Jet) -> List[Tuple[Data, float]]:
        """Each data condition and its mean squared misfit over points and quantities, read from
        its loss term (weight · mean over points of the quantities' summed squares)."""
        data = [c for c in self.conditions if isinstance(c, Data)]
        if not data:
            return []
        terms = self.loss(jet, batch)
        return [(c, float(terms[f"loss_{c.name}"]) / (max(c.weight, 1e-300) * len(c.residuals))) for c in data]

    # --- evaluation ---------------------------------------------------------------------------
    def predict(self, field: FieldLike, x: Tensor, chunk: int = 65536) -> Tensor:
        """``field(x)`` at float64 points, in the field's own precision; CPU float64 ``[N, C]``."""
        out = super().predict(field, x.to(field_dtype(field, torch.float32)), chunk)
        return self.hard.values(out, x.double()) if self.hard else out

    def evaluate(self, field: FieldLike) -> Dict[str, float]:
        """The metrics against the reference (else the residuals' RMS), each unknown parameter's
        value, error and standard deviation (``dinf.pdes.inferred``), and each data condition's
        RMS misfit (over σ too where σ is known) with the regularisation weight."""
        if not self.reference.given:
            out = {"residual_rms": self.residual_rms(field, self.eval_x)}
        else:
            out = self.reference.metrics(self.predict(field, self.eval_x))
        return {**out, **self.inferred.metrics(), **self._data_metrics(field)}

    def residual_rms(self, field: FieldLike, x: Tensor, chunk: int = 16384) -> float:
        """RMS of the equations' residuals (weights and regularisation terms left out) at points
        ``x`` inside the domain."""
        total, count = 0.0, 0
        for c in x.split(chunk):
            jet, data = self._jet(field, c)
            for r in self.equations().values():
                values = r.evaluate(jet, data).detach()
                total += float(values.double().pow(2).sum())
                count += values.numel()
        return math.sqrt(total / max(count, 1))

    def residual_values(self, field: FieldLike, x: Tensor, chunk: int = 16384) -> Tensor:
        """Each point's sum of squared equation residuals (weights and regularisation terms left
        out) at points ``x`` inside the domain: float64 ``[N]`` on the CPU."""
        out = []
        for c in x.split(chunk):
            jet, data = self._jet(field, c)
            total = torch.zeros(c.shape[0], dtype=torch.float64)
            for r in self.equations().values():
                total += r.evaluate(jet, data).detach().double().pow(2).reshape(c.shape[0], -1).sum(1).cpu()
            out.append(total)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    def equations(self) -> Dict[str, Any]:
        """The residuals that are equations: all but the regularisation terms."""
        skip = set(self.regularization.terms) if self.regularization else set()
        return {name: r for name, r in self.residuals.items() if name not in skip}

    def _data_metrics(self, field: FieldLike) -> Dict[str, float]:
        out: Dict[str, float] = {}
        if self.regularization is not None:
            out["regularization_weight"] = self.regularization.weight
        for c in self.conditions:
            if isinstance(c, Data):
                jet, data = self._jet(field, c.at)
                rms = math.sqrt(float(c.values(jet, data).detach().double().pow(2).mean()))
                out[f"{c.name}_rms"] = rms
                if c.sigma > 0:
                    out[f"{c.name}_rms_per_sigma"] = rms / c.sigma
        return out

    def jet_at(self, field: FieldLike, x: Tensor, normal: Optional[Tensor] = None) -> Tuple[Jet, Dict[str, Tensor]]:
        """The jet the residuals and conditions read at float64 points ``x`` (exact conditions
        applied, the unknown parameters' channels added) and the points' data, with the outward
        normals ``normal`` where given (what a condition on a boundary piece reads): what
        ``dinf.pdes.indicator`` evaluates."""
        jet, data = self._jet(field, x)
        if normal is None:
            return jet, data
        return jet, self._point_data(x.to(device=jet.value.device, dtype=jet.value.dtype), normal.to(jet.value.device))

    def _jet(self, field: FieldLike, x: Tensor) -> Tuple[Jet, Dict[str, Tensor]]:
        """The jet the residuals read at ``x`` (exact conditions applied, parameters' channels
        added) in the field's device and dtype, and the points' data."""
        params = field.parameters() if hasattr(field, "parameters") else iter(())
        p0 = next(iter(params), None)
        device, dtype = (p0.device, p0.dtype) if p0 is not None else (torch.device("cpu"), torch.float32)
        with torch.enable_grad():
            jet = field.jet(x.to(device=device, dtype=dtype), self.jet_order)
        x = x.to(device=device, dtype=jet.value.dtype)
        if self.hard:
            jet = self.hard.jet(jet, x)
        return self.extended(jet), self._point_data(x, None)

    def pictures(self, field: FieldLike) -> Dict[str, Any]:
        from dinf.pdes.equation_pictures import pictures

        return pictures(self, field)


class _Reference:
    """The problem's reference: an exact solution (expressions, or a registered function), a
    data file, or both (the exact one is the truth then; the file is scored too). ``formula``:
    expressions a benchmark scores against that are not the solution (PINNacle's Wave2d-MS),
    scored beside the truth as ``l2re_formula``."""

    def __init__(self, spec: Mapping[str, Any], problem: EquationProblem):
        self.problem = problem
        self.exact: Optional[Dict[str, Any]] = None
        self.python: Optional[str] = None
        self.data = None
        self.formula: Optional[Dict[str, Any]] = None
        known = {"exact", "file", "columns", "formula"}
        extra = set(spec) - known
        if extra:
            raise ConfigError(f"reference.{sorted(extra)[0]}", f"not an option ({', '.join(sorted(known))})")
        exact = spec.get("exact")
        if exact is not None:
            if isinstance(exact, Mapping) and "python" in exact:
                from dinf.pdes.exact import REFERENCES

                name = exact["python"]
                if name not in REFERENCES:
                    raise ConfigError("reference.exact.python", f"no reference function {name!r} ({', '.join(REFERENCES)})")
                self.python = name
                self.exact = {}
            elif isinstance(exact, Mapping):
                self.exact = self._expressions(exact, "reference.exact")
            else:
                raise ConfigError("reference.exact", "expected {u: expression, …} or {python: name}")
        if spec.get("formula") is not None:
            if not isinstance(spec["formula"], Mapping) or self.exact is None or problem.unknowns.complex:
                raise ConfigError("reference.formula", "expected {u: expression, …} beside reference.exact, real unknowns")
            self.formula = self._expressions(spec["formula"], "reference.formula")
        if spec.get("file"):
            if problem.unknowns.complex:
                raise ConfigError("reference.file", "data files hold real outputs; a complex unknown needs "
                                  "reference.exact")

            self.data = load_reference(str(spec["file"]), problem.coords, problem.unknowns.names,
                                       columns=dict(spec["columns"]) if spec.get("columns") else None,
                                       key="reference.file", search_dirs=SEARCH_DIRS,
                                       time_name=problem.time or "t")

    def _expressions(self, spec: Mapping[str, Any], key: str) -> Dict[str, Any]:
        """One parsed expression per unknown (parameters substituted)."""
        problem = self.problem
        vocab = Vocabulary([], problem.coords, problem.params, problem.functions, time=problem.time)
        missing = [u for u in problem.unknowns.names if u not in spec]
        if missing:
            raise ConfigError(key, f"give an expression for every unknown; missing {', '.join(missing)}")
        out = {u: parse(spec[u], vocab, f"{key}.{u}") for u in problem.unknowns.names}
        return {u: e.subs({s: problem.params[s.name] for s in e.free_symbols if s.name in problem.params})
                for u, e in out.items()}

    @property
    def given(self) -> bool:
        """Whether there is anything to compare with (without, runs report the residual)."""
        return self.exact is not None or self.data is not None

    def points_and_values(self) -> Tuple[Tensor, Tensor]:
        """Evaluation points ``[M, dim]`` and reference values ``[M, C_ref]``: the file's nodes
        (every output and snapshot) when there is a file, else a grid over the domain."""
        p = self.problem
        if self.data is not None:
            pts = self.data.points(p.time or "t", order=p.coords)
            x = torch.as_tensor(np.asarray(pts), dtype=torch.float64)
            file_vals = torch.as_tensor(self.data.stacked(p.unknowns.names), dtype=torch.float64)
            if p.time is not None:  # a shorter time interval (a quick study) is scored on its own times
                a = p.coords.index(p.time)
                lo, hi = (float(v) for v in p.domain.bounds[a])
                keep = (x[:, a] >= lo - 1e-9) & (x[:, a] <= hi + 1e-9)
                if not bool(keep.all()):
                    log.info("reference: scored on the %d of %d file points with %s in [%g, %g]",
                             int(keep.sum()), x.shape[0], p.time, lo, hi)
                    x, file_vals = x[keep], file_vals[keep]
        else:
            x = evaluation_grid(p)
            file_vals = None
        exact_vals = self.exact_values(x) if self.exact is not None else None
        formula_vals = self._expression_values(self.formula, x) if self.formula is not None else None
        cols = [v for v in (exact_vals, file_vals, formula_vals) if v is not None]
        return x, torch.cat(cols, 1) if cols else x.new_zeros(x.shape[0], 0)

    def exact_values(self, x: Tensor) -> Tensor:
        """``[M, C]``: the exact solution per field channel (a complex unknown's real and
        imaginary parts)."""
        p = self.problem
        coords = {c: x[:, i] for i, c in enumerate(p.coords)}
        if self.python is not None:
            from dinf.pdes.exact import REFERENCES

            out = REFERENCES[self.python]({k: v.numpy() for k, v in coords.items()}, **p.params)
            cols = []
            for u in p.unknowns.names:
                v = np.asarray(out[u])
                cols += [v.real, v.imag] if u in p.unknowns.complex else [v.real]
            return torch.stack([torch.as_tensor(c, dtype=torch.float64) for c in cols], 1)
        return self._expression_values(self.exact, x)

    def _expression_values(self, exprs: Mapping[str, Any], x: Tensor) -> Tensor:
        """``[M, C]``: one parsed expression per unknown at ``x``, per field channel."""
        p = self.problem
        coords = {c: x[:, i] for i, c in enumerate(p.coords)}
        cols = []
        for u in p.unknowns.names:
            re, im = exprs[u].as_real_imag()
            cols += [re, im] if u in p.unknowns.complex else [re]
        return torch.stack([evaluate_expr(c, coords, x[:, 0]) for c in cols], 1)

    def metrics(self, pred: Tensor) -> Dict[str, float]:
        """PINNacle's L2RE: one number pooled over every unknown (and snapshot), and per unknown."""
        p = self.problem
        C = p.unknowns.out_dim
        values = p.eval_values.cpu().double()
        truth = values[:, :C]
        out = {"l2re": _l2re(pred, truth)}
        if len(p.unknowns.names) > 1:
            for u in p.unknowns.names:
                ch = list(p.unknowns.channels[u])
                out[f"l2re_{u}"] = _l2re(pred[:, ch], truth[:, ch])
        if "l2re_file" in p.metric_modes:
            out["l2re_file"] = _l2re(pred, values[:, C:2 * C])
        if "l2re_formula" in p.metric_modes:
            out["l2re_formula"] = _l2re(pred, values[:, -C:])
        out["max_error"] = float((pred - truth).abs().max())
        return out


def _l2re(pred: Tensor, truth: Tensor) -> float:
    return float(torch.linalg.norm(pred - truth) / torch.linalg.norm(truth))


GRID_AXES = 3  # up to this many coordinates the evaluation points are a grid; beyond, Sobol points
EVAL_POINTS = 1 << 15  # evaluation points in more than GRID_AXES coordinates (``evaluation.points``)


def evaluation_grid(p: EquationProblem) -> Tensor:
    """A grid over the domain's bounding box (``evaluation.resolution`` points per space axis,
    ``evaluation.times`` along time), without points outside the domain. In more than three
    coordinates a grid is too many points: ``evaluation.points`` scrambled Sobol points (seed 0)
    inside the domain instead."""
    if p.in_dim > GRID_AXES:
        return _sobol_inside(p, int(p.evaluation.get("points", EVAL_POINTS)))
    res = p.evaluation.get("resolution", 128)
    times = p.evaluation.get("times", 11)
    axes = []
    for i, c in enumerate(p.coords):
        lo, hi = float(p.domain.bounds[i, 0]), float(p.domain.bounds[i, 1])
        axes.append(torch.linspace(lo, hi, times if c == p.time else res, dtype=torch.float64))
    x = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    return x[closed_contains(p.domain, x)]


def _sobol_inside(p: EquationProblem, n: int) -> Tensor:
    """``n`` points of a scrambled Sobol sequence (seed 0) over the bounding box that lie inside
    the domain (the sequence is drawn on until ``n`` are inside)."""
    engine = torch.quasirandom.SobolEngine(p.in_dim, scramble=True, seed=0)
    lo, hi = p.domain.bounds[:, 0], p.domain.bounds[:, 1]
    kept, have = [], 0
    while have < n:
        x = lo + engine.draw(max(2 * (n - have), 1024), dtype=torch.float64) * (hi - lo)
        x = x[p.domain.contains(x)][: n - have]
        kept.append(x)
        have += x.shape[0]
    return torch.cat(kept)


def _check_used(names: List[str], residuals: List[Any]) -> None:
    """One line for an unknown parameter that no residual or condition reads."""
    used = {e.unknown for r in residuals for e in getattr(r, "entries", {}).values()}
    for name in names:
        check(name in used, f"params.{name}", "is unknown but no residual or condition uses it: use it, or "
              "give it a number")


def _time_name(domain: Mapping[str, Any]) -> Optional[str]:
    t = domain.get("time")
    return str(next(iter(t))) if t else None


def read_coefficients(spec: Mapping[str, Any] | None, unknowns: Unknowns, coords: List[str],
                      key: str = "coefficients") -> Dict[str, Dict[str, Any]]:
    """``{name: {axes: [x, y], model: {…}, init: 1.0}}`` checked: each a real unknown, on some of
    the problem's coordinates; ``model`` (optional) the overrides of the run's model for its field;
    ``init`` the constant it starts from (its field gives the deviation from it; default 0).
    Returns ``{name: {"axes": [indices], "model": {…}, "init": v}}``."""
    out: Dict[str, Dict[str, Any]] = {}
    for name, entry in (spec or {}).items():
        where = f"{key}.{name}"
        check(name in unknowns.names, where, f"{name!r} is not an unknown; the unknowns are {unknowns.names}")
        check(name not in unknowns.complex, where, "a coefficient on its own axes is a real unknown")
        entry = {"axes": entry} if isinstance(entry, (list, tuple, str)) else dict(entry or {})
        extra = set(entry) - {"axes", "model", "init"}
        check(not extra, f"{where}.{sorted(extra)[0] if extra else ''}",
              "not an option of a coefficient (axes, model, init)")
        axes = entry.get("axes")
        axes = [axes] if isinstance(axes, str) else list(axes or [])
        check(bool(axes), f"{where}.axes", f"the coordinates it depends on, e.g. {coords[:-1] or coords}")
        for a in axes:
            check(a in coords, f"{where}.axes", f"{a!r} is not a coordinate of this problem; its coordinates are "
                                                f"{coords}")
        check(len(set(axes)) == len(axes), f"{where}.axes", f"lists a coordinate twice: {axes}")
        check(len(axes) < len(coords), f"{where}.axes", f"lists every coordinate ({', '.join(coords)}): {name} is an "
                                                        "ordinary unknown; remove it from coefficients")
        model = entry.get("model") or {}
        check(isinstance(model, Mapping), f"{where}.model", f"overrides of the model, e.g. {{resolution: 16}}; got "
                                                             f"{model!r}")
        init = entry.get("init", 0.0)
        check(isinstance(init, (int, float)) and not isinstance(init, bool) and math.isfinite(init), f"{where}.init",
              f"the value it starts from, a number; got {init!r}")
        out[name] = {"axes": [coords.index(a) for a in axes], "model": dict(model), "init": float(init)}
    return out


def _params(params: Mapping[str, Any]) -> Dict[str, float]:
    out = {}
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"params.{k}", f"must be a number, got {v!r}")
        if not str(k).isidentifier():
            raise ConfigError(f"params.{k}", "a parameter's name is a Python-style identifier")
        out[str(k)] = float(v)
    return out


def _slice_jet(jet: Jet, s: slice) -> Jet:
    return jet.select(s)


def _concat(parts: List[Tuple[Tensor, Tensor]]) -> Tuple[Tensor, Tensor]:
    return torch.cat([p[0] for p in parts], 1), torch.cat([p[1] for p in parts], 1)


def _pad(t: Tensor, width: int, dim: int) -> Tensor:
    if t.shape[dim] == width:
        return t
    shape = list(t.shape)
    shape[dim] = width - t.shape[dim]
    return torch.cat([t, t.new_zeros(shape)], dim)


def _cell_slot(x: Tensor, cells: np.ndarray, shape: Tuple[int, ...], lo: Tensor, width: Tensor) -> Tensor:
    """``[N]`` long: for each point, the position in ``cells`` (sorted flat indices of the lattice
    of ``shape`` cells over the box ``lo + [0, width]``) of the cell it lies in, −1 where none."""
    if not len(cells) or not len(x):
        return torch.full((len(x),), -1, dtype=torch.long)
    sides = torch.tensor(shape, dtype=torch.float64)
    at = ((x.double() - lo) / width * sides).floor().long()
    at = torch.minimum(at.clamp_min(0), sides.long() - 1).numpy()
    flat = np.ravel_multi_index(tuple(at.T), shape)
    slot = np.minimum(np.searchsorted(cells, flat), len(cells) - 1)
    return torch.from_numpy(np.where(cells[slot] == flat, slot, -1))


def _window(cells: np.ndarray, shape: Tuple[int, ...], lo: Tensor, width: Tensor,
            spacing: Spacing) -> Tuple[Tensor, Tensor]:
    """The box ``(lo, hi)`` around the lattice's ``cells`` (flat indices), in the problem's
    coordinates (through ``spacing`` on a graded grid)."""
    index = np.stack(np.unravel_index(cells, shape), 1)
    n = torch.tensor(shape, dtype=torch.float64)
    corners = torch.stack([lo + torch.from_numpy(index.min(0)).double() / n * width,
                           lo + torch.from_numpy(index.max(0) + 1).double() / n * width])
    corners = _moved(corners, spacing)
    return corners[0], corners[1]


def _moved(x: Tensor, maps: Spacing) -> Tensor:
    """``x`` with the per-axis ``maps`` applied (none: ``x`` itself)."""
    if not maps:
        return x
    y = x.clone()
    for a, f in maps.items():
        y[:, a] = f(x[:, a].to(torch.float64)).to(x.dtype)
    return y


def _in_cells(x: Tensor, cells: np.ndarray, shape: Tuple[int, ...], lo: Tensor, width: Tensor) -> Tensor:
    """``[N]`` bool: whether each point lies in one of ``cells`` (``_cell_slot``)."""
    return _cell_slot(x, cells, shape, lo, width) >= 0
