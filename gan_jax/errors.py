"""Errors that a user can fix; their messages name the problem and the fix.

Entry points print these as one line instead of a traceback.
"""


class UserError(Exception):
  """Bad input: a flag, a file, a workdir. Fixable without touching code."""


class ConfigError(UserError, ValueError):
  """A flag (config field) has a bad value, or doesn't match the workdir."""


class DataError(UserError, ValueError):
  """A dataset is missing, corrupt or cannot be downloaded."""


class WorkdirError(UserError, OSError):
  """The workdir cannot be written or holds something unexpected."""


class CheckpointError(UserError, OSError):
  """Checkpoints cannot be written (disk full, permissions) or none is good."""


class Preempted(Exception):
  """Training stopped on SIGTERM or Ctrl-C after saving a checkpoint; rerun
  to resume. `signum` is the signal's number."""

  def __init__(self, message: str, signum: int = 15):
    super().__init__(message)
    self.signum = signum


class DivergenceError(UserError, FloatingPointError):
  """Training produced a non-finite loss or gradient norm."""
