"""Neural fields: coordinates in, values and derivatives (jets) out."""
from dinf.fields.base import Field, autograd_jet
from dinf.fields.dinf_cp import DInfCP
from dinf.fields.dinf_grid import DInfGrid
from dinf.fields.linear_grid import LinearGrid
from dinf.fields.mlp import MLP
from dinf.fields.siren import Siren
from dinf.jet import Jet

FIELDS = {"dinf": DInfGrid, "dinf_cp": DInfCP, "linear_grid": LinearGrid, "siren": Siren, "mlp": MLP}

__all__ = ["Field", "DInfGrid", "DInfCP", "LinearGrid", "Siren", "MLP", "Jet", "autograd_jet", "FIELDS"]
