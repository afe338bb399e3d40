import os

import jax
import numpy as np
import pytest

from gan_jax import checkpoint, sampling, steps, train
from gan_jax.config import GANConfig
from gan_jax.errors import ConfigError, DataError, DivergenceError, WorkdirError
from gan_jax.state import create_state


def _config(idx_dir, **kwargs):
  defaults = dict(arch="dcgan_tiny", data_dir=idx_dir, batch_size=16,
                  num_steps=6, log_every=2, sample_every=3,
                  checkpoint_every=3, num_grid_samples=4)
  return GANConfig(**{**defaults, **kwargs})


def _assert_same_state(a, b):
  """Bitwise equal arrays (static parts such as optimizers are not compared)."""
  a_leaves, b_leaves = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(a_leaves) == len(b_leaves)
  for x, y in zip(a_leaves, b_leaves):
    np.testing.assert_array_equal(x, y)


def test_checkpoint_round_trip(tmp_path):
  config = GANConfig(arch="mlp_tiny")
  state = create_state(config, (28, 28, 1))
  state, _ = jax.jit(steps.train_step)(
      state, {"image": np.zeros((4, 28, 28, 1), np.float32)})
  mngr = checkpoint.manager(str(tmp_path))
  checkpoint.save(mngr, state, config, (28, 28, 1))
  mngr.wait_until_finished()
  step, saved_config, image_shape = checkpoint.load_config(mngr)
  assert (step, saved_config, image_shape) == (1, config, (28, 28, 1))
  fresh = create_state(config.replace(seed=1), (28, 28, 1))
  restored = checkpoint.restore(mngr, fresh)
  _assert_same_state(restored, state)
  assert restored.game == state.game


def test_training_writes_samples_events_and_checkpoints(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  state = train.train_and_evaluate(_config(idx_dir), workdir)
  assert int(state.step) == 6
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == [
      "step_0000003.png", "step_0000006.png"]
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  g_state, config, step = sampling.load_generator(workdir)
  assert step == 6 and config == _config(idx_dir)
  images = sampling.sample(g_state, 5)
  assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8


@pytest.mark.parametrize("arch", ["dcgan_tiny", "mlp_tiny"])
def test_resume_equals_uninterrupted_run(idx_dir, tmp_path, arch):
  straight = train.train_and_evaluate(_config(idx_dir, arch=arch),
                                      str(tmp_path / "straight"))
  resumed_dir = str(tmp_path / "resumed")
  first = train.train_and_evaluate(_config(idx_dir, arch=arch, num_steps=3),
                                   resumed_dir)
  assert int(first.step) == 3
  resumed = train.train_and_evaluate(_config(idx_dir, arch=arch), resumed_dir)
  assert int(resumed.step) == 6
  _assert_same_state(resumed, straight)


def test_resume_rejects_another_run(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(_config(idx_dir, num_steps=3), workdir)
  with pytest.raises(ConfigError, match="--arch='mlp_tiny'"):
    train.train_and_evaluate(_config(idx_dir, arch="mlp_tiny"), workdir)


@pytest.mark.parametrize("changes,match", [
    (dict(lr=-1.0), "--lr must be positive"),
    (dict(batch_size=0), "--batch_size must be positive"),
    (dict(b1=1.5), "--b1"),
    (dict(loss="wgan"), "--loss='wgan'"),
    (dict(arch="resnet"), "--arch='resnet'"),
    (dict(d_steps=0), "--d_steps"),
])
def test_bad_config_values_name_the_flag(idx_dir, tmp_path, changes, match):
  with pytest.raises(ConfigError, match=match):
    train.train_and_evaluate(_config(idx_dir, **changes), str(tmp_path))


def test_bad_paths_are_user_errors(idx_dir, tmp_path):
  with pytest.raises(DataError, match="--data_dir"):
    train.train_and_evaluate(_config(str(tmp_path / "missing")),
                             str(tmp_path / "run"))
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  with pytest.raises(WorkdirError, match="--workdir"):
    train.train_and_evaluate(_config(idx_dir), str(blocker / "run"))


def test_divergence_stops_with_step_and_metric(idx_dir, tmp_path, monkeypatch):
  real_step = steps.train_step

  def poisoned_step(state, batch):
    new_state, metrics = real_step(state, batch)
    bad = jax.numpy.where(state.step >= 3, jax.numpy.nan, 0.0)
    return new_state, {**metrics, "g_loss": metrics["g_loss"] + bad}

  monkeypatch.setattr(steps, "train_step", poisoned_step)
  workdir = str(tmp_path / "run")
  with pytest.raises(DivergenceError, match=r"step 4.*g_loss=nan.*step 3"):
    train.train_and_evaluate(_config(idx_dir, log_every=1), workdir)
  # The last good checkpoint is there, and no later one.
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["3"]
