"""Single-file storage of trained models and training checkpoints.

A file is a magic line, a one-line JSON header, then the leaves of a pytree written by
`equinox.tree_serialise_leaves`. The header says everything needed to rebuild the pytree's
skeleton (for a model: its `ModelSpec`), so `load_model` needs no code from the user, and
carries a SHA-256 of itself and the arrays, so a flipped byte or an edited header (a γ changed
by hand beside stale metrics) is an error, not a silently different model. Files of format
version 1 (r2dn 0.1.0) have no checksum and are read as they are. Files are written to a
temporary name and renamed into place: an interrupted write never leaves a half-written file
behind, and never replaces a good one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PyTree

from r2dn._files import atomic_write
from r2dn.data import Normalizer
from r2dn.models import AbstractRecurrentModel
from r2dn.registry import ModelSpec

MAGIC = b"r2dn-file\n"
VERSION = 2  # 2: the header holds a SHA-256 of header and arrays; 1 (r2dn 0.1.0): none
_READABLE = (1, 2)
#: A header longer than this is not an r2dn header (guards against reading binary data).
_MAX_HEADER = 1 << 24


class FileFormatError(ValueError):
    """A file is not an r2dn file, is corrupt, or does not match its header."""


def write_tree(path: str | Path, content: str, header: Mapping[str, Any], tree: PyTree) -> Path:
    """Atomically write ``header`` (JSON-serialisable) and the array leaves of ``tree``.

    ``content`` names what the file holds ("model", "checkpoint"); readers check it.
    """
    path = Path(path)
    arrays = io.BytesIO()
    eqx.tree_serialise_leaves(arrays, tree)
    payload = arrays.getvalue()
    fields = {"content": content, "version": VERSION, **header}
    line = json.dumps({**fields, "sha256": _digest(fields, payload)})
    with atomic_write(path) as f:
        f.write(MAGIC)
        f.write(line.encode() + b"\n")
        f.write(payload)
    return path


def _digest(fields: Mapping[str, Any], payload: bytes) -> str:
    """SHA-256 of a header (without its checksum, keys sorted) and the array bytes after it."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    digest.update(payload)
    return digest.hexdigest()


def read_header(path: str | Path, content: str) -> dict[str, Any]:
    """The JSON header of the r2dn file at ``path``, which must hold ``content``."""
    with _open(path) as f:
        return _header(f, path, content)


def read_tree(path: str | Path, content: str, like: PyTree) -> PyTree:
    """The pytree stored at ``path``, given a skeleton ``like`` of the same structure.

    Every stored array must have the shape and dtype of its counterpart in ``like``, and (format
    version 2) the header's checksum must match the header and the arrays.
    """
    with _open(path) as f:
        header = _header(f, path, content)
        payload = f.read()
    arrays = io.BytesIO(payload)
    try:
        tree = eqx.tree_deserialise_leaves(arrays, like, filter_spec=_checked_leaf)
    except RuntimeError as error:  # equinox wraps the error of a leaf with its tree path
        cause = _root_cause(error)
        if isinstance(cause, FileFormatError):
            raise FileFormatError(f"{path}: {cause}") from error
        raise FileFormatError(f"{path}: array data is truncated or corrupt ({cause})") from error
    if arrays.read(1):
        raise FileFormatError(
            f"{path}: data left over after the last array; the header and the data come "
            "from different models"
        )
    stored = header.pop("sha256", None)
    if header["version"] >= 2 and stored != _digest(header, payload):
        raise FileFormatError(
            f"{path}: the checksum does not match the header and arrays: the file was modified "
            "or corrupted after r2dn wrote it; use an intact copy (or retrain)"
        )
    return tree


def is_array_like(leaf: Any) -> bool:
    """An array, or the `jax.ShapeDtypeStruct` that stands for one in a skeleton."""
    return eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)


def _checked_leaf(f: IO[bytes], leaf: Any) -> Any:
    """Read the array stored for ``leaf``, which must have its shape and dtype."""
    if not is_array_like(leaf):
        return eqx.default_deserialise_filter_spec(f, leaf)  # python scalars, static leaves
    value = np.load(f, allow_pickle=False)
    if value.shape != leaf.shape or value.dtype != leaf.dtype:
        raise FileFormatError(
            f"a stored array {value.dtype}{list(value.shape)} does not match the "
            f"{leaf.dtype}{list(leaf.shape)} that its header implies; the header and the data "
            "come from different models"
        )
    return jnp.asarray(value)


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _open(path: str | Path) -> IO[bytes]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no r2dn file at {path}")
    return path.open("rb")


def _header(f: IO[bytes], path: str | Path, content: str) -> dict[str, Any]:
    if f.read(len(MAGIC)) != MAGIC:
        raise FileFormatError(f"{path} is not an r2dn file (it does not start with {MAGIC!r})")
    try:
        header = json.loads(f.readline(_MAX_HEADER))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FileFormatError(f"{path}: the JSON header is corrupt ({error})") from error
    if not isinstance(header, dict) or header.get("content") != content:
        found = header.get("content") if isinstance(header, dict) else None
        raise FileFormatError(f"{path} holds an r2dn {found!r}, not a {content!r}")
    if header.get("version") not in _READABLE:
        raise FileFormatError(
            f"{path} has file format version {header.get('version')!r}; this version of r2dn "
            f"reads versions {', '.join(map(str, _READABLE))}"
        )
    return header


@eqx.filter_jit
def _free_run(model: AbstractRecurrentModel, u: Float[Array, "... T nu"]):
    return model.simulate(model.initial_state(*u.shape[:-2]), u)[1]


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A model with what is needed to use it on data in physical units.

    Attributes:
        model: the model, working in normalised units.
        spec: how to rebuild ``model`` (kind and constructor arguments).
        normalizer: maps physical inputs/outputs to and from the model's units.
        dt: sampling time in seconds of the data it was trained on.
        input_names: names of the input channels of that data.
        output_names: names of the output channels of that data.
        metrics: evaluation results (e.g. `r2dn.metrics.summary` on validation data).
    """

    model: AbstractRecurrentModel
    spec: ModelSpec
    normalizer: Normalizer
    dt: float
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def predict(self, u: ArrayLike) -> np.ndarray:
        """Free simulation from the zero state: physical inputs ``(..., T, nu)`` → outputs."""
        u = np.asarray(u)
        if not (np.issubdtype(u.dtype, np.floating) or np.issubdtype(u.dtype, np.integer)):
            raise TypeError(
                f"inputs must be real numbers in physical units; got dtype {u.dtype} (convert "
                "with .astype(float) first)"
            )
        if u.ndim < 2 or u.shape[-1] != self.spec.nu:
            raise ValueError(
                f"inputs must have shape (..., T, nu) with nu = {self.spec.nu} "
                f"({', '.join(self.input_names)}); got shape {u.shape}"
            )
        u_model = jnp.asarray(self.normalizer.normalize_u(u), dtype=self.model.dtype)
        return self.normalizer.denormalize_y(np.asarray(_free_run(self.model, u_model)))

    def header(self) -> dict[str, Any]:
        """Everything but the parameters, in JSON form; `from_header` inverts it."""
        return {
            "model": self.spec.to_dict(),
            "normalizer": self.normalizer.to_dict(),
            "dt": self.dt,
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> TrainedModel:
        """A `TrainedModel` whose ``model`` is a skeleton (`ModelSpec.skeleton`).

        Fill in the parameters with `read_tree`. Raises KeyError, TypeError or ValueError
        on an invalid header.
        """
        spec = ModelSpec.from_dict(header["model"])
        return cls(
            model=spec.skeleton(),
            spec=spec,
            normalizer=Normalizer.from_dict(header["normalizer"]),
            dt=float(header["dt"]),
            input_names=tuple(header["input_names"]),
            output_names=tuple(header["output_names"]),
            metrics=header.get("metrics", {}),
        )


@contextmanager
def invalid_header(path: str | Path, content: str) -> Iterator[None]:
    """Report the errors of parsing a header as a `FileFormatError` about ``path``."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as error:
        raise FileFormatError(f"{path}: invalid {content} header ({error!r})") from error


def save_model(path: str | Path, trained: TrainedModel) -> Path:
    """Write ``trained`` to a single file at ``path`` (atomically); `load_model` reads it."""
    return write_tree(path, "model", trained.header(), trained.model)


def load_model(path: str | Path) -> TrainedModel:
    """Read a model written by `save_model`; its kind is looked up in `r2dn.registry.MODELS`."""
    header = read_header(path, "model")
    with invalid_header(path, "model"):
        skeleton = TrainedModel.from_header(header)
    return dataclasses.replace(skeleton, model=read_tree(path, "model", skeleton.model))
