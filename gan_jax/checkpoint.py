"""Checkpoints of the whole GANState, with orbax.

Each checkpoint is a folder `<workdir>/checkpoints/<step>/` holding two items:
`state` (every array of the GANState: both players' params, optimizer states
and BatchNorm statistics, the step and the base PRNG key; the data position is
the step) and `config` (the GANConfig and the image shape, as JSON, so that a
checkpoint alone rebuilds its networks). Orbax writes each checkpoint to
a temporary folder and renames it when complete, so an interrupted save never
replaces a good checkpoint. Saves run asynchronously, off the training loop.
"""

import os
from typing import Optional, Tuple

import orbax.checkpoint as ocp

from gan_jax.config import GANConfig
from gan_jax.state import GANState

ImageShape = Tuple[int, int, int]


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, max_to_keep: Optional[int] = 3,
            read_only: bool = False) -> ocp.CheckpointManager:
  """The run's CheckpointManager, keeping the last `max_to_keep` steps."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=not read_only, read_only=read_only)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                               item_names=("state", "config"))


def save(mngr: ocp.CheckpointManager, state: GANState, config: GANConfig,
         image_shape: ImageShape) -> None:
  """Starts an asynchronous save of `state` at its step (no-op if present)."""
  step = int(state.step)
  if step in mngr.all_steps():
    return
  run = {**config.to_dict(), "image_shape": list(image_shape)}
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(run)))


def load_config(mngr: ocp.CheckpointManager, step: Optional[int] = None
                ) -> Tuple[int, GANConfig, ImageShape]:
  """(step, config, image_shape) of checkpoint `step` (default: latest)."""
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(
        f"No checkpoint in {mngr.directory}: train first, or check --workdir.")
  restored = mngr.restore(step, args=ocp.args.Composite(
      config=ocp.args.JsonRestore()))
  run = restored["config"]
  return step, GANConfig.from_dict(run), tuple(run["image_shape"])


def restore(mngr: ocp.CheckpointManager, target: GANState,
            step: Optional[int] = None) -> GANState:
  """Restores checkpoint `step` (default: latest) into the structure `target`.

  `target` is a freshly created state of the same config; it supplies the
  static parts (networks, optimizers) and the array shapes.
  """
  step = mngr.latest_step() if step is None else step
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target)))
  return restored["state"]
