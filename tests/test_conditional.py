"""Class-conditional generation: "draw a 4", end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_module, tiny_run_config
from gan_jax import evaluate, runs, sampling, steps
from gan_jax.errors import ConfigError
from gan_jax.families import gan
from gan_jax.family import DataSpec
from gan_jax.metrics import classifier, evaluation


def test_requested_labels():
  assert list(sampling.requested_labels(["4"], 3, 10)) == [4, 4, 4]
  assert list(sampling.requested_labels(["1", "3"], 5, 10)) == [1, 3, 1, 3, 1]
  assert list(sampling.requested_labels(["all"], 5, 3)) == [0, 1, 2, 0, 1]
  assert list(sampling.requested_labels([], 4, 3)) == [0, 1, 2, 0]
  for requests, classes, message in [(["4"], 0, "unconditional"),
                                     (["10"], 10, "--label=10 is not"),
                                     (["four"], 10, "class numbers")]:
    with pytest.raises(ConfigError, match=message):
      sampling.requested_labels(requests, 2, classes)


def test_the_number_of_classes_comes_from_the_data_or_the_flag():
  spec = DataSpec((28, 28, 1), 10)
  assert gan.num_classes_of(gan.GANConfig(), spec) == 0
  assert gan.num_classes_of(gan.GANConfig(conditional=True), spec) == 10
  assert gan.num_classes_of(
      gan.GANConfig(conditional=True, num_classes=12), spec) == 12
  for config, message in [
      (gan.GANConfig(conditional=True), "no labels"),
      (gan.GANConfig(conditional=True, num_classes=5), "fewer than the 10")]:
    with pytest.raises(ConfigError, match=message):
      gan.num_classes_of(config, DataSpec((28, 28, 1), 0 if "no" in message
                                          else 10))
  with pytest.raises(ConfigError, match="add --conditional"):
    gan.GANConfig(num_classes=10).validate()


def test_a_conditional_step_draws_the_real_batch_classes():
  config = gan.GANConfig(arch="dcgan_tiny", latent_dim=8, conditional=True)
  state = gan.FAMILY.init(config, DataSpec((28, 28, 1), 10),
                          jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (8, 28, 28, 1), minval=-1)
  labels = jnp.arange(8, dtype=jnp.int32)
  key = jax.random.key(2)
  with pytest.raises(ValueError, match=r"needs labels of shape \(8,\)"):
    steps.d_step(state.d, state.g.params, images, key)
  # D's loss depends on the classes it is told (projection head), and a
  # standalone d_step with the same key matches train_step's D update.
  _, by_labels = steps.d_step(state.d, state.g.params, images, key,
                              labels=labels)
  _, other = steps.d_step(state.d, state.g.params, images, key,
                          labels=labels[::-1])
  assert float(by_labels["d_loss"]) != float(other["d_loss"])
  new, metrics = jax.jit(gan.FAMILY.train_step)(
      state, {"image": images, "label": labels})
  assert np.isfinite(float(metrics["g_loss"])) and int(new.step) == 1
  # The grid: one row per class.
  grid = gan.preview(new, jax.random.key(3), jnp.zeros((25, 28, 28, 1)))
  assert grid["samples"].shape == (10, 2, 28, 28, 1)


def test_sample_a_chosen_class_from_the_command_line(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_run_config(idx_dir, preset="tiny_conditional").train(workdir)
  output = str(tmp_path / "fours.npz")
  result = run_module("experiments.sample", f"--workdir={workdir}",
                      "--label=4", "--num_samples=6", f"--output={output}",
                      f"--grid={tmp_path / 'fours.png'}")
  assert result.returncode == 0, result.stderr[-3000:]
  saved = np.load(output)
  assert saved["images"].shape == (6, 28, 28, 1)
  np.testing.assert_array_equal(saved["labels"], [4] * 6)
  # The same images as the library draws for class 4 with that seed.
  run = runs.load(workdir)
  fours = sampling.sample(run.family, run.state, 6, seed=0,
                          labels=np.full(6, 4))
  np.testing.assert_array_equal(saved["images"], fours)
  others = sampling.sample(run.family, run.state, 6, seed=0,
                           labels=np.full(6, 7))
  assert not np.array_equal(fours, others)
  # experiments.sample prints it as one "error: ..." line (test_experiments).
  with pytest.raises(ConfigError) as error:
    runs.sample_to_files(workdir, 6, str(tmp_path / "x.npz"), labels=["11"])
  assert str(error.value) == "--label=11 is not a class of this model (0..9)."

  # Scoring the run: every class in turn, and class_accuracy by default.
  classifier.train_classifier("bars", idx_dir, num_epochs=2, batch_size=32)
  records, _ = evaluate.evaluate_checkpoint(
      evaluate.EvalConfig(num_samples=20, dataset="bars"), workdir)
  scores = evaluation.by_metric(records)
  assert 0.0 <= scores["class_accuracy"] <= 1.0 and "fd" in scores
  record = [r for r in records if r["metric"] == "class_accuracy"][0]
  assert record["num_generated"] == 20 and len(record["per_class"]) == 10


def test_acgan_head_sows_class_logits_and_its_loss_is_cross_entropy():
  config = gan.GANConfig(arch="dcgan_tiny", latent_dim=8, conditional=True,
                         class_head="acgan", acgan_weight=0.5)
  state = gan.FAMILY.init(config, DataSpec((28, 28, 1), 3), jax.random.key(0))
  game = state.game
  assert game.class_loss_weight == 0.5
  images = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1), minval=-1)
  labels = jnp.array([0, 1, 2, 0], jnp.int32)
  logits, _, class_logits = steps._discriminate(
      game, state.d.variables(), images, jax.random.key(2), labels)
  assert logits.shape == (4,) and class_logits.shape == (4, 3)
  # The adversarial logit ignores the labels; the classifier predicts them.
  other, _, _ = steps._discriminate(game, state.d.variables(), images,
                                    jax.random.key(2), labels[::-1])
  np.testing.assert_array_equal(logits, other)
  log_p = np.asarray(jax.nn.log_softmax(class_logits))
  by_hand = -0.5 * np.mean(log_p[np.arange(4), np.asarray(labels)])
  np.testing.assert_allclose(steps.class_loss(game, class_logits, labels),
                             by_hand, rtol=1e-6)
  _, metrics = jax.jit(gan.FAMILY.train_step)(
      state, {"image": images, "label": labels})
  for name in ("d_class_loss", "d_class_acc_real", "g_class_loss"):
    assert np.isfinite(float(metrics[name])), name
  with pytest.raises(ConfigError, match="add --conditional"):
    gan.GANConfig(class_head="acgan").validate()
