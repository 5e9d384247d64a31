"""r2dn: recurrent networks that are contracting and robust by construction, in JAX."""

from r2dn.io import TrainedModel, load_model, save_model
from r2dn.models import R2DN, AbstractRecurrentModel, ContractingR2DN, LipschitzR2DN, RobustR2DN
from r2dn.networks import LBDN, LipschitzLinear, SandwichLayer
from r2dn.parameterizations import StrictContraction, SupplyRate
from r2dn.registry import MODELS, ModelSpec
from r2dn.simulation import ExplicitSystem, simulate, step
from r2dn.training import TrainConfig, fit

__version__ = "0.1.0"

__all__ = [
    "AbstractRecurrentModel",
    "ContractingR2DN",
    "ExplicitSystem",
    "LBDN",
    "LipschitzLinear",
    "LipschitzR2DN",
    "MODELS",
    "ModelSpec",
    "R2DN",
    "RobustR2DN",
    "SandwichLayer",
    "StrictContraction",
    "SupplyRate",
    "TrainConfig",
    "TrainedModel",
    "fit",
    "load_model",
    "save_model",
    "simulate",
    "step",
]
