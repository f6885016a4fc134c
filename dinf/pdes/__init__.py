"""Problems: what a field is fitted to, and how it is judged."""
from dinf.pdes.base import Batch, Problem
from dinf.pdes.cloth import Cloth
from dinf.pdes.equation_problem import EquationProblem
from dinf.pdes.helmholtz import HelmholtzPML
from dinf.pdes.helmholtz_manufactured import HelmholtzManufactured
from dinf.pdes.plate import KirchhoffPlate
from dinf.pdes.poisson import PoissonImage

__all__ = ["Batch", "Problem", "Cloth", "EquationProblem", "PoissonImage", "HelmholtzPML", "HelmholtzManufactured", "KirchhoffPlate"]
