"""Data parallelism through `jax.sharding`: a mesh with a `data` axis."""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def data_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A one-axis `Mesh` named `"data"` over `devices` (default: all devices).

    The axis type is `Auto` (XLA places the collectives): explicit-axis meshes,
    the default of `jax.make_mesh` on current JAX, refuse the sharding
    constraints a data-parallel update uses. With several processes
    (`jax.distributed.initialize`), `jax.devices()` spans every host.

    ```python
    mesh = tx.parallel.data_mesh()
    mesh.shape   # {'data': number of devices}
    ```
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("`devices` must hold at least one device, got none.")
    axis_type = getattr(jax.sharding, "AxisType", None)
    kwargs = {} if axis_type is None else {"axis_types": (axis_type.Auto,)}
    return Mesh(np.asarray(devices), (DATA_AXIS,), **kwargs)


def check_mesh(mesh) -> Mesh:
    """`mesh` as the trainer uses it: a `jax.sharding.Mesh` with a `"data"` axis.

    A mesh with explicit axes (the default of `jax.make_mesh` on current JAX)
    comes back as the same devices with `Auto` axes, where sharding
    constraints are allowed; anything else is a clear error.
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(
            "`data_parallel` must be True, False or a jax.sharding.Mesh, got "
            f"{type(mesh).__name__}."
        )
    if DATA_AXIS not in mesh.axis_names:
        raise ValueError(
            f"`data_parallel`: the mesh needs an axis named {DATA_AXIS!r}; its axes are "
            f"{mesh.axis_names}."
        )
    axis_type = getattr(jax.sharding, "AxisType", None)
    if axis_type is not None and any(t != axis_type.Auto for t in mesh.axis_types):
        mesh = Mesh(mesh.devices, mesh.axis_names, axis_types=(axis_type.Auto,) * mesh.devices.ndim)
    return mesh


def num_data_shards(mesh: Mesh) -> int:
    """The number of devices along the mesh's `"data"` axis."""
    return int(mesh.shape[DATA_AXIS])


def replicate(tree, mesh: Mesh):
    """Every array leaf of `tree`, replicated on every device of `mesh`.

    Built with `jax.make_array_from_callback`, so it also works when the mesh
    spans several processes (each holds the full value).
    """
    sharding = NamedSharding(mesh, PartitionSpec())

    def put(leaf):
        if not isinstance(leaf, (jax.Array, np.ndarray)):
            return leaf
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(put, tree)


def shard_batch(tree, mesh: Mesh):
    """Inside `jit`: split the leading (batch) axis of every leaf over `"data"`.

    Leaves whose leading axis the device count does not divide stay
    replicated (a smaller last minibatch of an epoch, for instance).
    """
    shards = num_data_shards(mesh)

    def constrain(leaf):
        if getattr(leaf, "ndim", 0) == 0 or leaf.shape[0] % shards != 0:
            return leaf
        spec = PartitionSpec(DATA_AXIS, *([None] * (leaf.ndim - 1)))
        return jax.lax.with_sharding_constraint(leaf, NamedSharding(mesh, spec))

    return jax.tree_util.tree_map(constrain, tree)


def to_host(array) -> np.ndarray:
    """A NumPy copy of a replicated array, also when it spans several processes."""
    if isinstance(array, jax.Array) and not array.is_fully_addressable:
        return np.asarray(array.addressable_shards[0].data)
    return np.asarray(array)
