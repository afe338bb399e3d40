"""When to stop early, after the current step: SIGTERM and Ctrl-C.

One process: handlers for SIGTERM (preemption) and SIGINT (Ctrl-C) set a
flag, and the loop saves a checkpoint after the current step and stops; a
second Ctrl-C raises KeyboardInterrupt at once. Only the main thread may
install handlers; elsewhere the signals keep their default behaviour.
Several processes: JAX's preemption service owns SIGTERM and its sync point
says when to stop, so that all hosts stop and save at the same step even
though only some of them got the signal; Ctrl-C keeps its default there.
"""

import signal
import threading

import jax
from absl import logging
from jax.experimental import multihost_utils

_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}


class Preemption:
  """`reached(step)` says whether to stop after `step`; `signum` says why."""

  def __init__(self):
    self.signum = None
    self._previous = {}
    self._multihost = jax.process_count() > 1
    if threading.current_thread() is threading.main_thread():
      # Multi-host: JAX's preemption service has its own SIGTERM handler.
      signals = () if self._multihost else (signal.SIGTERM, signal.SIGINT)
      for signum in signals:
        self._previous[signum] = signal.signal(signum, self._handle)

  @property
  def reason(self) -> str:
    return _NAMES.get(self.signum, "SIGTERM")

  def _handle(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self.signum == signal.SIGINT:
      raise KeyboardInterrupt  # A second Ctrl-C: stop at once.
    self.signum = signum
    logging.warning("%s: stopping after the current step, with a checkpoint%s",
                    _NAMES[signum], "; press Ctrl-C again to quit at once."
                    if signum == signal.SIGINT else ".")

  def reached(self, step: int) -> bool:
    """Call after every step, on every process, with the step count."""
    if self._multihost:
      if multihost_utils.reached_preemption_sync_point(step):
        self.signum = signal.SIGTERM
        return True
      return False
    return self.signum is not None

  def restore(self):
    """Puts back the handlers that were there before."""
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
