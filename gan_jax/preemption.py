"""When to stop for a preemption (SIGTERM): after the current step.

One process: a SIGTERM handler sets a flag (only the main thread may install
one; elsewhere SIGTERM keeps its default behaviour). Several processes: JAX's
preemption sync point, so that all hosts stop and save at the same step even
though only some of them got the signal.
"""

import signal
import threading

import jax
from absl import logging
from jax.experimental import multihost_utils


class Preemption:
  """`reached(step)` says whether to stop after `step`."""

  def __init__(self):
    self.received = False
    self._previous = None
    self._multihost = jax.process_count() > 1
    # Multi-host: JAX's preemption service has its own SIGTERM handler.
    if (not self._multihost
        and threading.current_thread() is threading.main_thread()):
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM: stopping after the current step.")
    self.received = True

  def reached(self, step: int) -> bool:
    """Call after every step, on every process, with the step count."""
    if self._multihost:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.received

  def restore(self):
    """Puts back the SIGTERM handler that was there before."""
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
