"""Direct parameterizations: free parameters ↦ matrices with guaranteed properties."""

from r2dn.parameterizations.contraction import StrictContraction
from r2dn.parameterizations.supply import SupplyRate

__all__ = ["StrictContraction", "SupplyRate"]
