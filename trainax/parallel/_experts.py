"""Expert parallelism: independent per-expert solves spread over the devices of a mesh."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec

EXPERT_AXIS = "experts"


def expert_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A one-axis `Mesh` named `"experts"` over `devices` (default: all devices).

    A [`MixtureOfExperts`][trainax.constraint.MixtureOfExperts] with
    `parallel="shard"` puts its expert axis on this axis: each device solves
    the experts of its share. The axis type is `Auto`, as for
    [`data_mesh`][trainax.parallel.data_mesh].

    ```python
    mesh = tx.parallel.expert_mesh()
    mesh.shape   # {'experts': number of devices}
    ```
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("`devices` must hold at least one device, got none.")
    axis_type = getattr(jax.sharding, "AxisType", None)
    kwargs = {} if axis_type is None else {"axis_types": (axis_type.Auto,)}
    return Mesh(np.asarray(devices), (EXPERT_AXIS,), **kwargs)


def check_expert_mesh(mesh, num_experts: int) -> Mesh:
    """`mesh` if it has an `"experts"` axis whose size divides `num_experts`, else a clear error."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"`mesh` must be a jax.sharding.Mesh, got {type(mesh).__name__}.")
    if EXPERT_AXIS not in mesh.axis_names:
        raise ValueError(
            f"`mesh` needs an axis named {EXPERT_AXIS!r} (see tx.parallel.expert_mesh); its "
            f"axes are {mesh.axis_names}."
        )
    devices = int(mesh.shape[EXPERT_AXIS])
    if num_experts % devices:
        raise ValueError(
            f"`partition` must give a multiple of the {devices} devices of the expert mesh "
            f"(each device solves an equal share), got {num_experts} experts."
        )
    return mesh


def shard_experts(fn: Callable, mesh: Mesh) -> Callable:
    """`jax.vmap(fn)` over a leading expert axis, with that axis split over `mesh`'s devices.

    Every argument and output of the returned function has the expert axis
    first; each device maps `fn` over its share of the experts. The
    per-expert function runs inside `shard_map`, where the replication
    checks are off (`check_vma=False`): the experts are independent, so
    nothing is communicated until the results are gathered.

    ```python
    mesh = tx.parallel.expert_mesh()
    double = tx.parallel.shard_experts(lambda x: 2 * x, mesh)
    double(jnp.ones((len(jax.devices()), 3)))   # each device doubles its rows
    ```
    """
    spec = PartitionSpec(EXPERT_AXIS)
    return jax.shard_map(
        jax.vmap(fn), mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False
    )
