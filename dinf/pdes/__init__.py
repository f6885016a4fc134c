"""Problems: what a field is fitted to, and how it is judged."""
from dinf.pdes.base import Batch, Problem
from dinf.pdes.poisson import PoissonImage

__all__ = ["Batch", "Problem", "PoissonImage"]
