"""r2dn: recurrent networks that are contracting and robust by construction, in JAX.

The package is layered; a module imports only from layers below its own (import-linter checks
this in ``make test``; see docs/architecture.md):

    shared utilities (initializers, data, metrics, plots, _files)
    → parameterizations → networks → simulation → models → registry
    → io, certificates and examples → training and export → cli (and demo), and the
    experiments.
"""

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
