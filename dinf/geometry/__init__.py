"""Domains of PDE problems: boxes with holes and additions, an optional time axis, samplers.

Independent of ``dinf.pdes`` and ``dinf.fields``: problems use it, never the other way round.
"""
from dinf.geometry.domain import Domain
from dinf.geometry.shapes import Ball, Box, Polygon, Shape, shape_from_config

__all__ = ["Domain", "Shape", "Ball", "Box", "Polygon", "shape_from_config"]
