"""Seeded corruptions that turn real images into translation sources.

Image-to-image tasks built from real data (pix2pix's tasks, Isola et al.
2017): the target is a real image, the source is it corrupted. Each
corruption is a pure function of (key, image), so a pair is reproducible
from its seed; keys are per example, so an image's source does not depend
on which batch it sits in:

    sources = corrupt("denoise", key, images)            # keys split per row
    sources = corrupt_split("denoise", images, seed=0)   # fold_in(seed, index)

Images are float [N, H, W, C] in [-1, 1]; sources keep H and W (a U-Net
maps them back to the target's shape), their channels may differ (grey
sources have one).

| task      | source                                                        |
| --------- | ------------------------------------------------------------- |
| denoise   | Gaussian noise (sigma 0.5 in [-1, 1], i.e. 64/255), then salt  |
|           | and pepper on 10% of the pixels, clipped to [-1, 1]            |
| inpaint   | a square of half the side at a random position set to 0 (grey) |
| colorize  | the luminance (ITU-R BT.601 weights), one channel              |
| superres  | 2x2 box-averaged (28 -> 14 pixels), then repeated back to 28   |
|           | by nearest neighbour, so the network's input keeps the shape   |
"""

import dataclasses
from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from gan_jax.errors import ConfigError

Array = jax.Array


def _denoise(key: Array, image: Array, sigma: float = 0.5,
             salt_pepper: float = 0.1) -> Array:
  noise_key, where_key, value_key = jax.random.split(key, 3)
  noisy = image + sigma * jax.random.normal(noise_key, image.shape)
  # Salt and pepper hit whole pixels (every channel), as in a real sensor.
  hit = jax.random.bernoulli(where_key, salt_pepper, image.shape[:2] + (1,))
  salt = jnp.where(jax.random.bernoulli(value_key, 0.5, hit.shape), 1.0, -1.0)
  return jnp.clip(jnp.where(hit, salt, noisy), -1.0, 1.0)


def _inpaint(key: Array, image: Array) -> Array:
  height, width, _ = image.shape
  side_h, side_w = height // 2, width // 2
  top = jax.random.randint(key, (), 0, height - side_h + 1)
  left = jax.random.randint(jax.random.fold_in(key, 1), (), 0,
                            width - side_w + 1)
  rows = jnp.arange(height)[:, None, None]
  cols = jnp.arange(width)[None, :, None]
  inside = ((rows >= top) & (rows < top + side_h) & (cols >= left)
            & (cols < left + side_w))
  return jnp.where(inside, 0.0, image)


LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L").


def _colorize(key: Array, image: Array) -> Array:
  del key
  if image.shape[-1] != 3:
    raise ConfigError("--task=colorize needs colour images (3 channels), "
                      f"got {image.shape[-1]}; use a colour dataset, e.g. "
                      "an image folder of RGB images.")
  return jnp.tensordot(image, jnp.asarray(LUMA, image.dtype), axes=1)[..., None]


def _superres(key: Array, image: Array, factor: int = 2) -> Array:
  del key
  height, width, _ = image.shape
  if height % factor or width % factor:
    raise ConfigError(f"--task=superres halves the images: {height}x{width} "
                      "is not divisible by 2.")
  # Strided slices, not a reshape: they keep a batch-sharded vmap simple.
  small = sum(image[i::factor, j::factor] for i in range(factor)
              for j in range(factor)) / factor ** 2
  return jnp.repeat(jnp.repeat(small, factor, axis=0), factor, axis=1)


@dataclasses.dataclass(frozen=True)
class Corruption:
  """(key, image [H, W, C]) -> source [H, W, C']; `channels` maps C to C'."""
  apply: Callable[[Array, Array], Array]
  channels: Callable[[int], int] = lambda c: c


TASKS: Dict[str, Corruption] = {
    "denoise": Corruption(_denoise),
    "inpaint": Corruption(_inpaint),
    "colorize": Corruption(_colorize, channels=lambda c: 1),
    "superres": Corruption(_superres),
}


def get(task) -> Corruption:
  """A task name of TASKS, or your own Corruption."""
  if isinstance(task, Corruption):
    return task
  if task not in TASKS:
    raise ConfigError(f"--task={task!r} is not one of {', '.join(TASKS)}.")
  return TASKS[task]


def source_shape(task, image_shape: Tuple[int, int, int]
                 ) -> Tuple[int, int, int]:
  height, width, channels = image_shape
  return height, width, get(task).channels(channels)


def corrupt(task, key: Array, images: Array) -> Array:
  """Sources for images [N, H, W, C]: row i corrupted with split(key)[i].
  On an explicit-sharding mesh the keys are split over the devices as the
  images' rows are, so each device corrupts its own rows."""
  keys = jax.random.split(key, images.shape[0])
  sharding = jax.typeof(images).sharding
  spec = getattr(sharding, "spec", None)
  if spec and spec[0] is not None:
    keys = jax.sharding.reshard(keys, NamedSharding(sharding.mesh,
                                                    PartitionSpec(spec[0])))
  return jax.vmap(get(task).apply)(keys, images.astype(jnp.float32))


def corrupt_split(task, images: Array, seed: int = 0,
                  batch_size: int = 1000) -> np.ndarray:
  """Fixed sources for a whole split (held-out pairs): example i is
  corrupted with fold_in(key(seed), i), whatever the batch size."""
  apply = jax.jit(jax.vmap(get(task).apply))
  base = jax.random.key(seed)
  out = []
  for start in range(0, len(images), batch_size):
    index = jnp.arange(start, min(start + batch_size, len(images)))
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(index)
    out.append(np.asarray(apply(keys, jnp.asarray(
        images[start:start + batch_size], jnp.float32))))
  return np.concatenate(out)
