"""Equations as text: parsing (closed namespace, no eval), evaluation on jets, linear rows."""
from dinf.equations.parse import Entry, Vocabulary, parse
from dinf.equations.python_residual import PythonResidual, register_residual
from dinf.equations.residual import Residual, Unknowns

__all__ = ["Entry", "Vocabulary", "parse", "Residual", "Unknowns", "PythonResidual", "register_residual"]
