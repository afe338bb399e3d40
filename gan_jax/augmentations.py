"""Differentiable augmentation of everything D sees (DiffAugment, Zhao et al.
2020), for GANs on small datasets.

The same random transforms go on real and generated images, in D's step
and in G's (gradients flow through them into G), so D cannot overfit the few
real images without the augmentations leaking into the samples.

    augment = resolve("color,translation,cutout")
    images = augment(key, images)          # [B, H, W, C] -> [B, H, W, C]

Each transform matches mit-han-lab/data-efficient-gans' DiffAugment_pytorch.py
(tests/test_augmentations.py runs that code, written out in numpy): colour
is brightness +U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5);
translation moves by up to 1/8 of the side with zero fill; cutout zeroes a
square of half the side. Shifts and masks are 0/1 matrices applied by
einsum, so they shard over the batch like the networks do.
"""

from typing import Callable, Dict, Sequence, Tuple, Union

import jax
import jax.numpy as jnp

Array = jax.Array
Augmentation = Callable[[Array, Array], Array]  # (key, images) -> images


def brightness(images: Array, shift: Array) -> Array:
  """images + shift[b]; shift [B] in [-0.5, 0.5)."""
  return images + shift[:, None, None, None]


def saturation(images: Array, factor: Array) -> Array:
  """Each pixel's channels scaled by factor[b] around their mean."""
  mean = images.mean(axis=-1, keepdims=True)
  return (images - mean) * factor[:, None, None, None] + mean


def contrast(images: Array, factor: Array) -> Array:
  """Each image scaled by factor[b] around its mean."""
  mean = images.mean(axis=(1, 2, 3), keepdims=True)
  return (images - mean) * factor[:, None, None, None] + mean


def _shift_matrices(offsets: Array, size: int) -> Array:
  """[B, size, size] 0/1: row i picks source i + offset[b] (zero outside)."""
  source = jnp.arange(size)[None, :] + offsets[:, None]
  return jax.nn.one_hot(source, size)  # Out-of-range indices give zeros.


def translate(images: Array, rows: Array, cols: Array) -> Array:
  """out[b, i, j] = images[b, i + rows[b], j + cols[b]], 0 outside."""
  height, width = images.shape[1:3]
  along_h = _shift_matrices(rows, height).astype(images.dtype)
  along_w = _shift_matrices(cols, width).astype(images.dtype)
  exact = jax.lax.Precision.HIGHEST  # 0/1 weights: no rounding of pixels.
  moved = jnp.einsum("bih,bhwc->biwc", along_h, images, precision=exact)
  return jnp.einsum("bjw,biwc->bijc", along_w, moved, precision=exact)


def cutout_mask(height: int, width: int, size: Tuple[int, int],
                centre_rows: Array, centre_cols: Array) -> Array:
  """[B, H, W, 1] ones, with zeros on the `size` square at each centre."""

  def band(centres, length, extent):
    first = centres[:, None] - length // 2
    index = jnp.arange(extent)[None, :]
    return (index >= first) & (index < first + length)  # [B, extent]

  inside = (band(centre_rows, size[0], height)[:, :, None]
            & band(centre_cols, size[1], width)[:, None, :])
  return (~inside)[..., None]


def random_color(key: Array, images: Array) -> Array:
  batch = images.shape[0]
  k1, k2, k3 = jax.random.split(key, 3)
  uniform = lambda k: jax.random.uniform(k, (batch,), images.dtype)
  images = brightness(images, uniform(k1) - 0.5)
  images = saturation(images, uniform(k2) * 2)
  return contrast(images, uniform(k3) + 0.5)


def random_translation(key: Array, images: Array,
                       ratio: float = 0.125) -> Array:
  batch, height, width = images.shape[:3]
  max_h, max_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
  k1, k2 = jax.random.split(key)
  rows = jax.random.randint(k1, (batch,), -max_h, max_h + 1)
  cols = jax.random.randint(k2, (batch,), -max_w, max_w + 1)
  return translate(images, rows, cols)


def random_cutout(key: Array, images: Array, ratio: float = 0.5) -> Array:
  batch, height, width = images.shape[:3]
  size = (int(height * ratio + 0.5), int(width * ratio + 0.5))
  k1, k2 = jax.random.split(key)
  # The reference's range: an even square may also sit one past the edge.
  centre_rows = jax.random.randint(k1, (batch,), 0,
                                   height + (1 - size[0] % 2))
  centre_cols = jax.random.randint(k2, (batch,), 0,
                                   width + (1 - size[1] % 2))
  mask = cutout_mask(height, width, size, centre_rows, centre_cols)
  return images * mask.astype(images.dtype)


AUGMENTATIONS: Dict[str, Augmentation] = {
    "color": random_color,
    "translation": random_translation,
    "cutout": random_cutout,
}


def policy_names(policy: str) -> Sequence[str]:
  return [name for name in policy.split(",") if name]


def resolve(policy: Union[str, Augmentation]) -> Augmentation:
  """A policy "color,translation,cutout" (applied in that order, each with
  its own key), or your own (key, images) -> images as it is."""
  if callable(policy):
    return policy
  unknown = [n for n in policy_names(policy) if n not in AUGMENTATIONS]
  if unknown:
    raise ValueError(f"DiffAugment has no {', '.join(unknown)}: use a comma-"
                     f"separated subset of {', '.join(AUGMENTATIONS)}.")
  chosen = [AUGMENTATIONS[n] for n in policy_names(policy)]

  def augment(key: Array, images: Array) -> Array:
    for i, transform in enumerate(chosen):
      images = transform(jax.random.fold_in(key, i), images)
    return images

  return augment
