"""CycleGAN: the history pool, the two domains, the objective, TFDS's
cycle_gan datasets and the command line (the conformance test in
test_families.py covers init, steps, predictions and bit-identical resume)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_module
from gan_jax import data, image_pool
from gan_jax.errors import ConfigError
from gan_jax.families import cyclegan
from gan_jax.family import DataSpec
from gan_jax.image_pool import ImagePool


def _images(n, start=0.0):
  """n distinct constant images [n, 2, 2, 1]: image i is start + i."""
  return jnp.broadcast_to((start + jnp.arange(n, dtype=jnp.float32))[
      :, None, None, None], (n, 2, 2, 1))


def test_the_pool_fills_first_showing_each_image_as_it_is():
  pool = ImagePool.create(5, (2, 2, 1))
  pool, shown = image_pool.query(pool, jax.random.key(0), _images(3))
  np.testing.assert_array_equal(shown, _images(3))
  assert int(pool.count) == 3
  # Two more fill it; the sixth image meets a full pool.
  pool, shown = image_pool.query(pool, jax.random.key(1), _images(3, 3.0))
  assert int(pool.count) == 5
  np.testing.assert_array_equal(shown[:2], _images(2, 3.0))
  np.testing.assert_array_equal(pool.images[:, 0, 0, 0], np.arange(5))


def test_a_full_pool_swaps_with_probability_one_half():
  pool = ImagePool.create(4, (2, 2, 1))
  pool, _ = image_pool.query(pool, jax.random.key(0), _images(4))
  query = jax.jit(image_pool.query)
  swaps = 0
  for i in range(400):  # One image a query: a swap is then unambiguous.
    new = _images(1, 100.0 + i)
    before = np.asarray(pool.images[:, 0, 0, 0])
    pool, shown = query(pool, jax.random.key(i + 1), new)
    after = np.asarray(pool.images[:, 0, 0, 0])
    if float(shown[0, 0, 0, 0]) == 100.0 + i:  # Shown, and not stored.
      np.testing.assert_array_equal(after, before)
    else:  # An older image shown, and the new one stored in its place.
      swaps += 1
      slot = int(np.flatnonzero(after != before)[0])
      assert before[slot] == float(shown[0, 0, 0, 0])
      assert after[slot] == 100.0 + i
      assert (np.delete(after, slot) == np.delete(before, slot)).all()
  assert int(pool.count) == 4
  # 400 fair coins: 0.5 +- 0.075 is 3 standard deviations.
  assert abs(swaps / 400 - 0.5) < 0.075, swaps / 400


def test_a_pool_of_size_zero_shows_the_images():
  pool = ImagePool.create(0, (2, 2, 1))
  same, shown = image_pool.query(pool, jax.random.key(0), _images(3))
  assert same is pool
  np.testing.assert_array_equal(shown, _images(3))


def _colour_images(n=10, seed=0):
  return np.random.RandomState(seed).randint(0, 256, (n, 16, 16, 3),
                                             dtype=np.uint8)


def test_colorize_domains_are_disjoint_seeded_halves_with_a_greyed():
  images = _colour_images()
  labels = np.arange(10, dtype=np.int32)
  config = cyclegan.CycleGANConfig(task="colorize").validate()
  prepared, domain = cyclegan.prepare_data(config, images, labels)
  np.testing.assert_array_equal(domain, [0, 1] * 5)  # Interleaved.
  a, b = prepared[0::2], prepared[1::2]
  assert (a[..., :1] == a).all()  # Grey in all three channels.
  # B's images are originals, none of them also behind A's grey images.
  sources, truth, targets, target_labels = cyclegan.domains(
      "colorize", 0, images, labels)
  np.testing.assert_array_equal(targets, b)
  originals = {x.tobytes() for x in images}
  assert {x.tobytes() for x in b} <= originals
  assert not {x.tobytes() for x in truth} & {x.tobytes() for x in b}
  assert len({x.tobytes() for x in truth} | {x.tobytes() for x in b}) == 10
  np.testing.assert_array_equal(target_labels, labels[[
      i for x in b for i in range(10) if (images[i] == x).all()]])
  # Deterministic in split_seed, and another seed splits otherwise.
  again = cyclegan.prepare_data(config, images, labels)[0]
  np.testing.assert_array_equal(again, prepared)
  other = cyclegan.prepare_data(
      cyclegan.CycleGANConfig(task="colorize", split_seed=1), images,
      labels)[0]
  assert not np.array_equal(other, prepared)


def test_label_domains_and_their_errors():
  images = _colour_images(6)
  labels = np.int32([1, 0, 1, 0, 0, 1])
  config = cyclegan.CycleGANConfig(task="labels").validate()
  prepared, domain = cyclegan.prepare_data(config, images, labels)
  np.testing.assert_array_equal(prepared, images[[1, 0, 3, 2, 4, 5]])
  np.testing.assert_array_equal(domain, [0, 1, 0, 1, 0, 1])
  with pytest.raises(ConfigError, match="labels are \\[0, 1, 2\\]"):
    cyclegan.prepare_data(config, images, np.int32([0, 1, 2, 0, 1, 2]))
  with pytest.raises(ConfigError, match="needs colour images"):
    cyclegan.prepare_data(cyclegan.CycleGANConfig(task="colorize"),
                          images[..., :1], labels)


def test_batches_by_label_draw_each_domain_in_its_own_epochs():
  dataset = data.Dataset(np.arange(10, dtype=np.uint8)[:, None, None, None],
                         np.int32([0] * 3 + [1] * 7))
  stream = data.batches(dataset, 3, seed=0, batches_per_step=2,
                        by_label=True)
  seen_a = []
  for _ in range(4):
    batch = next(stream)
    assert batch["image"].shape == (2, 3, 1, 1, 1)
    assert (batch["label"] == np.int32([[0], [1]])).all()
    seen_a.append(batch["label"][0])
    values = data.to_model_range(dataset.images)
    assert set(batch["image"][1].ravel()) <= set(values[3:].ravel())
  # Resuming at step 2 gives what the stream gave there.
  resumed = next(data.batches(dataset, 3, seed=0, start_step=3,
                              batches_per_step=2, by_label=True))
  np.testing.assert_array_equal(resumed["image"], batch["image"])
  with pytest.raises(Exception, match="No example is labelled 1"):
    next(data.batches(data.Dataset(dataset.images, np.zeros(10, np.int32)),
                      3, seed=0, batches_per_step=2, by_label=True))


def test_the_objective_composes_and_the_cycle_falls():
  # The conformance test's config, shapes and jit: one compilation for both.
  config = cyclegan.CycleGANConfig(**cyclegan.PRESETS["tiny"].model)
  state = cyclegan.init(config.validate(), DataSpec((28, 28, 1), 10),
                        jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (2, 8, 28, 28, 1),
                              minval=-1.0, maxval=1.0)
  step = jax.jit(cyclegan.train_step, donate_argnums=0)
  cycles = []
  for _ in range(6):
    state, m = step(state, {"image": images,
                            "label": jnp.arange(8, dtype=jnp.int32) % 10})
    cycles.append(float(m["cycle"]))
    np.testing.assert_allclose(
        m["g_loss"], m["g_adv"] + 10.0 * m["cycle"] + 5.0 * m["identity"],
        rtol=1e-5)
  assert cycles[-1] < cycles[0]
  assert int(state.pools["a"].count) == 4  # Full: the pool holds 4.
  # Translating and the round trip keep the shape.
  assert cyclegan.reconstruct(state, images[0]).shape == images[0].shape


def test_tfds_cycle_gan_datasets_make_the_two_domains():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=6):
    dataset = data.load("cycle_gan/horse2zebra", "trainA+trainB")
  # Stored at any size, so centre-cropped and resized to DCGAN's 64.
  assert dataset.images.shape[1:] == (64, 64, 3)
  config = cyclegan.CycleGANConfig(task="labels", features=4).validate()
  labels = dataset.labels.copy()
  labels[:2] = [0, 1]  # Mock labels are random: make sure both are there.
  images, domains = cyclegan.prepare_data(config, dataset.images, labels)
  assert set(domains.tolist()) == {0, 1} and len(images) == len(dataset)


def test_the_command_line_names_bad_domains_in_one_line(tmp_path):
  # (Training itself goes through the loop in the conformance test.)
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for label in range(3):
    os.makedirs(tmp_path / "colour" / f"class{label}")
    Image.fromarray(_colour_images(1, seed=label)[0]).save(
        tmp_path / "colour" / f"class{label}" / "0.png")
  result = run_module("experiments.cyclegan", f"--workdir={tmp_path / 'run'}",
                      f"--data_dir={tmp_path / 'colour'}", "--dataset=colour",
                      "--preset=tiny", "--task=labels", "--num_steps=2")
  assert result.returncode != 0
  assert "error: --task=labels reads label 0 as domain A" in result.stderr
  assert "Traceback" not in result.stderr
