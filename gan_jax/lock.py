"""One training run per workdir: a lock file holding the owner's host and PID.

Two runs writing one workdir would race on its checkpoints. The second is
refused with one line naming the first. A lock left by a run that died
(its PID no longer runs on this host) is taken over with a warning; one
from another host cannot be checked from here, and the message says how to
remove it.
"""

import json
import os
import socket
import time

from absl import logging

from gan_jax.errors import WorkdirError

LOCK_FILE = ".gan_jax.lock"
# A lock file that is still empty or unreadable after this long was left by a
# write that failed (a full disk), not one in progress.
_HALF_WRITTEN_SECONDS = 5.0


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Someone else's process: alive.
    return True
  return True


class WorkdirLock:
  """`acquire()` or WorkdirError; `release()` removes the file if ours."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_FILE)
    self.held = False

  def _holder(self):
    try:
      with open(self.path) as f:
        return json.load(f)
    except (OSError, ValueError):
      return None  # Vanished, or half written: try again.

  def _age(self) -> float:
    try:
      return time.time() - os.path.getmtime(self.path)
    except OSError:
      return 0.0

  def acquire(self) -> None:
    me = {"host": socket.gethostname(), "pid": os.getpid(),
          "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        holder = self._holder()
        if holder is None:
          if self._age() > _HALF_WRITTEN_SECONDS:  # Left by a failed write.
            os.remove(self.path)
          else:
            time.sleep(0.1)
          continue
        if holder.get("host") == me["host"] and not _alive(holder["pid"]):
          logging.warning("Taking over the lock of a run that is gone (PID "
                          "%s, since %s).", holder["pid"], holder.get("since"))
          os.remove(self.path)
          continue
        raise WorkdirError(
            f"--workdir={self.workdir} is in use by another run (PID "
            f"{holder.get('pid')} on {holder.get('host')}, since "
            f"{holder.get('since')}). Wait for it to finish or use another "
            f"--workdir; if that run is gone, delete {self.path}.") from None
      except OSError as e:
        raise WorkdirError(f"--workdir={self.workdir}: cannot create "
                           f"{LOCK_FILE} ({e.strerror}); choose another "
                           "--workdir.") from e
      try:
        with os.fdopen(fd, "w") as f:
          json.dump(me, f)
      except OSError as e:  # A full disk: leave no empty lock behind.
        os.remove(self.path)
        raise WorkdirError(
            f"--workdir={self.workdir}: cannot write {LOCK_FILE} "
            f"({e.strerror}). Free disk space, or choose another --workdir; "
            "the checkpoints there are kept.") from e
      self.held = True
      return
    raise WorkdirError(f"--workdir={self.workdir}: cannot take {self.path}; "
                       "delete it if no run is using the workdir.")

  def release(self) -> None:
    if self.held:
      self.held = False
      try:
        os.remove(self.path)
      except OSError:
        pass
