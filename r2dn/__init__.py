"""r2dn: recurrent networks that are contracting and robust by construction, in JAX."""

from r2dn.io import TrainedModel, load_model, save_model
from r2dn.models import (
    R2DN,
    REN,
    AbstractRecurrentModel,
    ContractingR2DN,
    ContractingREN,
    LipschitzR2DN,
    LipschitzREN,
    PassiveREN,
    RobustR2DN,
    RobustREN,
)
from r2dn.networks import LBDN, EquilibriumLayer, LipschitzLinear, SandwichLayer
from r2dn.parameterizations import StrictContraction, SupplyRate
from r2dn.registry import MODELS, ModelSpec
from r2dn.simulation import ExplicitSystem, simulate, step
from r2dn.training import TrainConfig, fit

__version__ = "0.1.0"

__all__ = [
    "AbstractRecurrentModel",
    "ContractingR2DN",
    "ContractingREN",
    "EquilibriumLayer",
    "ExplicitSystem",
    "LBDN",
    "LipschitzLinear",
    "LipschitzR2DN",
    "LipschitzREN",
    "MODELS",
    "ModelSpec",
    "PassiveREN",
    "R2DN",
    "REN",
    "RobustR2DN",
    "RobustREN",
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
