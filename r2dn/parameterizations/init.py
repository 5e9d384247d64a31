"""The "long memory" initialisation (section 7): start with ``A ≈ ᾱI`` so the state remembers."""

from collections.abc import Callable

import numpy as np


def long_memory_target(nx: int, alpha_bar: float, rng: np.random.Generator) -> np.ndarray:
    """``H`` over (x, x⁺) for ``E = I/ᾱ²``, ``𝒫 = I``, ``F = diag(f)/ᾱ``, ``f = 1 − 0.05·U``.

    Then ``A = E⁻¹F = ᾱ·diag(f)``: slow, stable modes (``Y`` must be symmetric, e.g. ``I``).
    ``U`` is kept away from zero so that ``H`` stays safely positive definite.
    """
    f = 1.0 - 0.05 * rng.uniform(0.02, 1.0, size=nx)
    F = np.diag(f) / alpha_bar
    return np.block([[np.eye(nx) / alpha_bar**2, F], [F, np.eye(nx)]])


def gram_factor(
    target: np.ndarray, other_terms: Callable[[float], np.ndarray], eps: float
) -> tuple[np.ndarray, float]:
    """Find ``X`` with ``XᵀX = target − εI − other_terms(s)`` for the largest workable ``s = 2⁻ᵏ``.

    ``other_terms(s)`` is the part of ``H`` that the model's other parameters contribute when
    the ones free to shrink are scaled by ``s``. Returns ``X`` (upper Cholesky) and ``s``. If no
    scaling works (a fixed term is too large), ``X`` factors ``target − εI`` and ``s = 1``: the
    other parameters keep their values, so ``H`` exceeds the target but gradients still reach
    them (scaling them to zero would start training at a saddle).
    """
    base = target - eps * np.eye(len(target))
    for k in range(30):
        s = 2.0**-k
        try:
            return np.linalg.cholesky(base - other_terms(s)).T, s
        except np.linalg.LinAlgError:
            continue
    return np.linalg.cholesky(base).T, 1.0
