"""Drawing samples from a generator, and turning them into image files."""

import os
from typing import Optional, Tuple, Union

import jax
from absl import logging
import numpy as np
from PIL import Image

from gan_jax import checkpoint
from gan_jax.config import GANConfig
from gan_jax.state import PlayerState, create_state
from gan_jax.steps import sample_latents


def generate(g_state: PlayerState, z: jax.Array) -> jax.Array:
  """Eval-mode G(z) (running BatchNorm statistics): [B, H, W, C] in [-1, 1].

  Uses G's EMA params when the run keeps them (--g_ema_decay).
  """
  return g_state.apply_fn(g_state.variables(g_state.ema_params), z,
                          train=False)


def to_uint8(images) -> np.ndarray:
  """float [-1, 1] -> uint8 [0, 255], on the host."""
  images = np.asarray(jax.device_get(images), np.float32)
  return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, columns: Optional[int] = None,
               padding: int = 2) -> np.ndarray:
  """uint8 [N, H, W, C] -> one uint8 [rows * (H + p) + p, ..., C] mosaic."""
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
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
      tmp, format="PNG")
  os.replace(tmp, path)


def load_generator(workdir: str, step: Union[int, str, None] = None
                   ) -> Tuple[PlayerState, GANConfig, int]:
  """The generator of checkpoint `step` of a run: a step, "latest" (or None)
  or "best" (the best by FD, kept when training with --eval_every)."""
  if step == "best":
    mngr, step = checkpoint.best_manager(workdir, read_only=True), None
  else:
    mngr = checkpoint.manager(workdir, max_to_keep=None, read_only=True)
    step = None if step == "latest" else step
  step, config, image_shape = checkpoint.load_config(mngr, step)
  state = checkpoint.restore(mngr, create_state(config, image_shape), step)
  return state.g, config, step


def sample(g_state: PlayerState, num_samples: int, seed: int = 0,
           batch_size: int = 256) -> np.ndarray:
  """num_samples images from G as uint8 [N, H, W, C]."""
  generate_batch = jax.jit(generate)
  latent_dim = g_state.game.latent_dim
  out = []
  for i in range(-(-num_samples // batch_size)):
    z = sample_latents(jax.random.fold_in(jax.random.key(seed), i),
                       batch_size, latent_dim)
    out.append(to_uint8(generate_batch(g_state, z)))
  return np.concatenate(out)[:num_samples]


def sample_to_files(workdir: str, num_samples: int, output: str,
                    grid: Optional[str] = None, step: Optional[int] = None,
                    seed: int = 0) -> np.ndarray:
  """Writes `num_samples` images of a run to `output` (.npz, key "images")."""
  g_state, _, step = load_generator(workdir, step)
  images = sample(g_state, num_samples, seed=seed)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  np.savez_compressed(output, images=images)
  if grid:
    save_png(grid, image_grid(images[:64]))
  logging.info("Wrote %d samples of step %d to %s.", num_samples, step, output)
  return images
