import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import corruptions
from gan_jax.errors import ConfigError


def _images(n=6, shape=(28, 28, 3), seed=0):
  rng = np.random.default_rng(seed)
  return rng.uniform(-0.8, 0.8, (n,) + shape).astype(np.float32)


@pytest.mark.parametrize("task", sorted(corruptions.TASKS))
def test_every_task_is_a_pure_function_of_its_seed(task):
  images = _images()
  first = corruptions.corrupt_split(task, images, seed=3)
  assert first.shape == (6,) + corruptions.source_shape(task, (28, 28, 3))
  # The same seed gives the same pairs, whatever the batch size.
  np.testing.assert_array_equal(
      first, corruptions.corrupt_split(task, images, seed=3, batch_size=4))
  # An image's source does not depend on its neighbours in the split.
  np.testing.assert_array_equal(
      first[:2], corruptions.corrupt_split(task, images[:2], seed=3))
  again = corruptions.corrupt(task, jax.random.key(1), jnp.asarray(images))
  np.testing.assert_array_equal(
      again, corruptions.corrupt(task, jax.random.key(1), jnp.asarray(images)))
  assert float(jnp.min(again)) >= -1 and float(jnp.max(again)) <= 1
  if task in ("denoise", "inpaint"):  # Random: another seed, other pairs.
    assert not np.array_equal(
        first, corruptions.corrupt_split(task, images, seed=4))


def test_denoise_noise_level_and_salt_and_pepper_share():
  images = np.zeros((200, 28, 28, 1), np.float32)
  sources = corruptions.corrupt_split("denoise", images, seed=0)
  at_bounds = np.abs(sources) == 1.0
  # 10% salt and pepper, and of the rest P(|N(0, 0.5)| > 1) = 4.55% clipped.
  assert abs(at_bounds.mean() - (0.1 + 0.9 * 0.0455)) < 0.004
  # The others: N(0, 0.5) truncated at 2 sigma, whose deviation is 0.8796
  # sigma (1 - 4 phi(2) / (2 Phi(2) - 1) = 0.7737, its square root).
  assert abs(sources[~at_bounds].std() - 0.5 * 0.8796) < 0.005


def test_inpaint_blanks_one_square_of_half_the_side():
  images = np.full((20, 28, 28, 1), 0.5, np.float32)
  sources = corruptions.corrupt_split("inpaint", images, seed=0)
  for source in sources:
    rows, cols = np.nonzero(source[..., 0] == 0.0)
    assert len(rows) == 14 * 14
    assert rows.max() - rows.min() == cols.max() - cols.min() == 13
    assert np.all(source[source != 0.0] == 0.5)


def test_colorize_gives_the_luminance_by_hand():
  red = np.array([1.0, -1.0, -1.0], np.float32).reshape(1, 1, 1, 3)
  source = corruptions.corrupt_split("colorize", np.tile(red, (1, 2, 2, 1)))
  np.testing.assert_allclose(source, np.full((1, 2, 2, 1),
                                             0.299 - 0.587 - 0.114),
                             rtol=1e-6)
  with pytest.raises(ConfigError, match="needs colour images"):
    corruptions.corrupt_split("colorize", np.zeros((1, 4, 4, 1), np.float32))


def test_superres_box_averages_then_repeats():
  image = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1) / 16
  source = corruptions.corrupt_split("superres", image)[0, ..., 0]
  top_left = image[0, :2, :2, 0].mean()
  np.testing.assert_allclose(source[:2, :2], np.full((2, 2), top_left))
  np.testing.assert_allclose(source[2:, 2:], image[0, 2:, 2:, 0].mean())
  with pytest.raises(ConfigError, match="not divisible by 2"):
    corruptions.corrupt_split("superres", np.zeros((1, 5, 5, 1), np.float32))
  with pytest.raises(ConfigError, match="--task='blur' is not one of"):
    corruptions.get("blur")
