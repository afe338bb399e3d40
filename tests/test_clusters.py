"""Conditioning on k-means clusters instead of labels (--clusters)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_run_config
from gan_jax import clustering, runs, sampling
from gan_jax.errors import ConfigError
from gan_jax.families import gan
from gan_jax.family import DataSpec
from gan_jax.models import conditioning


def test_kmeans_finds_separated_blobs_and_their_means():
  rng = np.random.default_rng(0)
  centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)
  truth = np.repeat(np.arange(3), [30, 20, 10])
  points = centres[truth] + rng.normal(0, 0.5, (60, 2)).astype(np.float32)
  found, assignments = clustering.kmeans(points, 3, seed=1)
  # The same partition, under some numbering of the clusters.
  relabel = {int(a): int(t) for a, t in zip(assignments, truth)}
  assert len(relabel) == 3
  np.testing.assert_array_equal([relabel[int(a)] for a in assignments], truth)
  for cluster in range(3):
    np.testing.assert_allclose(found[cluster],
                               points[assignments == cluster].mean(0),
                               rtol=1e-5, atol=1e-5)
  again = clustering.kmeans(points, 3, seed=1)[1]
  np.testing.assert_array_equal(again, assignments)
  with pytest.raises(ValueError, match="between 1 and the number of points"):
    clustering.kmeans(points, 61)


def test_cluster_images_groups_images_by_their_pixels():
  dark = np.zeros((5, 4, 4, 1), np.uint8)
  light = np.full((7, 4, 4, 1), 250, np.uint8)
  ids = clustering.cluster_images(np.concatenate([dark, light]), 2)
  assert ids.dtype == np.int32
  assert len(set(ids[:5])) == 1 and len(set(ids[5:])) == 1
  assert ids[0] != ids[5]


def test_large_images_are_pooled_before_clustering():
  mnist = np.zeros((2, 28, 28, 1), np.uint8)
  assert clustering.image_points(mnist).shape == (2, 784)  # As they are.
  colour = np.arange(2 * 64 * 64 * 3).reshape(2, 64, 64, 3) % 256
  points = clustering.image_points(colour.astype(np.uint8))
  assert points.shape == (2, 16 * 16 * 3)
  # Each value is the mean of a 4x4 block of one channel.
  np.testing.assert_allclose(
      points[0, 0], colour[0, :4, :4, 0].mean() / 255.0, rtol=1e-6)


def test_classes_are_drawn_at_the_frequencies_by_the_normal_cdf():
  frequencies = (0.5, 0.3, 0.2)
  # Phi(-10) ~ 0, Phi(0) = 0.5 (the start of class 1), Phi(0.5) = 0.69,
  # Phi(1) = 0.84 (past 0.8: class 2), Phi(10) ~ 1.
  u = jnp.array([-10.0, 0.0, 0.5, 1.0, 10.0])
  np.testing.assert_array_equal(
      conditioning.classes_from_uniform_normal(u, frequencies),
      [0, 1, 1, 2, 2])
  many = jax.random.normal(jax.random.key(0), (100_000,))
  shares = np.bincount(
      conditioning.classes_from_uniform_normal(many, frequencies),
      minlength=3) / many.size
  np.testing.assert_allclose(shares, frequencies, atol=0.01)


def _cluster_state(counts=(3, 1, 4)):
  config = gan.GANConfig(arch="dcgan_tiny", latent_dim=8,
                         clusters=len(counts)).validate()
  spec = DataSpec((28, 28, 1), len(counts), counts)
  return config, gan.init(config, spec, jax.random.key(0))


def test_a_cluster_model_draws_its_own_clusters_and_samples_unconditionally():
  _, state = _cluster_state()
  game = state.game
  assert game.num_classes == 3
  np.testing.assert_allclose(game.class_frequencies, (3 / 8, 1 / 8, 4 / 8))
  assert gan.FAMILY.get("classes")(state) == 0  # Nothing to request.
  z = gan.latents(state, jax.random.key(1), 6)
  drawn = conditioning.classes_from_uniform_normal(z[:, 0],
                                                   game.class_frequencies)
  # Unasked, G draws the cluster from z[:, 0] and sees only z[:, 1:].
  inner = game.generator.generator
  expected = inner.apply({"params": state.g.params["generator"],
                          "batch_stats": state.g.batch_stats["generator"]},
                         z[:, 1:], train=False, labels=drawn)
  np.testing.assert_array_equal(gan.decode(state, z), expected)
  assert gan.preview(state, jax.random.key(2),
                     jnp.zeros((4, 28, 28, 1)))["samples"].shape == (
                         4, 28, 28, 1)
  # In training the steps pass the real batch's cluster ids.
  images = jax.random.uniform(jax.random.key(3), (8, 28, 28, 1), minval=-1)
  new, metrics = jax.jit(gan.FAMILY.train_step)(
      state, {"image": images, "label": jnp.arange(8, dtype=jnp.int32) % 3})
  assert int(new.step) == 1 and np.isfinite(float(metrics["g_loss"]))


def test_prepare_data_puts_cluster_ids_in_place_of_labels():
  images = np.concatenate([np.zeros((6, 28, 28, 1), np.uint8),
                           np.full((4, 28, 28, 1), 255, np.uint8)])
  labels = np.arange(10, dtype=np.int32)
  config = gan.GANConfig(clusters=2)
  _, ids = gan.prepare_data(config, images, labels)
  assert sorted(np.bincount(ids)) == [4, 6]
  assert DataSpec.of(images, ids).label_counts in ((6, 4), (4, 6))
  # Without --clusters the data is given back as loaded.
  same_images, same_labels = gan.prepare_data(gan.GANConfig(), images, labels)
  assert same_images is images and same_labels is labels
  with pytest.raises(ConfigError, match="more than the 10 training images"):
    gan.prepare_data(gan.GANConfig(clusters=11), images, labels)


@pytest.mark.parametrize("changes, message", [
    (dict(clusters=10, conditional=True), "drop --conditional"),
    (dict(clusters=1), "one cluster"),
    (dict(clusters=-2), "clusters"),
])
def test_bad_cluster_settings_get_one_line(changes, message):
  with pytest.raises(ConfigError, match=message):
    gan.GANConfig(**changes).validate()


def test_data_specs_record_label_counts_and_older_records_still_match():
  spec = DataSpec.of(np.zeros((5, 2, 2, 1), np.uint8),
                     np.array([0, 2, 2, 1, 2]))
  assert spec.label_counts == (1, 1, 3)
  assert DataSpec.from_dict(spec.to_dict()) == spec
  older = DataSpec.from_dict({"image_shape": [2, 2, 1], "num_classes": 3})
  assert older.same_data(spec) and spec.same_data(older)
  assert not spec.same_data(DataSpec((2, 2, 1), 3, (2, 1, 2)))
  assert DataSpec.of(np.zeros((2, 2, 2, 1), np.uint8),
                     np.array([-1, -1])).label_counts == ()


def test_a_cluster_run_trains_resumes_and_samples(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  experiment = tiny_run_config(idx_dir, clusters=3)
  experiment.train(workdir)
  run = runs.load(workdir)
  assert run.record.data_spec.num_classes == 3
  assert sum(run.record.data_spec.label_counts) == 96
  assert run.state.game.class_frequencies
  images = sampling.sample(run.family, run.state, 5)
  assert images.shape == (5, 28, 28, 1)
  # A longer run resumes from the checkpoint on the same clusters.
  experiment.replace(num_steps=9).train(workdir)
  assert runs.load(workdir).step == 9
