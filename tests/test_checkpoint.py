"""Verified checkpoints: hashes, fallback from corrupt ones, write failures."""

import errno
import gc
import json
import logging
import os
import shutil

import jax
import numpy as np
import pytest
from etils import epath

from conftest import assert_same_state, tiny_run_config
from gan_jax import checkpoint, steps, train
from gan_jax.config import RunConfig
from gan_jax.errors import CheckpointError, ConfigError
from gan_jax.families import gan
from gan_jax.family import DataSpec
from gan_jax.state import create_state

RECORD = train.run_record(gan.FAMILY, gan.GANConfig(arch="mlp_tiny"),
                          RunConfig(), DataSpec((28, 28, 1), 10), "0" * 64)


def _trained_state(config):
  state = create_state(config, (28, 28, 1))
  state, _ = jax.jit(steps.train_step)(
      state, {"image": np.zeros((4, 28, 28, 1), np.float32)})
  return state


def _step_dir(workdir, step):
  return os.path.join(workdir, "checkpoints", str(step))


def _edit_config_item(workdir, step, edit):
  path = os.path.join(_step_dir(workdir, step), "config", "metadata")
  with open(path) as f:
    run = json.load(f)
  edit(run)
  with open(path, "w") as f:
    json.dump(run, f)


def _largest_array_file(step_dir):
  files = [os.path.join(root, name)
           for root, _, names in os.walk(os.path.join(step_dir, "state"))
           for name in names if os.sep + "d" + os.sep in root + os.sep]
  return max(files, key=os.path.getsize)


def _garble(step_dir):
  path = _largest_array_file(step_dir)
  with open(path, "r+b") as f:
    data = bytearray(f.read())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    f.seek(0)
    f.write(data)


def _truncate(step_dir):
  path = _largest_array_file(step_dir)
  os.truncate(path, os.path.getsize(path) // 2)


def _delete_state_item(step_dir):
  shutil.rmtree(os.path.join(step_dir, "state"))


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records
          if r.levelno == logging.WARNING]


def test_hash_is_saved_and_verified(tmp_path):
  config = gan.GANConfig(arch="mlp_tiny")
  state = _trained_state(config)
  workdir = str(tmp_path)
  mngr = checkpoint.manager(workdir)
  checkpoint.save(mngr, state, RECORD)
  checkpoint.close(mngr)
  with open(os.path.join(_step_dir(workdir, 1), "config", "metadata")) as f:
    assert json.load(f)["state_sha256"] == checkpoint.state_sha256(state)
  target = create_state(config, (28, 28, 1), rng=jax.random.key(1))
  restored = checkpoint.restore(checkpoint.manager(workdir), target)
  assert_same_state(restored, state)
  # A state whose bytes differ from the hash saved with it is refused.
  _edit_config_item(workdir, 1, lambda run: run.update(state_sha256="0" * 64))
  with pytest.raises(CheckpointError, match="step 1 is corrupt.*state_sha256"):
    checkpoint.restore(checkpoint.manager(workdir), target)


def test_checkpoint_without_hash_still_restores(tmp_path, caplog):
  config = gan.GANConfig(arch="mlp_tiny")
  state = _trained_state(config)
  workdir = str(tmp_path)
  mngr = checkpoint.manager(workdir)
  checkpoint.save(mngr, state, RECORD)
  checkpoint.close(mngr)
  _edit_config_item(workdir, 1, lambda run: run.pop("state_sha256"))
  target = create_state(config, (28, 28, 1))
  with caplog.at_level(logging.INFO):
    restored = checkpoint.restore(checkpoint.manager(workdir), target)
  assert_same_state(restored, state)
  assert any("predates state_sha256" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("corrupt", [_garble, _truncate, _delete_state_item])
def test_corrupt_latest_checkpoint_falls_back_and_trains_past_it(
    idx_dir, tmp_path, caplog, corrupt):
  workdir = str(tmp_path / "run")
  straight = tiny_run_config(idx_dir).train(workdir)
  corrupt(_step_dir(workdir, 6))
  with caplog.at_level(logging.WARNING):
    resumed = tiny_run_config(idx_dir).train(workdir)
  assert any("step 6" in message and "trying step 3" in message
             for message in _warnings(caplog)), _warnings(caplog)
  # Resumed from step 3 and trained to 6 again: as if never interrupted.
  assert_same_state(resumed, straight)
  # The bad folder is kept aside, and a new step 6 was saved past it.
  assert [name.split("-")[0] for name in
          os.listdir(os.path.join(workdir, "corrupt_checkpoints"))] == ["6"]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
  mngr = checkpoint.manager(workdir, read_only=True)
  assert mngr.all_steps() == [3, 6]
  assert_same_state(checkpoint.restore(mngr, resumed), straight)


def test_all_checkpoints_corrupt_is_an_error(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_run_config(idx_dir).train(workdir)
  _delete_state_item(_step_dir(workdir, 6))
  _garble(_step_dir(workdir, 3))
  with pytest.raises(CheckpointError,
                     match=r"No checkpoint in .* can be restored .*step 6.*"
                     r"step 3.*left in place") as raised:
    tiny_run_config(idx_dir).train(workdir)
  assert "\n" not in str(raised.value)
  # Nothing was moved, deleted or overwritten.
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
  assert not os.path.exists(os.path.join(workdir, "corrupt_checkpoints"))


def test_another_run_is_refused_before_any_array_is_read(
    idx_dir, tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  tiny_run_config(idx_dir, num_steps=3).train(workdir)

  def no_restore(*args, **kwargs):
    raise AssertionError("arrays read before the config was checked")

  monkeypatch.setattr(checkpoint, "restore", no_restore)
  with pytest.raises(ConfigError, match="--arch='mlp_tiny'"):
    tiny_run_config(idx_dir, arch="mlp_tiny").train(workdir)


# Orbax's failed write coroutines may be collected later, as "never awaited".
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_disk_full_during_save_is_a_checkpoint_error(
    idx_dir, tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  first = tiny_run_config(idx_dir, num_steps=3).train(workdir)
  checkpoints = os.path.join(workdir, "checkpoints")
  # The files orbax writes from Python (JSON items, metadata) hit a full disk.
  path_class = type(epath.Path(checkpoints))
  real_write_text = path_class.write_text

  def full_disk(self, *args, **kwargs):
    if str(self).startswith(checkpoints):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
    return real_write_text(self, *args, **kwargs)

  monkeypatch.setattr(path_class, "write_text", full_disk)
  with pytest.raises(CheckpointError) as raised:
    tiny_run_config(idx_dir).train(workdir)
  message = str(raised.value)
  assert "\n" not in message
  assert checkpoints in message and "No space left on device" in message
  assert "Free disk space" in message and "--workdir" in message
  monkeypatch.undo()
  # Step 3 is intact, and the next run resumes from it.
  mngr = checkpoint.manager(workdir)
  assert mngr.all_steps() == [3]
  assert_same_state(checkpoint.restore(mngr, first), first)
  assert int(tiny_run_config(idx_dir).train(workdir).step) == 6
  # Nothing half-written is left behind (removed at the failure, or by the
  # rerun's manager at the latest).
  assert not [name for name in os.listdir(checkpoints)
              if name.endswith(".orbax-checkpoint-tmp")]
  gc.collect()  # Here, under the filter above, not in a later test.


def test_a_killed_writes_folder_is_removed_by_the_next_manager(tmp_path):
  checkpoints = tmp_path / "run" / "checkpoints"
  unfinished = checkpoints / "7.orbax-checkpoint-tmp" / "state" / "d"
  unfinished.mkdir(parents=True)
  (unfinished / "shard").write_bytes(b"half")
  (checkpoints / "3").mkdir()  # A finished step is never touched.
  checkpoint.manager(str(tmp_path / "run")).close()
  assert sorted(os.listdir(checkpoints)) == ["3"]


def test_tensorstore_write_errors_are_recognised():
  error = ValueError('RESOURCE_EXHAUSTED: Error writing "g.params" ... Failed '
                     "to write 2687502 bytes to file 7: No space left on "
                     "device [os_error_code='28']")
  translated = checkpoint._write_error("/w/checkpoints", error)
  assert isinstance(translated, CheckpointError)
  assert str(translated).startswith(
      "Cannot write checkpoints to /w/checkpoints: No space left on device.")
  assert checkpoint._write_error("/w", ValueError("bad tree")) is None


def test_low_disk_space_fails_before_the_save(tmp_path, monkeypatch):
  config = gan.GANConfig(arch="mlp_tiny")
  mngr = checkpoint.manager(str(tmp_path))
  real_statvfs = os.statvfs

  class Full:
    def __init__(self, stats):
      self.f_blocks, self.f_frsize = stats.f_blocks, stats.f_frsize
      self.f_bfree = self.f_bavail = 1

  monkeypatch.setattr(os, "statvfs", lambda path: Full(real_statvfs(path)))
  with pytest.raises(CheckpointError, match="No space left on device"):
    checkpoint.save(mngr, _trained_state(config), RECORD)
  checkpoint.close(mngr)
  assert mngr.all_steps() == []


def test_checkpoints_path_that_is_a_file_is_a_checkpoint_error(tmp_path):
  # A real unwritable location, even for root.
  (tmp_path / "checkpoints").write_text("not a folder")
  with pytest.raises(CheckpointError, match="checkpoints is a file.*--workdir"):
    checkpoint.manager(str(tmp_path))
  # A folder that cannot be written (as root: one under a file) fails too.
  with pytest.raises(CheckpointError, match="Cannot write checkpoints to .*"
                     "Not a directory.*--workdir"):
    checkpoint.manager(str(tmp_path / "checkpoints" / "run"))


def test_checkpoints_deleted_mid_run_are_written_anew(idx_dir, tmp_path,
                                                      monkeypatch, caplog):
  workdir = str(tmp_path / "run")
  original = train._reopen_if_deleted  # pylint: disable=protected-access

  def delete_before_step_6(mngr, workdir_, keep, step):
    if step == 6:
      checkpoint.wait(mngr)
      shutil.rmtree(mngr.directory)
    return original(mngr, workdir_, keep, step)

  monkeypatch.setattr(train, "_reopen_if_deleted", delete_before_step_6)
  with caplog.at_level(logging.WARNING):
    state = tiny_run_config(idx_dir).train(workdir)
  assert any("was deleted during the run" in m for m in _warnings(caplog))
  assert int(state.step) == 6
  mngr = checkpoint.manager(workdir, read_only=True)
  assert mngr.all_steps() == [6]  # The final state is saved, not lost.
  assert_same_state(checkpoint.restore(mngr, state), state)


def test_rerun_without_checkpoints_says_so(idx_dir, tmp_path, caplog):
  workdir = str(tmp_path / "run")
  tiny_run_config(idx_dir, num_steps=3).train(workdir)
  shutil.rmtree(os.path.join(workdir, "checkpoints"))
  with caplog.at_level(logging.WARNING):
    tiny_run_config(idx_dir, num_steps=3).train(workdir)
  assert any("has no checkpoint, yet preview grids up to step_0000003.png"
             in m for m in _warnings(caplog)), _warnings(caplog)


def test_write_error_after_the_folder_vanished_says_so(tmp_path):
  error = OSError(errno.ENOENT, os.strerror(errno.ENOENT))
  translated = checkpoint._write_error(str(tmp_path / "gone"), error)  # pylint: disable=protected-access
  assert "was deleted while the run was writing" in str(translated)
  assert "earlier checkpoints are kept" not in str(translated)
