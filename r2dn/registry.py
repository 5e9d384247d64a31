"""Models by name: what a saved file, a checkpoint or the command line needs to rebuild one.

A `ModelSpec` is a model kind (a key of `MODELS`) and the JSON-serialisable keyword arguments
of its constructor. Every kind takes ``nu, nx, nv, ny`` and ``key``; adding a model to the
workflow is one line in `MODELS`. A spec always names its ``feedthrough``, its
``margin_rule`` and, for an R2DN, its ``lti`` part (the defaults filled in), so a saved
file says which ``D22``, which margins and which LTI part its model has whatever the
defaults of the release that reads it.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import PRNGKeyArray

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
from r2dn.models.base import default_feedthrough
from r2dn.models.r2dn import DEFAULT_LTI
from r2dn.parameterizations.margin import DEFAULT_MARGIN_RULE

#: Model kind → constructor ``(**kwargs, key=...) -> model``.
MODELS: dict[str, Callable[..., AbstractRecurrentModel]] = {
    "contracting-r2dn": ContractingR2DN,
    "lipschitz-r2dn": LipschitzR2DN,
    "robust-r2dn": RobustR2DN,
    "contracting-ren": ContractingREN,
    "lipschitz-ren": LipschitzREN,
    "robust-ren": RobustREN,
    "passive-ren": PassiveREN,
}

#: Specs written by r2dn 0.1.0 name no feedthrough when it was the default, which for these kinds
#: was "zero"; every model now defaults to "free" (`r2dn.models.base.default_feedthrough`).
_FEEDTHROUGH_BEFORE_0_2 = {"lipschitz-r2dn": "zero", "robust-r2dn": "zero"}


def _builds_r2dn(kind: str) -> bool:
    """Whether the constructor of ``kind`` returns an `R2DN` (which takes an ``lti`` part)."""
    return typing.get_type_hints(MODELS[kind]).get("return") is R2DN


def _builds_certified(kind: str) -> bool:
    """Whether ``kind`` builds an R2DN or a REN (which take a ``margin_rule``), not a model a
    user registered (an unconstrained reference network, say)."""
    built = typing.get_type_hints(MODELS[kind]).get("return")
    return isinstance(built, type) and issubclass(built, R2DN | REN)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(
        f"model arguments must be JSON-serialisable (numbers, strings, lists); got {value!r} "
        f"of type {type(value).__name__}"
    )


@dataclass(frozen=True)
class ModelSpec:
    """A model kind and its constructor arguments, e.g. the header of a saved model.

    The arguments are stored in JSON form (tuples and arrays become lists), so a spec
    round-trips through `to_dict`/`from_dict` unchanged and two specs compare by value.

    >>> import jax
    >>> spec = ModelSpec("lipschitz-r2dn", dict(nu=1, nx=4, nv=3, ny=1, hidden=(8,), gamma=2.0))
    >>> spec.kwargs["hidden"]
    [8]
    >>> spec.build(jax.random.key(0)).supply.gamma
    2.0
    """

    kind: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in MODELS:
            raise ValueError(f"unknown model kind {self.kind!r}; choose one of {sorted(MODELS)}")
        kwargs = json.loads(json.dumps(dict(self.kwargs), default=_jsonable))
        missing = [name for name in ("nu", "nx", "nv", "ny") if name not in kwargs]
        if missing:
            raise ValueError(f"model arguments of {self.kind!r} lack the sizes {missing}")
        if "key" in kwargs:
            raise ValueError("model arguments must not contain 'key': build(key) passes it")
        if kwargs.get("feedthrough") is None:
            kwargs["feedthrough"] = default_feedthrough(bool(kwargs.get("identity_output")))
        if kwargs.get("lti") is None and _builds_r2dn(self.kind):
            kwargs["lti"] = DEFAULT_LTI
        if _builds_certified(self.kind):
            kwargs.setdefault("margin_rule", DEFAULT_MARGIN_RULE)
        object.__setattr__(self, "kwargs", kwargs)

    @property
    def nu(self) -> int:
        return self.kwargs["nu"]

    @property
    def ny(self) -> int:
        return self.kwargs["ny"]

    def build(self, key: PRNGKeyArray) -> AbstractRecurrentModel:
        """A new model of this kind, initialised from ``key``."""
        try:
            return MODELS[self.kind](**self.kwargs, key=key)
        except TypeError as error:
            raise TypeError(
                f"cannot build a {self.kind!r} model from {self.kwargs}: {error}"
            ) from error

    def skeleton(self) -> AbstractRecurrentModel:
        """The model's structure with `jax.ShapeDtypeStruct` leaves, computing nothing.

        What a saved file's arrays are read into. Every initialisation gives the same structure
        (the tests check it), so the skeleton is traced with the cheap random one: the
        long-memory initialisation factors matrices on the host and takes seconds.

        >>> spec = ModelSpec("contracting-r2dn", dict(nu=1, nx=4, nv=3, ny=1))
        >>> spec.skeleton().bx
        ShapeDtypeStruct(shape=(4,), dtype=float32)
        """
        kwargs = dict(self.kwargs) | ({"init": "random"} if "init" in self.kwargs else {})
        return eqx.filter_eval_shape(ModelSpec(self.kind, kwargs).build, jax.random.key(0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; `from_dict` inverts it."""
        return {"kind": self.kind, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Inverse of `to_dict`; also reads older specs: those of r2dn 0.1.0 name no feedthrough,
        and those written before margin rules were recorded were built with the "absolute" one
        (`r2dn.parameterizations.margin`)."""
        if not isinstance(data, Mapping) or set(data) != {"kind", "kwargs"}:
            raise ValueError(
                f"a model spec needs exactly the keys 'kind' and 'kwargs'; got {data!r}"
            )
        kwargs = data["kwargs"]
        legacy = _FEEDTHROUGH_BEFORE_0_2.get(data["kind"])
        if legacy and isinstance(kwargs, Mapping) and "feedthrough" not in kwargs:
            kwargs = {**kwargs, "feedthrough": legacy}
        old_margins = isinstance(kwargs, Mapping) and "margin_rule" not in kwargs
        if old_margins and data["kind"] in MODELS and _builds_certified(data["kind"]):
            kwargs = {**kwargs, "margin_rule": "absolute"}
        return cls(data["kind"], kwargs)
