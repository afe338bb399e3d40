"""Data parallelism with `jax.sharding`: one mesh axis, "data", over devices.

Parameters and optimizer states are replicated; each global batch is split
over the devices along its batch axis, every process supplying its own rows
(`data.batches(process_index=..., process_count=...)`). The steps themselves
contain no device code: jit with these shardings partitions them, and the
latents follow the real batch's sharding (`steps.sample_latents`).
"""

from typing import Any, Dict

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax.errors import ConfigError

DATA_AXIS = "data"


def make_mesh() -> Mesh:
  """A 1-D mesh over every device of every process."""
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  if batch_size % mesh.size:
    raise ConfigError(
        f"--batch_size={batch_size} must divide by the {mesh.size} devices; "
        f"use a multiple of {mesh.size}.")


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, batches_per_step: int = 1) -> NamedSharding:
  """Shards the batch axis: [B, ...], or [k, B, ...] for k > 1 D steps."""
  leading = (None,) if batches_per_step > 1 else ()
  return NamedSharding(mesh, PartitionSpec(*leading, DATA_AXIS))


def put_batch(local_batch: Dict[str, np.ndarray],
              sharding: NamedSharding) -> Dict[str, Any]:
  """This process's rows of a batch -> global arrays sharded by `sharding`."""
  return {name: jax.make_array_from_process_local_data(sharding, value)
          for name, value in local_batch.items()}


def initialize_multihost(coordinator_address: str | None = None,
                         num_processes: int | None = None,
                         process_id: int | None = None) -> None:
  """Joins this process to a multi-process JAX job.

  On Cloud TPU pods and SLURM/Open MPI clusters JAX finds all three values by
  itself; elsewhere (several GPU hosts by hand) pass them. Must run before
  anything else touches the devices.
  """
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id)


def local_copy(tree: Any) -> Any:
  """A replicated pytree as single-device arrays on this process's first
  device, so that one process can compute with it by itself."""
  device = jax.local_devices()[0]

  def local(leaf):
    if isinstance(leaf, jax.Array):
      return jax.device_put(leaf.addressable_data(0), device)
    return leaf

  return jax.tree.map(local, tree)


def host_value(x: Any) -> np.ndarray:
  """A replicated array's value on this host (also on several processes)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    x = x.addressable_data(0)
  return np.asarray(x)
