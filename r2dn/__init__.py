"""r2dn: recurrent networks that are contracting and robust by construction, in JAX."""

from r2dn.models import R2DN, AbstractRecurrentModel, ContractingR2DN, LipschitzR2DN, RobustR2DN
from r2dn.networks import LBDN, LipschitzLinear, SandwichLayer
from r2dn.parameterizations import StrictContraction, SupplyRate
from r2dn.simulation import ExplicitSystem, simulate, step

__version__ = "0.1.0"

__all__ = [
    "AbstractRecurrentModel",
    "ContractingR2DN",
    "ExplicitSystem",
    "LBDN",
    "LipschitzLinear",
    "LipschitzR2DN",
    "R2DN",
    "RobustR2DN",
    "SandwichLayer",
    "StrictContraction",
    "SupplyRate",
    "simulate",
    "step",
]
