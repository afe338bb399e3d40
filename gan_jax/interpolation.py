"""Walks through latent space: rows of images between two latents.

    grid = interpolate(family, state, start, end, steps=8, mode="slerp")
    # [rows, steps, H, W, C] in [-1, 1]: row r goes from start[r] to end[r]

Works for any family that can `decode` latents (GAN, VAE). The endpoints are
random draws from the prior (`latents`), or, for a family that can `encode`
(the VAE), the encodings of real images. `interpolation_grid` does it for a
saved run and writes a PNG (python -m experiments.interpolate).

slerp is the default for Gaussian latents (White 2016, "Sampling Generative
Networks"): a straight line between two draws passes near the origin, where
the prior has almost no mass in high dimension (|z| concentrates near
sqrt(d)), so its middle images are atypical; the great circle keeps |z| in
the typical range.
"""

from typing import Any, Callable, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data, runs, sampling
from gan_jax.errors import ConfigError
from gan_jax.family import Family

Array = jax.Array


def lerp(start: Array, end: Array, t: Array) -> Array:
  """(1 - t) start + t end, for rows [R, D] and t [S] -> [R, S, D]."""
  t = t[None, :, None]
  return (1.0 - t) * start[:, None] + t * end[:, None]


def slerp(start: Array, end: Array, t: Array) -> Array:
  """Spherical interpolation (Shoemake 1985) of rows [R, D], t [S] ->
  [R, S, D]: sin((1-t) w)/sin(w) start + sin(t w)/sin(w) end, where w is
  the angle between them; nearly parallel rows fall back to lerp."""
  unit = lambda v: v / jnp.linalg.norm(v, axis=-1, keepdims=True)
  cos = jnp.clip(jnp.sum(unit(start) * unit(end), axis=-1), -1.0, 1.0)
  omega = jnp.arccos(cos)[:, None, None]
  sin = jnp.sin(omega)
  safe = jnp.where(sin > 1e-6, sin, 1.0)
  weight = t[None, :, None]
  spherical = (jnp.sin((1.0 - weight) * omega) / safe * start[:, None]
               + jnp.sin(weight * omega) / safe * end[:, None])
  return jnp.where(sin > 1e-6, spherical, lerp(start, end, t))


MODES: Dict[str, Callable[[Array, Array, Array], Array]] = {
    "slerp": slerp, "lerp": lerp}


def interpolate(family: Family, state: Any, start: Array, end: Array,
                steps: int, mode: str = "slerp",
                labels: Optional[Array] = None) -> Array:
  """Images along the path from each row of `start` to the same row of `end`
  ([R, latent_dim] each): [R, steps, H, W, C] in [-1, 1]. A conditional
  family draws every image of row r as class labels[r] (default: r mod the
  number of classes), so only z moves along a row."""
  if mode not in MODES:
    raise ConfigError(f"--mode={mode!r} is not one of {', '.join(MODES)}.")
  if steps < 2:
    raise ConfigError(f"--steps={steps} must be at least 2 (the endpoints).")
  path = MODES[mode](start, end, jnp.linspace(0.0, 1.0, steps))
  rows = path.shape[0]
  classes = sampling.num_classes(family, state)
  row_labels = ()
  if classes:
    if labels is None:
      labels = jnp.arange(rows, dtype=jnp.int32) % classes
    row_labels = (jnp.repeat(jnp.asarray(labels, jnp.int32), steps),)
  images = jax.jit(family.get("decode"))(
      state, path.reshape((rows * steps,) + path.shape[2:]), *row_labels)
  return images.reshape((rows, steps) + images.shape[1:])


def random_endpoints(family: Family, state: Any, key: Array, rows: int):
  """Two independent prior draws per row: ([R, D], [R, D])."""
  z = family.get("latents")(state, key, 2 * rows)
  return z[:rows], z[rows:]


def interpolation_grid(workdir: str, output: str, *, mode: str = "slerp",
                       steps: int = 8, rows: int = 8, between: str = "random",
                       seed: int = 0, which: Any = "latest",
                       split: str = "test",
                       data_dir: Optional[str] = None) -> np.ndarray:
  """Writes a PNG of `rows` interpolations of `steps` images for a run.

  between="random": endpoints drawn from the prior with `seed`.
  between="images": endpoints are the encodings of 2 * rows real images of
  `split` (chosen with `seed`), shown at both ends of their row.
  Returns the grid, uint8 [rows * (H + 2) + 2, columns * (W + 2) + 2, C].
  """
  if rows < 1:
    raise ConfigError(f"--rows={rows} must be at least 1.")
  run = runs.load(workdir, which)
  if between == "random":
    start, end = random_endpoints(run.family, run.state,
                                  jax.random.key(seed), rows)
    images = interpolate(run.family, run.state, start, end, steps, mode)
  elif between == "images":
    run.family.get("encode")
    real = data.load(run.run.dataset, split, data_dir or run.run.data_dir,
                     run.run.tfds_data_dir, image=run.run.image_options())
    if len(real) < 2 * rows:
      raise ConfigError(f"--rows={rows} needs {2 * rows} images; the {split} "
                        f"split has {len(real)}.")
    chosen = np.random.default_rng(seed).choice(len(real), 2 * rows,
                                                replace=False)
    pictures = data.to_model_range(real.images[chosen])
    # A conditional VAE encodes each image with its class, and each row
    # keeps the class of the image it starts from.
    labels = (real.labels[chosen]
              if sampling.num_classes(run.family, run.state) else None)
    encoded = {} if labels is None else {"labels": labels}
    z = jax.jit(run.family.get("encode"))(run.state, pictures, **encoded)
    images = interpolate(run.family, run.state, z[:rows], z[rows:], steps,
                         mode, None if labels is None else labels[:rows])
    images = jnp.concatenate([pictures[:rows, None], images,
                              pictures[rows:, None]], axis=1)
  else:
    raise ConfigError(f"--between={between!r} is not one of random, images.")
  grid = sampling.image_grid(sampling.to_uint8(images))
  sampling.save_png(output, grid)
  return grid
