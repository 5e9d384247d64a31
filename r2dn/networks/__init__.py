"""1-Lipschitz networks: Sandwich layers and LBDNs."""

from r2dn.networks.activations import ACTIVATIONS, get_activation
from r2dn.networks.equilibrium import EquilibriumLayer
from r2dn.networks.sandwich import LBDN, ExplicitLBDN, LipschitzLinear, SandwichLayer

__all__ = [
    "ACTIVATIONS",
    "get_activation",
    "EquilibriumLayer",
    "LBDN",
    "ExplicitLBDN",
    "LipschitzLinear",
    "SandwichLayer",
]
