"""Direct parameterizations: free parameters ↦ matrices with guaranteed properties.

The matrix building blocks of `r2dn.parameterizations._linalg` are public from here, for the
layers above (networks, models) that build on them.
"""

from r2dn.parameterizations._linalg import (
    cayley,
    congruence_metric,
    frobenius,
    polar_gram,
    positive_real,
    strict_contraction,
)
from r2dn.parameterizations.contraction import StrictContraction
from r2dn.parameterizations.positive import PositiveReal
from r2dn.parameterizations.supply import SupplyRate

__all__ = [
    "PositiveReal",
    "StrictContraction",
    "SupplyRate",
    "cayley",
    "congruence_metric",
    "frobenius",
    "polar_gram",
    "positive_real",
    "strict_contraction",
]
