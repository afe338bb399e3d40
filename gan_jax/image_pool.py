"""A history of generated images for the discriminator (Shrivastava et al.
2017), as CycleGAN uses it: D is trained on fakes drawn partly from earlier
generators, which damps oscillation.

    pool = ImagePool.create(50, (64, 64, 3))
    pool, shown = query(pool, key, fakes)       # fakes [B, H, W, C]

The pool is a pytree (a training state's leaf), so a checkpoint keeps it
and a resumed run draws exactly what an uninterrupted one does.
"""

from typing import Tuple

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec

Array = jax.Array


@struct.dataclass
class ImagePool:
  images: Array  # float32 [size, H, W, C]; rows >= count are unused zeros.
  count: Array  # int32 []: images stored so far, at most size.

  @classmethod
  def create(cls, size: int, image_shape: Tuple[int, ...]) -> "ImagePool":
    return cls(jnp.zeros((size,) + tuple(image_shape), jnp.float32),
               jnp.zeros((), jnp.int32))

  @property
  def size(self) -> int:
    return self.images.shape[0]


def query(pool: ImagePool, key: Array, images: Array
          ) -> Tuple[ImagePool, Array]:
  """The images D sees instead of `images` [B, H, W, C], one at a time as
  the authors' ImagePool.query: while the pool is not full, an image is
  stored and shown; once full, with probability 1/2 a uniformly chosen
  stored image is shown and the new one takes its place, else the new one
  is shown and not stored. A pool of size 0 shows the images as they are.
  Returns (the new pool, the images shown [B, H, W, C])."""
  if pool.size == 0:
    return pool, images

  def one(pool, inputs):
    key, image = inputs
    swap_key, index_key = jax.random.split(key)
    full = pool.count >= pool.size
    swap = full & jax.random.bernoulli(swap_key, 0.5)
    index = jnp.where(full, jax.random.randint(index_key, (), 0, pool.size),
                      pool.count)
    stored = pool.images[index]
    shown = jnp.where(swap, stored, image)
    keep = jnp.where(full & ~swap, stored, image)
    pool = ImagePool(pool.images.at[index].set(keep),
                     pool.count + (~full).astype(jnp.int32))
    return pool, shown

  images = images.astype(jnp.float32)
  sharding = jax.typeof(images).sharding
  if any(getattr(sharding, "spec", None) or ()):
    # The queries are sequential: every device runs them on all the rows.
    images = jax.sharding.reshard(images, NamedSharding(sharding.mesh,
                                                        PartitionSpec()))
  keys = jax.random.split(key, images.shape[0])
  return jax.lax.scan(one, pool, (keys, images))
