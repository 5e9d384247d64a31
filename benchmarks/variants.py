"""Other ways to simulate an R2DN, through r2dn's public entry points only.

Each wrapper keeps the model's direct parameters (so gradients include direct → explicit) unless
said otherwise, and changes only how the explicit system is simulated:

- `GenericScan`: φ hidden from `simulate` (not an `AbstractNonlinearity`), which then takes
  its generic scan instead of the fused recurrence.
- `Segmented`: the model simulated in checkpointed segments (memory for long horizons).
- `FixedExplicit`: the simulation from an explicit system computed once, without
  direct → explicit (its parameters are the explicit matrices).
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from r2dn import simulation
from r2dn.models import R2DN


class Opaque(eqx.Module):
    """Hides φ's type from `simulate`, which then takes its generic path."""

    phi: Callable

    def __call__(self, v):
        return self.phi(v)


class GenericScan(eqx.Module):
    model: R2DN

    @property
    def nx(self) -> int:
        return self.model.nx

    def simulate(self, x0, u):
        sys = self.model.explicit()
        return simulation.simulate(eqx.tree_at(lambda s: s.phi, sys, Opaque(sys.phi)), x0, u)


class FixedExplicit(eqx.Module):
    """An explicit system simulated as it is: no direct → explicit in its calls or gradient."""

    system: simulation.ExplicitSystem

    @property
    def nx(self) -> int:
        return self.system.A.shape[0]

    def simulate(self, x0, u):
        return simulation.simulate(self.system, x0, u)


class Segmented(eqx.Module):
    """Simulation in segments under ``jax.checkpoint`` (memory for long horizons).

    The backward pass stores only the state at segment boundaries and recomputes each
    segment's forward pass when it reaches it: memory ~ T/length + length steps, not T.
    """

    model: R2DN
    length: int = eqx.field(static=True)

    @property
    def nx(self) -> int:
        return self.model.nx

    def simulate(self, x0, u):
        sys = self.model.explicit()
        batch, T, nu = u.shape
        segments = jnp.swapaxes(u.reshape(batch, T // self.length, self.length, nu), 0, 1)

        @jax.checkpoint
        def segment(x, u_segment):
            return simulation.simulate(sys, x, u_segment)

        x_T, ys = jax.lax.scan(segment, x0, segments)
        return x_T, jnp.swapaxes(ys, 0, 1).reshape(batch, T, -1)
