"""Drawing images from any family that can generate, and image files.

    images = sampling.sample(family, state, 1000, seed=0)   # uint8 [N, H, W, C]
    sampling.save_png("grid.png", sampling.image_grid(images[:64]))

To open a saved run first, see gan_jax.runs.
"""

import os
from typing import Any, Optional

import jax
import numpy as np
from PIL import Image

from gan_jax.family import Family


def to_uint8(images) -> np.ndarray:
  """float [-1, 1] -> uint8 [0, 255], on the host."""
  images = np.asarray(jax.device_get(images), np.float32)
  return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, columns: Optional[int] = None,
               padding: int = 2) -> np.ndarray:
  """uint8 [N, H, W, C] (tiled in a square, or `columns` wide) or
  [R, C, H, W, Ch] (tiled as given) -> one uint8 mosaic [rows * (H + p) + p,
  columns * (W + p) + p, Ch]."""
  if images.ndim == 5:
    rows, columns = images.shape[:2]
    images = images.reshape((-1,) + images.shape[2:])
  n, h, w, c = images.shape
  columns = columns or int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / columns))
  grid = np.zeros((rows * (h + padding) + padding,
                   columns * (w + padding) + padding, c), np.uint8)
  for i, image in enumerate(images):
    top = padding + (i // columns) * (h + padding)
    left = padding + (i % columns) * (w + padding)
    grid[top:top + h, left:left + w] = image
  return grid


def save_png(path: str, image: np.ndarray) -> None:
  """Writes uint8 [H, W, 1 or 3] as a PNG, atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp"
  try:
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        tmp, format="PNG")
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def sample(family: Family, state: Any, num_samples: int, seed: int = 0,
           batch_size: int = 256) -> np.ndarray:
  """`num_samples` images of `family.predict["generate"]`: uint8 [N, H, W, C].

  Batch i is drawn with the key fold_in(key(seed), i).
  """
  generate = jax.jit(family.get("generate"), static_argnums=2)
  out = []
  for i in range(-(-num_samples // batch_size)):
    key = jax.random.fold_in(jax.random.key(seed), i)
    out.append(to_uint8(generate(state, key, batch_size)))
  return np.concatenate(out)[:num_samples]
