"""Deploy a trained model without JAX: standalone C99 and NumPy code for its step.

>>> import jax, r2dn, tempfile
>>> model = r2dn.ContractingR2DN(2, 4, 3, 1, hidden=(8,), key=jax.random.key(0))
>>> tuple(p.name for p in to_c(model, tempfile.mkdtemp(), name="net"))
('net.h', 'net.c')

Both targets compute the same step from the same arrays (`r2dn.export.arrays`): the explicit
matrices that `r2dn.certificates.check_lmi` certifies, with φ multiplied out as
`r2dn.simulation.simulate` does it, and the saved normaliser of a `r2dn.io.TrainedModel`
applied so that the step takes and returns physical units.
"""

from r2dn.export.arrays import DTYPES, Certified, Deployed, Export, export_arrays
from r2dn.export.c import to_c
from r2dn.export.to_numpy import to_numpy

#: Target name → its writer ``(model, out_dir, *, name, dtype) -> paths``.
TARGETS = {"c": to_c, "numpy": to_numpy}

__all__ = [
    "DTYPES",
    "TARGETS",
    "Certified",
    "Deployed",
    "Export",
    "export_arrays",
    "to_c",
    "to_numpy",
]
