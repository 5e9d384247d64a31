"""The margin ``ε`` that makes every certificate strict, and the rule that sizes it.

In exact arithmetic any ``ε > 0`` makes the dissipation inequality strict. A model runs in
float32, though, and its explicit matrices carry relative round-off of about ``1e-7`` *of their
own scale*: an absolute margin ``ε`` is lost once the terms it must dominate are ``~ε/1e-7``
large (parameters of scale 10 to 100), and the strict contractions' margin
``4ε|(I + M)⁻¹v|²`` shrinks as ``M`` grows. The ``"relative"`` rule (the default) sizes every
margin by what it must dominate:

- the diagonal margin of ``H = polar + other + mI`` is ``m = ε(1 + tr(polar)/n + tr(other))``:
  at least ``ε``, and at least the fraction ``ε`` of the polar part's mean eigenvalue and of
  the coupling/supply part's largest, whatever the parameters' scale (`gram_margin`; a
  positive-real matrix's is ``ε(1 + ‖M₀‖_F/√n)``, which also sees its skew part);
- a strict contraction is scaled by ``1 − ε``, so ``‖N‖ ≤ 1 − ε`` however large its free
  matrices are (the unit-gain feedthrough block ``G`` of the R2DN likewise, so that
  ``L ⪰ εI``).

The ``"absolute"`` rule (``H₀ + εI``, contractions unscaled) is that of r2dn ≤ 0.2; model files
that name no rule were built with it and are rebuilt with it (`r2dn.registry.ModelSpec`).
"""

from typing import Literal

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

MarginRule = Literal["relative", "absolute"]
MARGIN_RULES: tuple[MarginRule, ...] = ("relative", "absolute")
#: The rule of new models; files written before rules were recorded used ``"absolute"``.
DEFAULT_MARGIN_RULE: MarginRule = "relative"


def check_margin_rule(rule: str) -> None:
    """Raise a ``ValueError`` unless ``rule`` is one of `MARGIN_RULES`."""
    if rule not in MARGIN_RULES:
        raise ValueError(f"margin_rule must be one of {MARGIN_RULES}; got {rule!r}.")


def margin_size(eps: float, rule: MarginRule, scale: Float[Array, ""]) -> Float[Array, ""]:
    """``ε(1 + scale)`` ("relative") or ``ε`` ("absolute"), for terms of size ``scale``."""
    return eps * (1 + scale) if rule == "relative" else eps


def gram_margin(
    polar: Float[Array, "n n"], other: Float[Array, "n n"], eps: float, rule: MarginRule
) -> Float[Array, ""]:
    """The margin ``m`` of ``H = polar + other + mI`` (`r2dn.parameterizations.core`).

    "relative": ``m = ε(1 + tr(polar)/n + tr(other))``, at least ``ε`` times the mean
    eigenvalue of the polar part and the largest of ``other`` (the coupling or supply terms,
    ``K L⁻¹ Kᵀ`` or ``Vᵀ𝓡⁻¹V − UᵀQU``, whose trace bounds it). Dominating the largest matters:
    the input/output directions' margin is ``𝓡(𝓡 + V(polar + mI)⁻¹Vᵀ)⁻¹𝓡``, about ``ε𝓡``
    only if ``m ≳ ε‖Vᵀ𝓡⁻¹V‖``. "absolute": ``m = ε``.

    >>> import jax.numpy as jnp
    >>> round(float(gram_margin(jnp.eye(2), 10.0 * jnp.eye(2), 1e-3, "relative")), 6)
    0.022
    """
    if rule == "absolute":
        return eps
    return margin_size(eps, rule, jnp.trace(polar) / polar.shape[0] + jnp.trace(other))


def target_margin(
    target: np.ndarray, other: np.ndarray | float, eps: float, rule: MarginRule
) -> float:
    """The ``m`` for which ``polar = target − mI − other`` gives ``H = target`` (`gram_margin`).

    For "relative", ``m(1 + ε) = ε(1 + tr(target)/n + (1 − 1/n)·tr(other))``.

    >>> import numpy as np
    >>> target, other = 2.0 * np.eye(3), 0.1 * np.eye(3)
    >>> m = target_margin(target, other, 1e-3, "relative")
    >>> polar = target - m * np.eye(3) - other
    >>> bool(np.isclose(gram_margin(polar, other, 1e-3, "relative"), m))
    True
    """
    if rule == "absolute":
        return eps
    n = len(target)
    trace_other = float(np.trace(np.broadcast_to(other, target.shape)))
    return eps * (1 + np.trace(target) / n + (1 - 1 / n) * trace_other) / (1 + eps)


def contraction_factor(eps: float, rule: MarginRule) -> float:
    """``1 − ε`` ("relative") or ``1`` ("absolute"): what a strict contraction is scaled by."""
    return 1.0 - eps if rule == "relative" else 1.0
