import os

import jax
import numpy as np
import pytest

from conftest import run_module
from gan_jax import pairs
from gan_jax.errors import ConfigError
from gan_jax.families import pix2pix
from gan_jax.family import DataSpec
from gan_jax.metrics.paired import paired_metrics


def _state(**changes):
  """The tiny preset, as the conformance test builds it (which then shares
  this file's compilations of the step)."""
  config = pix2pix.Pix2PixConfig(**{**pix2pix.PRESETS["tiny"].model,
                                    **changes}).validate()
  return pix2pix.FAMILY.init(config, DataSpec((28, 28, 1), 10),
                             jax.random.key(0))


def _batch(seed=0):
  images = jax.random.uniform(jax.random.key(seed), (8, 28, 28, 1),
                              minval=-1.0)
  return {"image": images, "label": np.zeros(8, np.int32)}


@pytest.mark.parametrize("adversarial", [True, False])
def test_losses_compose_and_l1_falls(adversarial):
  state = _state(adversarial=adversarial)
  d_params = jax.tree.map(np.array, state.d.params)  # Copies: donated below.
  step = jax.jit(pix2pix.train_step, donate_argnums=0)
  batch = _batch()
  l1 = []
  for _ in range(5):
    state, metrics = step(state, batch)
    l1.append(float(metrics["g_l1"]))
    # The generator's objective: adversarial term + lambda * L1.
    np.testing.assert_allclose(
        metrics["g_loss"], metrics["g_adv"] + 100.0 * metrics["g_l1"],
        rtol=1e-5)
  assert l1[-1] < l1[0]
  moved = jax.tree.leaves(jax.tree.map(
      lambda a, b: float(np.max(np.abs(a - b))), state.d.params, d_params))
  if adversarial:
    assert max(moved) > 0 and 0 < float(metrics["d_real"]) < 1
  else:  # The L1-only ablation never trains D, nor reports it.
    assert max(moved) == 0 and "d_loss" not in metrics
    assert float(metrics["g_adv"]) == 0.0


def test_the_preview_rows_are_source_output_target():
  state = _state(task="denoise")
  images = _batch()["image"][:3]
  rows = pix2pix.preview(state, jax.random.key(5), images)["translations"]
  assert rows.shape == (3, 3, 28, 28, 1)
  np.testing.assert_array_equal(rows[:, 2], images)
  np.testing.assert_array_equal(
      rows[:, 1], pix2pix.translate(state, rows[:, 0]))


def test_train_from_the_command_line(idx_dir, tmp_path):
  workdir = tmp_path / "run"
  result = run_module("experiments.pix2pix", f"--workdir={workdir}",
                      f"--data_dir={idx_dir}", "--preset=tiny",
                      "--task=superres", "--num_steps=2", "--log_every=1",
                      "--sample_every=2", "--checkpoint_every=2")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "L1" in result.stderr and "D(s, G(s))" in result.stderr
  assert os.listdir(workdir / "samples") == ["translations_step_0000002.png"]


def test_paired_metrics_against_hand_computed_values():
  truth = np.full((2, 16, 16, 1), 51, np.uint8)  # 0.2 in [0, 1] units.
  scores = paired_metrics(np.zeros_like(truth), truth)
  np.testing.assert_allclose(scores["l1"]["value"], 0.2, rtol=1e-6)
  np.testing.assert_allclose(scores["psnr"]["value"],
                             -10 * np.log10(0.04), rtol=1e-5)
  # Two flat images: SSIM = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1),
  # the contrast term (sigma^2 + c2) / (sigma^2 + c2) being 1.
  c1 = 0.01 ** 2
  np.testing.assert_allclose(scores["ssim"]["value"], c1 / (0.04 + c1),
                             rtol=1e-4)
  same = paired_metrics(truth, truth)
  assert same["l1"]["value"] == 0 and same["ssim"]["value"] == 1.0
  assert same["psnr"]["value"] == 100.0  # Capped: no error at all.


def test_aligned_images_are_source_then_target():
  images = jax.random.uniform(jax.random.key(0), (4, 16, 32, 1), minval=-1.)
  source, target = pairs.get("aligned").split(None, images)
  np.testing.assert_array_equal(source, images[:, :, :16])
  np.testing.assert_array_equal(target, images[:, :, 16:])
  config = pix2pix.Pix2PixConfig(task="aligned", features=4,
                                 num_downs=2).validate()
  state = pix2pix.init(config, DataSpec((16, 32, 1)), jax.random.key(0))
  rows = pix2pix.preview(state, jax.random.key(1), images)["translations"]
  assert rows.shape == (4, 3, 16, 16, 1)
  held_out = pix2pix.pairs(state, np.zeros((3, 16, 32, 1), np.uint8),
                           np.zeros(3, np.int32), seed=0)
  assert held_out.sources.shape == (3, 16, 16, 1)
  assert held_out.truth.shape == held_out.targets.shape == (3, 16, 16, 1)
  with pytest.raises(ConfigError, match="width must be even"):
    pix2pix.init(config, DataSpec((16, 31, 1)), jax.random.key(0))
