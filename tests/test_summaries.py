"""TensorBoard events written without TensorFlow, read back by TensorBoard."""

import errno
import os
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from gan_jax import summaries
from gan_jax.errors import WorkdirError


def test_scalars_images_and_hparams_read_back(tmp_path):
  writer = summaries.SummaryWriter(str(tmp_path))
  writer.write_hparams({"lr": 2e-4, "arch": "dcgan"})
  writer.write_scalars(10, {"d_loss": 0.5, "g_loss": 2.0})
  writer.write_scalars(20, {"d_loss": 0.25, "g_loss": 1.5})
  grid = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(1, 6, 8, 3)
  writer.write_images(20, {"samples": grid})
  writer.close()
  events = event_accumulator.EventAccumulator(
      str(tmp_path), size_guidance={event_accumulator.IMAGES: 0})
  events.Reload()
  assert [(e.step, e.value) for e in events.Scalars("d_loss")] == [
      (10, 0.5), (20, 0.25)]
  image = events.Images("samples")[0]
  assert (image.step, image.width, image.height) == (20, 8, 6)
  assert "_hparams_/session_start_info" in events.PluginTagToContent(
      "hparams")


def test_no_tensorflow_is_imported(tmp_path):
  # A fresh interpreter: the loop, the writer and the metrics need no TF.
  import subprocess  # pylint: disable=g-import-not-at-top
  code = ("import sys; import gan_jax.train, gan_jax.evaluate, "
          "gan_jax.summaries; print('tensorflow' in sys.modules)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True)
  assert result.stdout.strip() == "False"


def test_a_full_disk_is_one_workdir_error(tmp_path, monkeypatch):
  writer = summaries.SummaryWriter(str(tmp_path))

  def full(self):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(summaries.EventsWriter, "flush", full)
  with pytest.raises(WorkdirError, match="No space left on device.*Free "
                     "disk space.*checkpoints are kept"):
    writer.write_scalars(1, {"loss": 1.0})
