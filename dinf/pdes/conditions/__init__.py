"""Boundary, initial and point conditions of a config-defined problem, one class per type.

Every condition is a residual on its own points, written as text like the equations:
``dirichlet`` is ``u − value`` on a boundary piece, ``neumann`` ``u_n − value`` (the outward
normal derivative), ``robin`` ``a·u + b·u_n − value``, ``initial`` ``u − value`` and
``initial_rate`` ``u_t − value`` on the initial slice, ``point`` ``u − value`` at given points,
``residual`` any expression on a piece, ``data`` ``u − d`` (or ``u_x − d``…) with observed values
``d`` per point, from a file or an expression plus seeded noise (inverse problems). ``periodic``
pairs the two faces of an axis and asks the values and first derivatives to agree. Each has a
weight (soft by default) and a number of points per batch.

A new type is one module: a ``Condition`` subclass with its ``type``, ``from_config`` and
``sample`` (and ``values``/``terms``/``pairs`` where its loss is not the mean of its residuals'
squares), listed in ``build.TYPES``.
"""
from dinf.pdes.conditions.base import Condition, Reading
from dinf.pdes.conditions.build import TYPES, build_conditions
from dinf.pdes.conditions.data import Data
from dinf.pdes.conditions.expression import ResidualCondition
from dinf.pdes.conditions.initial import Initial, InitialRate, OnInitialSlice
from dinf.pdes.conditions.on_piece import Dirichlet, Neumann, OnPiece, Robin
from dinf.pdes.conditions.periodic import Periodic, pair_rows
from dinf.pdes.conditions.point import Point

__all__ = ["Condition", "Reading", "TYPES", "build_conditions", "Dirichlet", "Neumann", "Robin", "OnPiece",
           "ResidualCondition", "Initial", "InitialRate", "OnInitialSlice", "Point", "Periodic", "pair_rows",
           "Data"]
