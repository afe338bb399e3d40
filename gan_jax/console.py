"""What the commands print: gan_jax's own lines and the libraries' real
warnings, not the libraries' chatter.

Orbax logs dozens of INFO lines per save or restore through absl, and warns
on every read-only open; TFDS narrates its lookups; JAX logs at INFO, through its own logger, that it
found no TPU. Both are filtered; everything at WARNING or above from
elsewhere passes. When a checkpoint read or write fails, TensorStore's
callbacks still in flight raise into a closed asyncio loop, hundreds of
"Event loop is closed" tracebacks at exit; the failure itself is reported
once, by gan_jax, so those echoes are dropped. TensorFlow's C++ notices are silenced by the environment
that gan_jax/__init__.py sets before TensorFlow can be imported.
"""

import logging as std_logging
import os
import sys
import warnings

from absl import logging

_DROPPED_WARNINGS = ("CheckpointManagerOptions.read_only=True",
                     "Given directory is read only")


# Echoes of a checkpoint read or write that already failed (and was reported).
_ECHOES = ("Event loop is closed", "Encountered error while reading array",
           "Error writing", "Error reading", "RESOURCE_EXHAUSTED",
           "No space left on device")


def _drop_echoes(default_hook):
  def hook(unraisable):
    if not any(text in str(unraisable.exc_value) for text in _ECHOES):
      default_hook(unraisable)
  hook.is_gan_jax_hook = True
  return hook


def _not_an_echo(record) -> bool:
  """asyncio's "Task exception was never retrieved" for a failed read."""
  text = record.getMessage()
  if record.exc_info:
    text += str(record.exc_info[1])
  return not any(echo in text for echo in _ECHOES)


def _keep(record) -> bool:
  path = record.pathname
  if f"{os.sep}tensorflow_datasets{os.sep}" in path:
    # TFDS narrates its lookups (and GCS probes); its failures reach the
    # user as gan_jax's DataError.
    return record.levelno >= logging.converter.STANDARD_ERROR
  if f"{os.sep}orbax{os.sep}" in path:
    # Orbax logs each failed write thread's traceback; gan_jax reports the
    # failure once, in one line (checkpoint._write_error).
    return (record.levelno >= logging.converter.STANDARD_WARNING
            and not any(text in str(record.msg) for text in _DROPPED_WARNINGS)
            and _not_an_echo(record))
  return True


def quiet_library_logs() -> None:
  """Installs the filter on absl's logger and the unraisable-exception hook
  (once), quiets JAX's backend discovery."""
  std_logging.getLogger("jax._src.xla_bridge").setLevel(std_logging.WARNING)
  if not getattr(sys.unraisablehook, "is_gan_jax_hook", False):
    sys.unraisablehook = _drop_echoes(sys.unraisablehook)
  # Orbax's reads abandoned when another read failed.
  warnings.filterwarnings("ignore", r"coroutine '.*' was never awaited",
                          RuntimeWarning)
  asyncio_logger = std_logging.getLogger("asyncio")
  if _not_an_echo not in asyncio_logger.filters:
    asyncio_logger.addFilter(_not_an_echo)
  logger = logging.get_absl_logger()
  if not any(getattr(f, "is_gan_jax_filter", False) for f in logger.filters):
    keep = lambda record: _keep(record)  # pylint: disable=unnecessary-lambda
    keep.is_gan_jax_filter = True
    logger.addFilter(keep)
