"""TensorBoard event files without TensorFlow.

tensorboardX builds the Summary protos and frames the records; the events are
written here, synchronously, from the loop's thread. The writes are small (a
few scalars every --log_every steps, a grid every --sample_every), and a
failure (a full disk) surfaces where it happens, as one WorkdirError, rather
than in a background thread.

    writer = SummaryWriter(workdir)        # workdir/events.out.tfevents.*
    writer.write_scalars(step, {"d_loss": 0.7})
    writer.write_images(step, {"samples": grid[None]})  # uint8 [1, H, W, C]
    writer.write_hparams({"lr": 2e-4})
    writer.close()
"""

import contextlib
import os
import time
from typing import Any, Mapping

import numpy as np
from tensorboardX import summary as tbx_summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto import event_pb2

from gan_jax.errors import WorkdirError


@contextlib.contextmanager
def _write_errors_as_workdir_errors(logdir: str):
  try:
    yield
  except OSError as e:
    raise WorkdirError(
        f"Cannot write TensorBoard events to {logdir} ({e.strerror or e}). "
        "Free disk space, or choose another --workdir; its checkpoints are "
        "kept.") from e


class SummaryWriter:
  """Scalars, images and hyperparameters as TensorBoard events."""

  def __init__(self, logdir: str):
    self.logdir = logdir
    with _write_errors_as_workdir_errors(logdir):
      os.makedirs(logdir, exist_ok=True)
      self._events = EventsWriter(os.path.join(logdir, "events"), ".v2")

  def _write(self, step: int, summary) -> None:
    with _write_errors_as_workdir_errors(self.logdir):
      self._events.write_event(event_pb2.Event(
          wall_time=time.time(), step=int(step), summary=summary))
      self._events.flush()

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    for name, value in scalars.items():
      self._write(step, tbx_summary.scalar(name, float(value)))

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """images: {name: uint8 [1, H, W, C]} (the first of each is written)."""
    for name, batch in images.items():
      self._write(step, tbx_summary.image(name, np.asarray(batch)[0],
                                          dataformats="HWC"))

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    """The run's settings, for TensorBoard's HParams tab."""
    for summary in tbx_summary.hparams(dict(hparams), {}):
      self._write(0, summary)

  def close(self) -> None:
    with _write_errors_as_workdir_errors(self.logdir):
      self._events.close()


class NullWriter:
  """What processes other than the first write: nothing."""

  def write_scalars(self, step, scalars):
    del step, scalars

  def write_images(self, step, images):
    del step, images

  def write_hparams(self, hparams):
    del hparams

  def close(self):
    pass
