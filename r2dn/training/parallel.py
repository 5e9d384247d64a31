"""Data parallelism: the batch of records is split over devices, the parameters replicated.

Arrays are placed with `jax.sharding` on a 1-D mesh whose one axis, ``"batch"``, runs over
the devices; jit-compiled code then runs each device on its share of the records and sums the
gradients across devices by itself. Results equal those on one device up to the order of
floating-point sums.
"""

from __future__ import annotations

import equinox as eqx
import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

AXIS = "batch"


def batch_mesh(batch: int, devices: int | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` devices (default: the most that divide ``batch``)."""
    available = jax.devices()
    if devices is None:
        devices = max(n for n in range(1, len(available) + 1) if batch % n == 0)
    if devices > len(available):
        raise ValueError(
            f"{devices} devices requested but only {len(available)} are available "
            f"({available[0].platform})"
        )
    if batch % devices:
        raise ValueError(
            f"a batch of {batch} records cannot be split evenly over {devices} devices; "
            "choose a number of devices that divides the batch"
        )
    # Automatic axes: the compiler propagates the shardings through the training step.
    return jax.make_mesh((devices,), (AXIS,), (AxisType.Auto,), devices=available[:devices])


def shard_batch(tree: PyTree, mesh: Mesh) -> PyTree:
    """Place the arrays of ``tree`` on ``mesh``, split along their first (batch) axis."""
    return eqx.filter_shard(tree, NamedSharding(mesh, PartitionSpec(AXIS)))


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Place a copy of every array of ``tree`` (parameters, optimiser state) on each device."""
    return eqx.filter_shard(tree, NamedSharding(mesh, PartitionSpec()))
