"""DiffAugment against its reference (mit-han-lab/data-efficient-gans,
DiffAugment_pytorch.py, written out in numpy with the random draws passed
in), and in the GAN's steps: gradients reach G through it."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augmentations, steps
from gan_jax.errors import ConfigError
from gan_jax.families import gan
from gan_jax.state import create_state


def _images(b=3, h=8, w=6, c=3, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (b, h, w, c)).astype(
      np.float32)


# --- The reference, in numpy (NHWC; the PyTorch code is NCHW). ----------------

def reference_translation(x, tx, ty):
  b, h, w, _ = x.shape
  gb, gx, gy = np.meshgrid(np.arange(b), np.arange(h), np.arange(w),
                           indexing="ij")
  gx = np.clip(gx + tx[:, None, None] + 1, 0, h + 1)
  gy = np.clip(gy + ty[:, None, None] + 1, 0, w + 1)
  x_pad = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
  return x_pad[gb, gx, gy]


def reference_cutout(x, ox, oy, ratio=0.5):
  b, h, w, _ = x.shape
  size = int(h * ratio + 0.5), int(w * ratio + 0.5)
  gb, gx, gy = np.meshgrid(np.arange(b), np.arange(size[0]),
                           np.arange(size[1]), indexing="ij")
  gx = np.clip(gx + ox[:, None, None] - size[0] // 2, 0, h - 1)
  gy = np.clip(gy + oy[:, None, None] - size[1] // 2, 0, w - 1)
  mask = np.ones((b, h, w), x.dtype)
  mask[gb, gx, gy] = 0
  return x * mask[..., None]


def test_translation_matches_the_reference_for_every_shift():
  x = _images()
  for tx in range(-2, 3):
    for ty in (-1, 0, 1):
      shifts = (np.array([tx, 0, -tx]), np.array([ty, ty, 0]))
      np.testing.assert_array_equal(
          augmentations.translate(jnp.asarray(x), *map(jnp.asarray, shifts)),
          reference_translation(x, *shifts))


def test_cutout_matches_the_reference_at_every_offset():
  x = _images(b=1, h=8, w=5)  # Even and odd square sides (4 and 3).
  for ox in range(0, 9):
    for oy in range(0, 5):
      mask = augmentations.cutout_mask(8, 5, (4, 3), jnp.array([ox]),
                                       jnp.array([oy]))
      np.testing.assert_array_equal(
          x * np.asarray(mask, np.float32),
          reference_cutout(x, np.array([ox]), np.array([oy])))


def test_colour_transforms_by_hand():
  x = _images(b=2)
  shift, factor = np.array([0.25, -0.5]), np.array([0.0, 2.0])
  np.testing.assert_allclose(augmentations.brightness(x, shift),
                             x + shift[:, None, None, None])
  grey = x.mean(-1, keepdims=True)
  saturated = augmentations.saturation(x, factor)
  np.testing.assert_allclose(saturated[0], np.broadcast_to(grey[0], x[0].shape),
                             rtol=1e-6)  # Factor 0: grey.
  np.testing.assert_allclose(saturated[1], 2 * x[1] - grey[1], rtol=1e-5)
  contrasted = augmentations.contrast(x, factor)
  np.testing.assert_allclose(contrasted[0], np.full_like(x[0], x[0].mean()),
                             rtol=1e-5)


def test_random_draws_stay_in_the_reference_ranges():
  x = jnp.zeros((4096, 8, 8, 1)) + 1.0  # Ones: what survives is the mask.
  translated = augmentations.random_translation(jax.random.key(0), x)
  # Shifts of up to int(8 * 0.125 + 0.5) = 1 pixel: at most one row and one
  # column zeroed, and every shift (including none) drawn.
  kept = np.asarray(translated[..., 0].sum((1, 2)))
  assert set(kept) == {64.0, 56.0, 49.0}
  cut = augmentations.random_cutout(jax.random.key(1), x)
  removed = 64 - np.asarray(cut[..., 0].sum((1, 2)))
  assert removed.max() == 16 and removed.min() == 4  # Corners clip it.
  colour = augmentations.random_color(jax.random.key(2), x)
  assert colour.shape == x.shape


def test_policy_names_and_your_own_augmentation():
  def mine(key, images):
    del key
    return -images
  assert augmentations.resolve(mine) is mine
  with pytest.raises(ValueError, match="no rotate"):
    augmentations.resolve("color,rotate")
  with pytest.raises(ConfigError, match="--diffaugment='flip'"):
    gan.GANConfig(diffaugment="flip").validate()


def test_a_diffaugment_step_trains_through_the_augmentation():
  config = gan.GANConfig(arch="dcgan_tiny", latent_dim=8,
                         diffaugment="color,translation,cutout")
  state = create_state(config, (28, 28, 1), jax.random.key(0))
  assert state.game.augment == "color,translation,cutout"
  batch = {"image": jnp.asarray(_images(b=4, h=28, w=28, c=1)),
           "label": jnp.zeros((4,), jnp.int32)}
  step = jax.jit(chex.assert_max_traces(steps.train_step, n=1))
  new_state, metrics = step(state, batch)
  new_state, metrics = step(new_state, batch)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                       state.g.params, new_state.g.params)
  assert max(jax.tree.leaves(moved)) > 0
  # The augmentation changes what D sees: other logits than without it.
  images = batch["image"]
  key = jax.random.key(3)
  with_augment = steps._discriminate(state.game, state.d.variables(), images,
                                     key)[0]
  plain_game = dataclasses.replace(state.game, augment="")
  plain = steps._discriminate(plain_game, state.d.variables(), images, key)[0]
  assert not np.allclose(with_augment, plain)
