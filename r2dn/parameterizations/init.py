"""The "long memory" initialisation (section 7): start with ``A ≈ ᾱI`` so the state remembers."""

from collections.abc import Callable

import numpy as np

from r2dn.parameterizations.margin import MarginRule, target_margin

#: The long-memory target's smallest eigenvalue is at least this fraction of its mean diagonal,
#: so that the margin of `r2dn.parameterizations.margin` (``ε`` of it) fits under it.
TARGET_HEADROOM = 5e-3


def long_memory_target(nx: int, alpha_bar: float, rng: np.random.Generator) -> np.ndarray:
    """``H`` over (x, x⁺) for ``E = I/ᾱ²``, ``𝒫 = I``, ``F = diag(f)/ᾱ``, ``f = 1 − 0.05·U``.

    Then ``A = E⁻¹F = ᾱ·diag(f)``: slow, stable modes (``Y`` must be symmetric, e.g. ``I``).
    ``f`` is capped so that each 2×2 block ``[[1/ᾱ², f/ᾱ], [f/ᾱ, 1]]`` keeps the smallest
    eigenvalue `TARGET_HEADROOM` times its mean diagonal (``f ≤ 0.995`` at ``ᾱ = 1``): ``H``
    stays safely positive definite after the margin is taken out.

    >>> H = long_memory_target(3, 0.3, np.random.default_rng(0))
    >>> bool(np.linalg.eigvalsh(H).min() >= TARGET_HEADROOM * np.trace(H) / 6 * 0.999)
    True
    """
    a2, c = 1.0 / alpha_bar**2, 1.0 - TARGET_HEADROOM
    f_cap = np.sqrt((a2 + 1) ** 2 * c**2 - (a2 - 1) ** 2) / (2 * np.sqrt(a2))
    f = np.minimum(1.0 - 0.05 * rng.uniform(0.02, 1.0, size=nx), f_cap)
    F = np.diag(f) / alpha_bar
    return np.block([[np.eye(nx) / alpha_bar**2, F], [F, np.eye(nx)]])


def gram_factor(
    target: np.ndarray,
    other_terms: Callable[[float], np.ndarray],
    eps: float,
    margin_rule: MarginRule,
) -> tuple[np.ndarray, float]:
    """Find ``X`` with ``XᵀX = target − mI − other_terms(s)`` for the largest workable ``s = 2⁻ᵏ``.

    ``m`` is the margin that ``margin_rule`` adds to ``H`` when ``H`` is ``target``
    (`r2dn.parameterizations.margin.target_margin`), so that ``H`` starts at ``target``.

    ``other_terms(s)`` is the part of ``H`` that the model's other parameters contribute when
    the ones free to shrink are scaled by ``s``. Returns ``X`` (upper Cholesky) and ``s``. If no
    scaling works (a fixed term is too large), ``X`` factors ``target − mI`` and ``s = 1``: the
    other parameters keep their values, so ``H`` exceeds the target but gradients still reach
    them (scaling them to zero would start training at a saddle).
    """
    eye = np.eye(len(target))
    for k in range(30):
        s = 2.0**-k
        other = other_terms(s)
        try:
            base = target - target_margin(target, other, eps, margin_rule) * eye
            return np.linalg.cholesky(base - other).T, s
        except np.linalg.LinAlgError:
            continue
    base = target - target_margin(target, 0.0, eps, margin_rule) * eye
    try:
        return np.linalg.cholesky(base).T, 1.0
    except np.linalg.LinAlgError:
        raise ValueError(
            f"The long-memory initialisation leaves no room for the margin eps={eps} "
            f"({margin_rule} rule); use a smaller eps (e.g. the default 1e-3) or init='random'."
        ) from None
