"""Recurrent models built from direct parameters."""

from r2dn.models.base import AbstractRecurrentModel
from r2dn.models.r2dn import R2DN, ContractingR2DN, LipschitzR2DN, RobustR2DN

__all__ = ["AbstractRecurrentModel", "R2DN", "ContractingR2DN", "LipschitzR2DN", "RobustR2DN"]
