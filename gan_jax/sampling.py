"""Drawing images from any family that can generate, and image files.

    images = sampling.sample(family, state, 1000, seed=0)   # uint8 [N, H, W, C]
    sampling.save_png("grid.png", sampling.image_grid(images[:64]))

To open a saved run first, see gan_jax.runs.
"""

import os
from typing import Any, Optional, Sequence

import jax
import numpy as np
from PIL import Image

from gan_jax.errors import ConfigError
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


def num_classes(family: Family, state: Any) -> int:
  """Classes a conditional model draws on request; 0 if unconditional."""
  return family.get("classes")(state) if family.can("classes") else 0


def sample(family: Family, state: Any, num_samples: int, seed: int = 0,
           batch_size: int = 256,
           labels: Optional[np.ndarray] = None) -> np.ndarray:
  """`num_samples` images of `family.predict["generate"]`: uint8 [N, H, W, C].

  Batch i is drawn with the key fold_in(key(seed), i). A conditional model
  draws classes `labels` int [N] (default: every class in turn). The
  family's `sampler`, if any, prepares the state once for all batches.
  """
  generate = jax.jit(family.get("generate"), static_argnums=2)
  if family.can("sampler"):
    state = jax.jit(family.get("sampler"))(state)
  out = []
  for i in range(-(-num_samples // batch_size)):
    key = jax.random.fold_in(jax.random.key(seed), i)
    if labels is None:
      out.append(to_uint8(generate(state, key, batch_size)))
    else:  # The last batch is padded to the same (compiled) size.
      batch = np.resize(labels[i * batch_size:(i + 1) * batch_size],
                        batch_size).astype(np.int32)
      out.append(to_uint8(generate(state, key, batch_size, batch)))
  return np.concatenate(out)[:num_samples]


def translate(family: Family, state: Any, sources: np.ndarray,
              batch_size: int = 256, prediction: str = "translate"
              ) -> np.ndarray:
  """`family.predict[prediction]` (translate, or reconstruct: there and
  back) of sources float [N, H, W, Cs] in [-1, 1], in batches (the last
  padded): uint8 [N, H, W, C]."""
  translate = jax.jit(family.get(prediction))
  out = []
  for start in range(0, len(sources), batch_size):
    chunk = sources[start:start + batch_size]
    padded = np.concatenate(
        [chunk, np.repeat(chunk[:1], batch_size - len(chunk), axis=0)])
    out.append(to_uint8(translate(state, padded))[:len(chunk)])
  return np.concatenate(out)


def requested_labels(requests: Sequence[str], num_samples: int,
                     classes: int, class_names: Sequence[str] = ()
                     ) -> np.ndarray:
  """The classes of `num_samples` samples: int32 [N] from --label values
  (class numbers or, for an image folder's run, the folders' `class_names`;
  cycled; or "all" for every class in turn)."""
  if not classes:
    raise ConfigError("--label: this run's model takes no class (it is "
                      "unconditional, or draws its own --clusters); train "
                      "it with --conditional to draw chosen classes.")
  if list(requests) == ["all"] or not requests:
    return np.arange(num_samples, dtype=np.int32) % classes
  number = {name: i for i, name in enumerate(class_names)}
  try:
    chosen = [number[r] if r in number else int(r) for r in requests]
  except ValueError:
    names = f", a class name ({', '.join(class_names)})" if class_names else ""
    raise ConfigError(f"--label={','.join(requests)}: give class numbers "
                      f"0..{classes - 1}{names}, or all.") from None
  bad = [c for c in chosen if not 0 <= c < classes]
  if bad:
    raise ConfigError(f"--label={bad[0]} is not a class of this model "
                      f"(0..{classes - 1}).")
  return np.resize(np.array(chosen, np.int32), num_samples)
