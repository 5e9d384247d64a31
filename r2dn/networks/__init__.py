"""Networks φ: 1-Lipschitz Sandwich layers and LBDNs (R2DN), equilibrium layers (REN)."""

from r2dn.networks.activations import ACTIVATIONS, get_activation
from r2dn.networks.base import AbstractNonlinearity, DenseChain
from r2dn.networks.equilibrium import EquilibriumLayer
from r2dn.networks.sandwich import (
    LBDN,
    AbstractGain,
    ExplicitLBDN,
    FixedGain,
    LipschitzLinear,
    SandwichLayer,
    TrainableGain,
)

__all__ = [
    "ACTIVATIONS",
    "AbstractGain",
    "AbstractNonlinearity",
    "DenseChain",
    "FixedGain",
    "TrainableGain",
    "get_activation",
    "EquilibriumLayer",
    "LBDN",
    "ExplicitLBDN",
    "LipschitzLinear",
    "SandwichLayer",
]
