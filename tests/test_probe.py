import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import run_module, tiny_run_config
from gan_jax import probe
from gan_jax.errors import ConfigError
from gan_jax.families import vae
from gan_jax.family import DataSpec


def test_max_pool_to_grid_by_hand():
  x = np.arange(2 * 7 * 7 * 3, dtype=np.float32).reshape(2, 7, 7, 3)
  x = np.random.default_rng(0).permutation(x.ravel()).reshape(x.shape)
  pooled = np.asarray(probe.max_pool_to_grid(jnp.asarray(x), 4))
  # 7 rows in windows of 2: [0, 1], [2, 3], [4, 5], [6].
  windows = [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 7)]
  by_hand = np.stack([x[:, r, c].max(axis=(1, 2)) for r in windows
                      for c in windows], axis=1)  # [N, 16, C]
  np.testing.assert_array_equal(pooled, by_hand.reshape(2, -1))
  vectors = jnp.ones((2, 5))
  assert probe.max_pool_to_grid(vectors, 4) is vectors
  assert probe.max_pool_to_grid(jnp.ones((1, 3, 3, 2)), 4).shape == (1, 18)


def test_fit_softmax_reaches_the_optimum_of_its_objective():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(200, 5)).astype(np.float32)
  labels = (x @ rng.normal(size=(5, 3))).argmax(axis=1)
  labels[:20] = rng.integers(0, 3, 20)  # Not separable: a finite optimum.
  l2_weight = 1e-2
  params = probe.fit_softmax(x, labels, l2_weight, num_classes=3,
                             iterations=100)

  def objective(params):
    logits = x @ params["w"] + params["b"]
    return (jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        logits, labels)) + 0.5 * l2_weight * jnp.sum(params["w"] ** 2))

  gradient = jax.grad(objective)(params)
  assert max(float(jnp.max(jnp.abs(g))) for g in
             jax.tree.leaves(gradient)) < 1e-4
  assert probe.accuracy(params, x, labels) > 0.85


def test_probe_chooses_the_separable_layer_on_validation():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 4, 400)
  separable = np.eye(4, dtype=np.float32)[labels] + 0.1 * rng.normal(
      size=(400, 4)).astype(np.float32)
  noise = rng.normal(size=(400, 6)).astype(np.float32)
  features = probe.with_all_layers({"good": separable, "noise": noise})
  assert features["all"].shape == (400, 10)
  train = {k: v[:300] for k, v in features.items()}
  test = {k: v[300:] for k, v in features.items()}
  records = probe.probe_features(train, labels[:300], test, labels[300:],
                                 probe.ProbeConfig(iterations=50), 4)
  by_layer = {r["layer"]: r for r in records}
  assert by_layer["good"]["test_accuracy"] == 1.0
  assert by_layer["noise"]["test_accuracy"] < 0.5  # Chance is 0.25.
  assert by_layer["good"]["num_val"] == 50 and by_layer["good"]["num_fit"] == 250
  chosen = [r["layer"] for r in records if r["chosen"]]
  assert len(chosen) == 1 and chosen[0] in ("good", "all")
  assert "| good" in probe.table(records)


def test_probe_a_run_from_the_command_line(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_run_config(idx_dir).train(workdir)
  result = run_module("experiments.probe", f"--workdir={workdir}",
                      "--layer=all", "--iterations=30", "--l2_weights=1e-3")
  assert result.returncode == 0, result.stderr[-3000:]
  records = [json.loads(line) for line in result.stdout.splitlines()]
  assert [(r["source"], r["layer"], r["feature_dim"]) for r in records] == [
      # The tiny DCGAN's D: 8 and 16 channels, each pooled to 4x4.
      ("trained", "all", 16 * 8 + 16 * 16),
      ("random_init", "all", 16 * 8 + 16 * 16), ("pixels", "pixels", 784)]
  pixels = [r for r in records if r["source"] == "pixels"][0]
  # The fixture's classes are bars at different columns: linearly separable.
  assert pixels["test_accuracy"] == 1.0 and pixels["num_test"] == 32
  assert all(r["step"] == 6 and r["dataset"] == "mnist" for r in records)
  assert "| trained | " in result.stderr

  with pytest.raises(ConfigError) as error:
    probe.probe_run(workdir, probe.ProbeConfig(layer="block_9"))
  assert str(error.value) == ("--layer='block_9' is not a layer of this "
                              "network; its layers: block_0, block_1, all.")


def test_a_conditional_vae_refuses_to_be_probed():
  config = vae.VAEConfig(**vae.FAMILY.presets["tiny_conditional"].model)
  state = vae.FAMILY.init(config, DataSpec((28, 28, 1), 10),
                          jax.random.key(0))
  with pytest.raises(ConfigError, match="given each image's class"):
    vae.FAMILY.get("features")(state, jnp.zeros((2, 28, 28, 1)))
