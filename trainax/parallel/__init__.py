"""Data parallelism and expert sharding through `jax.sharding` meshes.

Pass `data_parallel=True` (every device) or `data_parallel=mesh` to a
[`GeneralTrainer`][trainax.trainer.GeneralTrainer]: parameters and optimizer
state are replicated, each minibatch is split over the mesh's `"data"` axis,
and XLA reduces the gradients. Several hosts join with
`jax.distributed.initialize` before the trainer is built; the code is the same.
"""

from ._experts import EXPERT_AXIS, check_expert_mesh, expert_mesh, shard_experts
from ._mesh import (
    DATA_AXIS,
    check_mesh,
    data_mesh,
    num_data_shards,
    replicate,
    shard_batch,
    to_host,
)

__all__ = [
    "DATA_AXIS",
    "EXPERT_AXIS",
    "check_expert_mesh",
    "check_mesh",
    "data_mesh",
    "expert_mesh",
    "num_data_shards",
    "replicate",
    "shard_batch",
    "shard_experts",
    "to_host",
]
