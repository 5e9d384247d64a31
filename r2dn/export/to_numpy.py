"""Export to NumPy: ``NAME.py`` (the step, needing only NumPy) and its weights ``NAME.npz``.

The module is `r2dn.export.runtime` with the exported model bound at its end; the ``.npz``
holds the deployed arrays and, under ``certified/``, the explicit matrices and the metric of
the certificate, so that the deployed model can be re-checked from the files alone
(`r2dn.export.arrays.Certified`).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from r2dn._files import atomic_write
from r2dn.export import runtime
from r2dn.export.arrays import Export, check_name, export_arrays
from r2dn.io import TrainedModel
from r2dn.models import AbstractRecurrentModel

#: Prefix of the certificate's arrays in the ``.npz``.
CERTIFIED = "certified/"


def to_numpy(
    model: AbstractRecurrentModel | TrainedModel,
    out_dir: str | Path,
    *,
    name: str = "model",
    dtype: str | None = None,
) -> tuple[Path, Path]:
    """Write ``NAME.py`` and ``NAME.npz`` to ``out_dir``; returns their paths.

    ``dtype`` is "float32" or "float64" (default: the model's own). With a `TrainedModel` the
    step takes and returns physical units (its normaliser is applied).

    >>> import jax, r2dn, tempfile, importlib.util
    >>> model = r2dn.ContractingR2DN(2, 4, 3, 1, hidden=(8,), key=jax.random.key(0))
    >>> py, npz = to_numpy(model, tempfile.mkdtemp(), name="tiny")
    >>> spec = importlib.util.spec_from_file_location("tiny", py)
    >>> tiny = importlib.util.module_from_spec(spec); spec.loader.exec_module(tiny)
    >>> x, y = tiny.step(tiny.reset(), [0.5, -1.0])
    >>> x.shape, y.shape
    ((4,), (1,))
    """
    return write_numpy(export_arrays(model, dtype), out_dir, name)


def write_numpy(exported: Export, out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write the NumPy files of already exported arrays (`to_numpy` without the export)."""
    check_name(name)
    out_dir = Path(out_dir)
    py, npz = out_dir / f"{name}.py", out_dir / f"{name}.npz"
    with atomic_write(npz) as f:
        np.savez(f, **npz_arrays(exported))
    with atomic_write(py) as f:
        f.write(module_source(exported, name).encode())
    return py, npz


def npz_arrays(exported: Export) -> dict[str, np.ndarray]:
    """What `write_numpy` stores in NAME.npz: the deployed arrays and, under `CERTIFIED`, the
    certified ones."""
    arrays = exported.deployed.arrays() | {"activation": np.str_(exported.deployed.activation)}
    return arrays | {CERTIFIED + k: v for k, v in exported.certified.to_arrays().items()}


def module_source(exported: Export, name: str) -> str:
    """The text of ``NAME.py``: a header comment, `runtime`, and the model bound at the end."""
    header = "".join(f"# {key}: {value}\n" for key, value in exported.description.items())
    return (
        f"# {name}.py: a recurrent model exported by r2dn; needs only NumPy and {name}.npz.\n"
        + header
        + "\n"
        + inspect.getsource(runtime)
        + f"\n\n#: The model whose arrays are in {name}.npz beside this file.\n"
        + 'MODEL = load(__file__.rsplit(".", 1)[0] + ".npz")\n'
        + "reset, step, simulate = MODEL.reset, MODEL.step, MODEL.simulate\n"
    )
