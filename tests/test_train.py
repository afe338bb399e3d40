import dataclasses
import json
import os
import socket
import subprocess

import jax
import numpy as np
import pytest

from conftest import assert_same_state, tiny_run_config
from gan_jax import checkpoint, families, runs, sampling, steps, train
from gan_jax.config import RunConfig
from gan_jax.errors import (CheckpointError, ConfigError, DataError,
                            DivergenceError, WorkdirError)
from gan_jax.families import gan
from gan_jax.family import DataSpec
from gan_jax.state import create_state


def test_checkpoint_round_trip(tmp_path):
  config = gan.GANConfig(arch="mlp_tiny")
  state = create_state(config, (28, 28, 1))
  state, _ = jax.jit(steps.train_step)(
      state, {"image": np.zeros((4, 28, 28, 1), np.float32)})
  mngr = checkpoint.manager(str(tmp_path))
  record = train.run_record(gan.FAMILY, config, RunConfig(),
                            DataSpec((28, 28, 1), 10), "0" * 64)
  checkpoint.save(mngr, state, record)
  mngr.wait_until_finished()
  step, saved = checkpoint.load_record(mngr)
  assert (step, saved) == (1, record)
  fresh = create_state(config, (28, 28, 1), rng=jax.random.key(1))
  restored = checkpoint.restore(mngr, fresh)
  assert_same_state(restored, state)
  assert restored.game == state.game


def test_training_writes_samples_events_and_checkpoints(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  state = tiny_run_config(idx_dir).train(workdir)
  assert int(state.step) == 6
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == [
      "step_0000003.png", "step_0000006.png"]
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  run = runs.load(workdir)
  assert run.step == 6 and run.family is gan.FAMILY
  assert run.model == tiny_run_config(idx_dir).model
  assert run.run == tiny_run_config(idx_dir).run
  images = sampling.sample(run.family, run.state, 5)
  assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8
  # The record names the data by content; these bars are no known dataset.
  assert len(run.record.data_sha256) == 64
  assert run.record.extra["data_known_as"] is None


def test_run_record_names_known_data():
  from gan_jax import data_identity  # pylint: disable=g-import-not-at-top
  sha256 = next(iter(data_identity.KNOWN_SPLITS))
  record = train.run_record(gan.FAMILY, gan.GANConfig(), RunConfig(),
                            DataSpec((28, 28, 1), 10), sha256)
  assert record.extra["data_known_as"] == "/".join(
      data_identity.KNOWN_SPLITS[sha256])


# The tiny DCGAN is in tests/test_families.py's conformance test.
@pytest.mark.parametrize("changes", [dict(arch="mlp_tiny"),
                                     dict(arch="dcgan_tiny", g_ema_decay=0.9)])
def test_resume_equals_uninterrupted_run(idx_dir, tmp_path, changes):
  config = tiny_run_config(idx_dir, **changes)
  straight = config.train(tmp_path / "straight")
  resumed_dir = str(tmp_path / "resumed")
  first = config.replace(num_steps=3).train(resumed_dir)
  assert int(first.step) == 3
  resumed = config.train(resumed_dir)
  assert int(resumed.step) == 6
  assert_same_state(resumed, straight)


def test_resume_rejects_another_run(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_run_config(idx_dir, num_steps=3).train(workdir)
  with pytest.raises(ConfigError, match="--arch='mlp_tiny'"):
    tiny_run_config(idx_dir, arch="mlp_tiny").train(workdir)
  with pytest.raises(ConfigError, match="--num_steps=2 is below step 3"):
    tiny_run_config(idx_dir, num_steps=2).train(workdir)
  with pytest.raises(ConfigError, match="holds a gan run, and this trains a "
                     "vae"):
    tiny_run_config(idx_dir, family=families.get("vae")).train(workdir)


@pytest.mark.parametrize("changes,match", [
    (dict(lr=-1.0), "--lr must be positive"),
    (dict(lr=float("nan")), "--lr must be positive and finite, got nan"),
    (dict(lr=float("inf")), "--lr must be positive and finite, got inf"),
    (dict(batch_size=0), "--batch_size must be positive"),
    (dict(b1=1.5), "--b1"),
    (dict(loss="wgan"), "--loss='wgan'"),
    (dict(arch="vit"), "--arch='vit'"),
    (dict(d_steps=0), "--d_steps"),
    (dict(seed=-1), r"--seed must be in \[0, 2\*\*32\), got -1"),
    (dict(seed=2 ** 32), r"--seed must be in \[0, 2\*\*32\)"),
    (dict(latent_dim=10 ** 9), "--latent_dim must be at most 65536"),
])
def test_bad_config_values_name_the_flag(idx_dir, tmp_path, changes, match):
  with pytest.raises(ConfigError, match=match):
    tiny_run_config(idx_dir, **changes).train(tmp_path)


def test_bad_paths_are_user_errors(idx_dir, tmp_path):
  with pytest.raises(DataError, match="--data_dir"):
    tiny_run_config(str(tmp_path / "missing")).train(tmp_path / "run")
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  with pytest.raises(WorkdirError, match=f"--workdir=.* cannot be written "
                     f"[(]{blocker} is a file[)]"):
    tiny_run_config(idx_dir).train(blocker / "run")
  with pytest.raises(WorkdirError, match=f"[(]{blocker} is a file[)]"):
    tiny_run_config(idx_dir).train(blocker)


def _poisoned(config, rng=None, from_step=3):
  """`config` with a step whose g_loss turns NaN from `from_step` on while
  the state's key is `rng` (any key if rng is None)."""
  real_step = config.family.train_step

  def poisoned_step(state, batch):
    new_state, metrics = real_step(state, batch)
    hit = state.step >= from_step
    if rng is not None:
      hit &= jax.numpy.all(state.rng == rng)
    bad = jax.numpy.where(hit, jax.numpy.nan, 0.0)
    return new_state, {**metrics, "g_loss": metrics["g_loss"] + bad}

  return dataclasses.replace(config, family=dataclasses.replace(
      config.family, train_step=poisoned_step))


def test_divergence_stops_with_step_and_metric(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  with pytest.raises(DivergenceError, match=r"step 4.*g_loss=nan.*step 3"):
    _poisoned(tiny_run_config(idx_dir, log_every=1)).train(workdir)
  # The last good checkpoint is there, and no later one.
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["3"]


def test_on_nan_restore_goes_back_with_a_new_key(idx_dir, tmp_path):
  config = tiny_run_config(idx_dir, log_every=1, on_nan="restore")
  first_rng = create_state(config.model, (28, 28, 1)).rng
  config = _poisoned(config, first_rng)
  workdir = str(tmp_path / "run")
  state = config.train(workdir)
  assert int(state.step) == 6
  # Back to step 3's checkpoint, then on with the first restart's key.
  expected = jax.random.key_data(jax.random.fold_in(
      jax.random.wrap_key_data(first_rng), train._RESTART_SALT + 1))  # pylint: disable=protected-access
  np.testing.assert_array_equal(state.rng, expected)
  # The new key is checkpointed: resuming replays the restarted run.
  resumed = config.replace(num_steps=8).train(workdir)
  straight = config.replace(num_steps=8).train(tmp_path / "straight")
  assert_same_state(resumed, straight)


def test_on_nan_restore_gives_up_after_a_few_tries(idx_dir, tmp_path):
  config = tiny_run_config(idx_dir, log_every=1, on_nan="restore")
  with pytest.raises(DivergenceError, match="step 4.*g_loss=nan"):
    _poisoned(config).train(tmp_path / "run")


def test_one_run_per_workdir(idx_dir, tmp_path):
  from gan_jax import lock  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "run"
  workdir.mkdir()
  lock_file = workdir / lock.LOCK_FILE
  # A live process holds it: this one (as another run would).
  lock_file.write_text(json.dumps({"host": socket.gethostname(),
                                   "pid": os.getpid(), "since": "today"}))
  with pytest.raises(WorkdirError, match=r"is in use by another run \(PID "
                     rf"{os.getpid()} on .*delete .*{lock.LOCK_FILE}"):
    tiny_run_config(idx_dir, num_steps=1).train(workdir)
  assert not (workdir / "checkpoints").exists()
  # A dead one: its lock is taken over, and released at the end.
  dead = subprocess.Popen(["true"])
  dead.wait()
  lock_file.write_text(json.dumps({"host": socket.gethostname(),
                                   "pid": dead.pid, "since": "yesterday"}))
  assert int(tiny_run_config(idx_dir, num_steps=1).train(workdir).step) == 1
  assert not lock_file.exists()
  # Also released when the run fails.
  with pytest.raises(ConfigError):
    tiny_run_config(idx_dir, num_steps=1, arch="mlp_tiny").train(workdir)
  assert not lock_file.exists()


def test_sample_to_files_input_errors(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_run_config(idx_dir).train(workdir)  # Checkpoints at 3 and 6.
  with pytest.raises(ConfigError, match="must end in .npz"):
    runs.sample_to_files(workdir, 2, str(tmp_path / "samples"))
  blocker = tmp_path / "file"
  blocker.write_text("")
  with pytest.raises(WorkdirError, match="--output=.* cannot be written"):
    runs.sample_to_files(workdir, 2, str(blocker / "x.npz"))
  with pytest.raises(WorkdirError, match="--grid=.* cannot be written"):
    runs.sample_to_files(workdir, 2, str(tmp_path / "x.npz"),
                         grid=str(blocker / "x.png"))
  with pytest.raises(CheckpointError, match="No checkpoint of step 4 .* it has "
                     "steps 3, 6"):
    runs.sample_to_files(workdir, 2, str(tmp_path / "x.npz"), step=4)
  assert not os.path.exists(tmp_path / "x.npz")
  images = runs.sample_to_files(workdir, 2, str(tmp_path / "x.npz"), step=3)
  assert images.shape == (2, 28, 28, 1)
  assert sorted(os.listdir(tmp_path)) == sorted(["run", "file", "idx",
                                                 "x.npz"])
