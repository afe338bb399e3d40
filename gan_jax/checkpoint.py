"""Checkpoints of a family's whole state, with orbax, verified on restore.

Each checkpoint is a folder `<workdir>/checkpoints/<step>/` holding two items:
`state` (every array of the state pytree: params, optimizer states, BatchNorm
statistics, EMA params, the step and the base PRNG key; the data position is
the step) and `config` (a `RunRecord` as JSON: the family's name, the run's
and the model's configs, the data's shape and content hash, and
`state_sha256`, a hash of the state's arrays, so that a checkpoint alone
rebuilds its networks and proves its arrays intact). Checkpoints of release
0.1 (a flat GANConfig) read as GAN records. Orbax writes each checkpoint to a
temporary folder and renames it when complete, so an interrupted save never
replaces a good checkpoint. Saves run asynchronously, off the training loop.

`restore_latest_good` resumes from the newest checkpoint that reads back and
matches its hash. Newer bad ones are moved to `<workdir>/corrupt_checkpoints/`,
kept for inspection but out of orbax's way.
"""

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from gan_jax import hashing
from gan_jax.errors import CheckpointError
from gan_jax.family import DataSpec

State = Any  # A family's state pytree.
HASH_KEY = "state_sha256"
CORRUPT_DIR = "corrupt_checkpoints"
_FIX = ("Free disk space, fix the folder's permissions, or choose another "
        "--workdir; earlier checkpoints are kept.")


CHECKPOINTS = "checkpoints"  # The latest few, every --checkpoint_every.
BEST = "best"  # The best by FD, with --eval_every.
FORMAT = 2  # Of the RunRecord; release 0.1's flat GANConfig is format 1.


@dataclasses.dataclass(frozen=True)
class RunRecord:
  """What a checkpoint says about the run that wrote it."""
  family: str  # The family's name, e.g. "gan".
  run: Dict[str, Any]  # RunConfig.to_dict()
  model: Dict[str, Any]  # The family's model config, to_dict()
  data_spec: DataSpec
  data_sha256: Optional[str] = None  # Of the training images and labels.
  extra: Dict[str, Any] = dataclasses.field(default_factory=dict)
  format: int = FORMAT  # 1: release 0.1, whose records hold no data hash
  # and no class count.

  def to_json(self) -> Dict[str, Any]:
    return {"format": FORMAT, "family": self.family, "run": self.run,
            "model": self.model, "data_spec": self.data_spec.to_dict(),
            "data_sha256": self.data_sha256, **self.extra}

  @classmethod
  def from_json(cls, saved: Dict[str, Any]) -> "RunRecord":
    if "family" not in saved:  # Release 0.1: one flat GANConfig dict.
      return cls("gan", run=saved, model=saved,
                 data_spec=DataSpec(tuple(saved["image_shape"])),
                 extra={k: saved[k] for k in ("eval",) if k in saved},
                 format=1)
    known = {"format", "family", "run", "model", "data_spec", "data_sha256",
             HASH_KEY}
    return cls(saved["family"], saved["run"], saved["model"],
               DataSpec.from_dict(saved["data_spec"]),
               saved.get("data_sha256"),
               {k: v for k, v in saved.items() if k not in known},
               saved["format"])


def checkpoint_dir(workdir: str, kind: str = CHECKPOINTS) -> str:
  return os.path.join(os.path.abspath(workdir), kind)


def _canonical(leaf):
  """`leaf` with the dtype JAX gives it (so the hash ignores orbax's types)."""
  # The players' steps start as Python ints and come back from orbax as
  # int64 numpy scalars, but train as int32 arrays.
  if isinstance(leaf, jax.Array):
    return leaf
  leaf = np.asarray(leaf)
  return leaf.astype(jax.dtypes.canonicalize_dtype(leaf.dtype), copy=False)


def state_sha256(state: State) -> str:
  """The hash saved with each checkpoint (`hashing.tree_sha256`)."""
  return hashing.tree_sha256(jax.tree.map(_canonical, state))


def _os_error(error: BaseException) -> Optional[Tuple[Optional[int], str]]:
  """(errno, description) of the OS failure behind `error`, if it is one.

  Orbax re-raises failures of its write threads as other types, and
  TensorStore reports them as ValueError("... [os_error_code='28']").
  """
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and not isinstance(error, CheckpointError):
      if error.errno:
        return error.errno, os.strerror(error.errno)
      return None, str(error)
    code = re.search(r"os_error_code='?(\d+)", str(error))
    if code:
      return int(code.group(1)), os.strerror(int(code.group(1)))
    error = error.__cause__ or error.__context__
  return None


def _write_error(directory, error: BaseException) -> Optional[CheckpointError]:
  """A one-line CheckpointError for an OS-level write failure, else None."""
  cause = _os_error(error)
  if cause is None:
    return None
  if cause[0] == errno.ENOENT and not os.path.isdir(directory):
    return CheckpointError(
        f"{directory} was deleted while the run was writing to it, so its "
        "checkpoints are gone; rerun to start again from step 0, or restore "
        "the folder from a backup first.")
  return CheckpointError(
      f"Cannot write checkpoints to {directory}: {cause[1]}. " + _FIX)


# Orbax writes each checkpoint under this suffix and renames it when done.
_TMP_SUFFIX = ".orbax-checkpoint-tmp"


def _remove_unfinished(directory) -> None:
  """Deletes half-written step folders (never a finished checkpoint), so a
  failed write leaves nothing behind and frees its space at once."""
  try:
    names = os.listdir(directory)
  except OSError:
    return
  for name in names:
    if name.endswith(_TMP_SUFFIX):
      shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


@contextlib.contextmanager
def _write_errors_as_checkpoint_errors(directory):
  """Raises OS-level write failures inside the block as `_write_error`s,
  after removing what the failed write left; other errors pass unchanged."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    error = _write_error(directory, e)
    if error is None:
      raise
    _remove_unfinished(directory)
    raise error from e


def manager(workdir: str, max_to_keep: Optional[int] = 3,
            read_only: bool = False, kind: str = CHECKPOINTS
            ) -> ocp.CheckpointManager:
  """The run's CheckpointManager of `kind` (a folder of the workdir),
  keeping the last `max_to_keep` steps."""
  directory = checkpoint_dir(workdir, kind)
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
      # Done below instead: orbax's own cleanup runs in the background and
      # raises from the next save if a failed write's orphaned threads (in
      # this process) still add files to the folder it deletes.
      cleanup_tmp_directories=False)
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise CheckpointError(f"{directory} is a file, not a folder: move it "
                          "away, or choose another --workdir.")
  with _write_errors_as_checkpoint_errors(directory):
    if not read_only:
      # Orbax creates step folders asynchronously and, when that fails, waits
      # minutes for them before it reports the error; fail fast instead.
      os.makedirs(directory, exist_ok=True)
      with tempfile.NamedTemporaryFile(dir=directory, prefix=".write_test"):
        pass
      if jax.process_index() == 0:
        _remove_unfinished(directory)  # An earlier failed or killed write's.
    return ocp.CheckpointManager(directory, options=options,
                                 item_names=("state", "config"))


def _check_free_space(directory, state: State) -> None:
  """Raises CheckpointError now if the disk cannot hold one more checkpoint.

  On a full disk orbax fails to create the step folder and then waits minutes
  before it reports that; this check makes the common case immediate.
  """
  try:
    stats = os.statvfs(directory)
  except (OSError, AttributeError):  # Not a local path, or no statvfs.
    return
  # Root may use the blocks reserved for it; f_blocks == 0: sizes unknown.
  free = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail
  needed = sum(getattr(leaf, "nbytes", 8) for leaf in jax.tree.leaves(state))
  if stats.f_blocks and free * stats.f_frsize < needed:
    raise CheckpointError(
        f"Cannot write checkpoints to {directory}: "
        f"{os.strerror(errno.ENOSPC)} ({free * stats.f_frsize} bytes free, "
        f"a checkpoint needs about {needed}). " + _FIX)


def best_manager(workdir: str, read_only: bool = False
                 ) -> ocp.CheckpointManager:
  """<workdir>/best/: the one checkpoint with the lowest FD so far."""
  return manager(workdir, max_to_keep=1, read_only=read_only, kind=BEST)


def save(mngr: ocp.CheckpointManager, state: State, record: RunRecord,
         extra: Optional[dict] = None) -> None:
  """Starts an asynchronous save of `state` at its step (no-op if present).

  `extra` (JSON) is stored beside the record, e.g. evaluation results.
  Raises CheckpointError if this or the previous (asynchronous) save could
  not write its files.
  """
  step = int(state.step)
  if step in mngr.all_steps():
    return
  _check_free_space(mngr.directory, state)
  # Hashed now, synchronously: the caller may donate `state` right after.
  run = {**record.to_json(), HASH_KEY: state_sha256(state), **(extra or {})}
  with _write_errors_as_checkpoint_errors(mngr.directory):
    mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(run)))


def wait(mngr: ocp.CheckpointManager) -> None:
  """Waits for pending saves; CheckpointError if one could not be written."""
  with _write_errors_as_checkpoint_errors(mngr.directory):
    mngr.wait_until_finished()


def close(mngr: ocp.CheckpointManager) -> None:
  """`wait`s for pending saves, then closes `mngr` even if one failed; a
  failed save's half-written folder is removed once orbax has stopped."""
  try:
    wait(mngr)
  except BaseException:
    try:
      mngr.close()  # Its wait may raise the same error again.
    except Exception:  # pylint: disable=broad-except
      pass
    if jax.process_index() == 0:  # The process that finalizes the saves.
      _remove_unfinished(mngr.directory)
    raise
  mngr.close()


def _load_run(mngr: ocp.CheckpointManager, step: Optional[int] = None
              ) -> Tuple[int, dict]:
  """(step, the JSON `config` item) of checkpoint `step` (default: latest)."""
  step = mngr.latest_step() if step is None else step
  if step is None:
    hint = ("train with --eval_every to keep one" if
            os.path.basename(str(mngr.directory)) == BEST else "train first")
    raise CheckpointError(
        f"No checkpoint in {mngr.directory}: {hint}, or check --workdir.")
  restored = mngr.restore(step, args=ocp.args.Composite(
      config=ocp.args.JsonRestore()))
  return step, restored["config"]


def load_record(mngr: ocp.CheckpointManager, step: Optional[int] = None
                ) -> Tuple[int, RunRecord]:
  """(step, RunRecord) of checkpoint `step` (default: latest)."""
  step, run = _load_run(mngr, step)
  return step, RunRecord.from_json(run)


def best_records(mngr: ocp.CheckpointManager) -> Optional[list]:
  """The evaluation records saved with the best checkpoint, if any."""
  if mngr.latest_step() is None:
    return None
  return _load_run(mngr)[1].get("eval")


def restore(mngr: ocp.CheckpointManager, target: State,
            step: Optional[int] = None) -> State:
  """Restores checkpoint `step` (default: latest) into the structure `target`.

  `target` is a freshly initialised state of the same configs; it supplies
  the static parts (networks, optimizers) and the array shapes. Raises
  CheckpointError if the arrays do not match the saved `state_sha256`;
  checkpoints saved before it existed are restored unverified.
  """
  step = mngr.latest_step() if step is None else step
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), config=ocp.args.JsonRestore()))
  state, expected = restored["state"], restored["config"].get(HASH_KEY)
  if expected is None:
    logging.info("Checkpoint step %d predates state_sha256; restored "
                 "without verifying it.", step)
  elif state_sha256(state) != expected:
    raise CheckpointError(
        f"Checkpoint step {step} is corrupt: its arrays do not match the "
        f"{HASH_KEY} saved with them ({mngr.directory / str(step)}). Restore "
        "another step, or delete that folder.")
  return state


def _reason(error: BaseException) -> str:
  """One short line saying why a checkpoint could not be restored."""
  lines = str(error).strip().splitlines()
  text = f"{type(error).__name__}: {lines[0] if lines else ''}"
  text = text.split(" See full TensorStore details")[0]  # A long repr.
  return text if len(text) <= 200 else text[:197] + "..."


def _set_aside(mngr: ocp.CheckpointManager, steps: List[int]) -> None:
  """Moves the folders of `steps` to <workdir>/corrupt_checkpoints/.

  Out of checkpoints/ rather than renamed in it: there orbax takes any folder
  named `<digits>` or `<anything>_<digits>` for a step, a bad one would block
  a new save of its step, and cleaning up old steps could delete it.
  """
  multihost = jax.process_count() > 1
  if multihost:  # Every process has finished reading before any folder moves.
    multihost_utils.sync_global_devices("gan_jax_set_aside_start")
  if jax.process_index() == 0:
    corrupt_dir = mngr.directory.parent / CORRUPT_DIR
    corrupt_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for step in steps:
      destination = corrupt_dir / f"{step}-{stamp}"
      suffix = 0
      while destination.exists():
        suffix += 1
        destination = corrupt_dir / f"{step}-{stamp}-{suffix}"
      source = mngr.directory / str(step)
      try:
        source.rename(destination)
      except OSError as e:
        raise CheckpointError(
            f"Cannot move the bad checkpoint {source} to {destination} "
            f"({e.strerror or e}); move or delete it yourself, then rerun."
        ) from e
      logging.warning("Moved the bad checkpoint of step %d to %s; it is kept "
                      "there for inspection.", step, destination)
  if multihost:
    multihost_utils.sync_global_devices("gan_jax_set_aside_done")
  mngr.reload()


def restore_latest_good(
    mngr: ocp.CheckpointManager, target: Callable[[RunRecord], State],
    check: Optional[Callable[[RunRecord], None]] = None,
    set_aside: bool = True) -> Optional[Tuple[int, State]]:
  """(step, state) of the newest checkpoint that restores and verifies.

  None if there is no checkpoint. Each candidate's record is passed to
  `check` (which raises, e.g. ConfigError, to refuse the run) before any of
  its arrays is read, then to `target`, which returns the state to restore
  into. A checkpoint that cannot be read or fails its hash is
  logged and skipped; once an older one restores, the skipped ones are moved
  aside (`set_aside`) so new saves can go past them. If none restores,
  CheckpointError, and nothing is moved.
  """
  steps = sorted(mngr.all_steps(), reverse=True)
  bad = []
  for i, step in enumerate(steps):
    try:
      _, record = load_record(mngr, step)
    except Exception as e:  # pylint: disable=broad-except
      bad.append((step, _reason(e)))
    else:
      if check is not None:
        check(record)
      into = target(record)
      try:
        state = restore(mngr, into, step)
      except Exception as e:  # pylint: disable=broad-except
        bad.append((step, _reason(e)))
      else:
        if bad and set_aside:
          _set_aside(mngr, [s for s, _ in bad])
        return step, state
    logging.warning(
        "Checkpoint step %d in %s cannot be restored (%s); %s.", step,
        mngr.directory, bad[-1][1],
        f"trying step {steps[i + 1]}" if i + 1 < len(steps) else "none left")
  if bad:
    raise CheckpointError(
        f"No checkpoint in {mngr.directory} can be restored ("
        + "; ".join(f"step {s}: {why}" for s, why in bad)
        + "). They are left in place: move them elsewhere to start afresh, "
        "or choose another --workdir.")
  return None
