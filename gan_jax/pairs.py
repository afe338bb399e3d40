"""Where a paired translation family's (source, target) pairs come from.

    pairing = pairs.get("denoise")            # or "aligned", or your Pairing
    sources, targets = pairing.split(key, images)      # a training batch
    sources, truth = pairing.held_out(images, seed=0)  # a whole split, fixed

* A corruption task of gan_jax.corruptions (denoise, inpaint, colorize,
  superres): the target is the real image, the source it corrupted.
* "aligned": each image holds its source and target side by side, source
  on the left, as pix2pix's own datasets do (facades, maps, edges2shoes);
  this is how users give their own paired folders. Images [N, H, 2W, C].

Images are float [N, H, W, C] in [-1, 1].
"""

import dataclasses
from typing import Any, Callable, Dict, Tuple

import jax
import numpy as np

from gan_jax import corruptions
from gan_jax.corruptions import Corruption
from gan_jax.errors import ConfigError

Array = jax.Array
Shape = Tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Pairing:
  """How pairs are made from real images.

  Attributes:
    split: (key, images [N, H, W, C]) -> (sources, targets), jit-able.
    shapes: the data's image shape -> (source shape, target shape).
    held_out: (images, seed) -> (sources, targets), host arrays, a pure
      function of the seed and each image's index.
  """
  split: Callable[[Array, Array], Tuple[Array, Array]]
  shapes: Callable[[Shape], Tuple[Shape, Shape]]
  held_out: Callable[[Any, int], Tuple[np.ndarray, np.ndarray]]


def corrupted(task) -> Pairing:
  """Pairs (task(image), image) for a corruption task name or Corruption."""
  corruption = corruptions.get(task)
  return Pairing(
      split=lambda key, images: (corruptions.corrupt(corruption, key, images),
                                 images),
      shapes=lambda shape: (corruptions.source_shape(corruption, shape),
                            tuple(shape)),
      held_out=lambda images, seed: (
          corruptions.corrupt_split(corruption, images, seed),
          np.asarray(images)))


def _halves(images):
  width = images.shape[2] // 2
  return images[:, :, :width], images[:, :, width:]


def _aligned_shapes(shape: Shape) -> Tuple[Shape, Shape]:
  height, width, channels = shape
  if width % 2:
    raise ConfigError(f"--task=aligned reads each image as source | target "
                      f"side by side, so its width must be even: the data's "
                      f"images are {height}x{width}.")
  half = (height, width // 2, channels)
  return half, half


ALIGNED = Pairing(split=lambda key, images: _halves(images),
                  shapes=_aligned_shapes,
                  held_out=lambda images, seed: tuple(
                      np.asarray(x) for x in _halves(images)))

PAIRINGS: Dict[str, Pairing] = {
    **{task: corrupted(task) for task in corruptions.TASKS},
    "aligned": ALIGNED,
}


def get(task) -> Pairing:
  """A name of PAIRINGS, your own Pairing, or your own Corruption."""
  if isinstance(task, Pairing):
    return task
  if isinstance(task, Corruption):
    return corrupted(task)
  if task not in PAIRINGS:
    raise ConfigError(f"--task={task!r} is not one of "
                      f"{', '.join(PAIRINGS)}.")
  return PAIRINGS[task]
