"""Recurrent models built from direct parameters."""

from r2dn.models.base import AbstractRecurrentModel
from r2dn.models.r2dn import R2DN, ContractingR2DN, LipschitzR2DN, RobustR2DN
from r2dn.models.ren import REN, ContractingREN, LipschitzREN, PassiveREN, RobustREN

__all__ = [
    "AbstractRecurrentModel",
    "R2DN",
    "ContractingR2DN",
    "LipschitzR2DN",
    "RobustR2DN",
    "REN",
    "ContractingREN",
    "LipschitzREN",
    "PassiveREN",
    "RobustREN",
]
