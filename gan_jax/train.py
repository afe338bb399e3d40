"""The one training loop, for any model family.

    from gan_jax.families import vae
    train_and_evaluate(vae.FAMILY, vae.VAEConfig(), RunConfig(), "/tmp/vae")

The loop owns data, logging, preview grids, checkpoints and resume,
preemption, the NaN guard, evaluation and the best checkpoint; the family
(gan_jax.family.Family) owns everything about the model: its state, its
step and what it can predict. This module imports no family.

What the loop asks of a family's state: `state.step` (int32 [], steps so
far) and `state.rng` (the base key's data, replaced by a new stream after
--on_nan=restore). Everything else goes through the family's functions.

What lands in `workdir`:
  checkpoints/<step>/  orbax checkpoints of the whole state (last few kept).
  best/<step>/  with eval_every: the checkpoint of lowest FD, with its results.
  samples/step_<step>.png  the family's preview grid (for a GAN, samples from
    a fixed latent batch), and samples/<name>_step_<step>.png for its other
    previews (a VAE's reconstructions), every `sample_every` steps.
  events.out.tfevents.*  TensorBoard scalars (the family's metrics,
    steps/sec, images/sec, evaluations) and the grids.

Starting again in the same workdir resumes from the latest good checkpoint:
the state and the data position (a pure function of the step) come back, so
the result equals an uninterrupted run. SIGTERM stops after the current step
with a checkpoint (on several hosts at a step they agree on); a non-finite
metric stops the run or, with on_nan="restore", goes back to the last good
checkpoint with a new key.
"""

import functools
import math
import os
import time
from typing import Any, Callable, Dict, List

import jax
import jax.numpy as jnp
from absl import logging

from gan_jax import (checkpoint, console, data, data_identity, eval_hook,
                     parallel, paths, sampling, summaries)
from gan_jax.config import RunConfig, differences
from gan_jax.errors import (ConfigError, DivergenceError, Preempted,
                            WorkdirError)
from gan_jax.family import DataSpec, Family
from gan_jax.lock import WorkdirLock
from gan_jax.preemption import Preemption

State = Any
# Salt of the new PRNG stream after each --on_nan=restore.
_RESTART_SALT = 0x5EED
MAX_NAN_RESTORES = 3


def _prepare_workdir(workdir: str) -> None:
  problem = paths.unwritable_folder(workdir)
  if problem:
    raise WorkdirError(f"--workdir={workdir} cannot be written ({problem}); "
                       "choose another --workdir.")


def _mean_metrics(history: List[Dict[str, jax.Array]]) -> Dict[str, float]:
  """Averages per-step metrics on the device, then one transfer to the host."""
  means = jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs)), *history)
  return {name: float(value) for name, value in jax.device_get(means).items()}


def _non_finite(metrics: Dict[str, float]) -> str:
  """'name=value, ...' of the non-finite metrics; empty if all are finite."""
  return ", ".join(f"{k}={v}" for k, v in sorted(metrics.items())
                   if not math.isfinite(v))


def _format_eta(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}"


def _scalar_hparams(*configs) -> Dict[str, Any]:
  """The configs' settings that TensorBoard's hparams can show."""
  return {k: v for config in configs for k, v in config.to_dict().items()
          if isinstance(v, (bool, int, float, str))}


def run_record(family: Family, model, run: RunConfig, data_spec: DataSpec,
               data_sha256: str, class_names=()) -> checkpoint.RunRecord:
  """The record saved with each checkpoint; names the data only if its
  content is a known split (`data_identity.KNOWN_SPLITS`), and an image
  folder's classes (what `--label=NAME` means)."""
  known_as = data_identity.KNOWN_SPLITS.get(data_sha256)
  extra = {"data_known_as": "/".join(known_as) if known_as else None}
  if class_names:
    extra["class_names"] = list(class_names)
  return checkpoint.RunRecord(
      family.name, run.to_dict(), model.to_dict(), data_spec, data_sha256,
      extra=extra)


def _resume_check(current: checkpoint.RunRecord, workdir: str
                  ) -> Callable[[checkpoint.RunRecord], None]:
  """A check that the checkpoint's run is the one being resumed (before any
  of its arrays is read): same family, model, run settings and data."""

  def check(saved: checkpoint.RunRecord) -> None:
    if saved.family != current.family:
      raise ConfigError(f"--workdir={workdir} holds a {saved.family} run, and "
                        f"this trains a {current.family}: use a new "
                        "--workdir.")
    differing = (differences(current.run, saved.run,
                             ignore=RunConfig.RESUMABLE_CHANGES)
                 + differences(current.model, saved.model))
    if differing:
      raise ConfigError(
          f"--workdir={workdir} holds a different run: {'; '.join(differing)}."
          " Use a new --workdir, or the saved values to resume.")
    if (saved.data_spec.image_shape != current.data_spec.image_shape or (
        saved.format > 1 and not saved.data_spec.same_data(
            current.data_spec))):
      raise ConfigError(
          f"--workdir={workdir} was trained on data of {saved.data_spec}, "
          f"this data has {current.data_spec}.")
    if saved.data_sha256 is None:
      if saved.run.get("data_dir") != current.run.get("data_dir"):
        logging.warning("The checkpoint predates data hashes, so the data "
                        "cannot be checked to be the same as before.")
    elif saved.data_sha256 != current.data_sha256:
      raise ConfigError(
          f"--workdir={workdir} was trained on other data (content sha256 "
          f"{saved.data_sha256[:12]}..., this is {current.data_sha256[:12]}"
          "...): point --data_dir or --dataset at the data it was trained "
          "on, or use a new --workdir.")

  return check


def _restore_if_present(mngr, state: State, check) -> State:
  """The latest good checkpoint of the run if any, else `state`.

  An unreadable or corrupt newest checkpoint is skipped with a warning and
  moved aside; if none is good, CheckpointError (never a silent fresh start).
  """
  restored = checkpoint.restore_latest_good(mngr, lambda record: state, check)
  if restored is None:
    return state
  saved_step, state = restored
  logging.info("Resuming from the checkpoint at step %d.", saved_step)
  return state


def _warn_if_started_before(workdir: str) -> None:
  """A workdir with preview grids but no checkpoint lost its checkpoints."""
  samples = os.path.join(workdir, "samples")
  grids = sorted(os.listdir(samples)) if os.path.isdir(samples) else []
  if grids:
    logging.warning(
        "%s has no checkpoint, yet preview grids up to %s from an earlier "
        "run: its checkpoints were deleted or moved. Starting from step 0; "
        "stop now (Ctrl-C) and put them back in %s to resume instead.",
        workdir, grids[-1], checkpoint.checkpoint_dir(workdir))


def _reopen_if_deleted(mngr, workdir: str, keep: int, step: int):
  """`mngr`, or a new manager if its folder was deleted during the run, so
  the state of `step` is still saved."""
  if os.path.isdir(str(mngr.directory)):
    return mngr
  logging.warning("%s was deleted during the run, with its checkpoints; "
                  "saving step %d in a new one.", mngr.directory, step)
  try:
    mngr.close()
  except Exception:  # pylint: disable=broad-except
    pass  # Its pending writes went with the folder.
  return checkpoint.manager(workdir, keep)


def _restart_after_divergence(mngr, fresh_state: State, check, sharding,
                              attempt: int) -> State:
  """The last good checkpoint (or the initial state) with a new PRNG stream.

  The new key is derived from the old one and `attempt` and saved with the
  next checkpoint, so a resumed run replays the restarted trajectory.
  """
  checkpoint.wait(mngr)  # A save in flight may be the last good one.
  state = _restore_if_present(mngr, fresh_state, check)
  key = jax.random.fold_in(jax.random.wrap_key_data(state.rng),
                           _RESTART_SALT + attempt)
  return state.replace(rng=jax.device_put(jax.random.key_data(key), sharding))


def _write_previews(writer, workdir: str, step: int, previews) -> None:
  """Writes each preview as samples/[<name>_]step_<step>.png and an image
  summary."""
  for name, images in previews.items():
    grid = sampling.image_grid(sampling.to_uint8(parallel.host_value(images)))
    prefix = "" if name == "samples" else f"{name}_"
    path = os.path.join(workdir, "samples", f"{prefix}step_{step:07d}.png")
    try:
      sampling.save_png(path, grid)
    except OSError as e:
      raise WorkdirError(f"Cannot write {path} ({e.strerror or e}). Free "
                         "disk space, or choose another --workdir; its "
                         "checkpoints are kept.") from e
    writer.write_images(step, {name: grid[None]})


def _log_done(family: Family, workdir: str, start_step: int, done: int,
              summary: Dict[str, float], seconds: float) -> None:
  """The end of a run: what happened, where it is, what to run next."""
  lines = [f"Done: step {done} ({done - start_step} steps in "
           f"{_format_eta(seconds)} this run)."]
  if summary:
    lines.append(f"  Last metrics: {family.describe_metrics(summary)}")
  lines += [f"  Checkpoints: {checkpoint.checkpoint_dir(workdir)}",
            f"  Grids: {os.path.join(workdir, 'samples')}",
            f"  TensorBoard: tensorboard --logdir={workdir}"]
  if family.can("generate"):
    lines.append(f"  Sample: python -m experiments.sample --workdir={workdir}"
                 " --output=samples.npz --grid=samples.png")
  if family.eval_metrics:
    lines.append(f"  Evaluate: python -m experiments.evaluate "
                 f"--workdir={workdir}")
  logging.info("\n".join(lines))


def train_and_evaluate(family: Family, model: Any, run: RunConfig,
                       workdir: str) -> State:
  """Trains (or resumes) `family`'s `model` as `run` says, in `workdir`.

  Returns the final state. On SIGTERM (preemption) or Ctrl-C it finishes
  the current step, saves and waits for a checkpoint, and raises
  `errors.Preempted`; rerunning resumes from there.
  """
  preemption = Preemption()  # From the start: a TERM in set-up counts too.
  lock = WorkdirLock(workdir)
  try:
    return _train(family, model, run, workdir, preemption, lock)
  finally:
    lock.release()
    preemption.restore()


def _train(family: Family, model: Any, run: RunConfig, workdir: str,
           preemption: Preemption, lock: WorkdirLock) -> State:
  run.validate()
  model.validate()
  console.quiet_library_logs()
  _prepare_workdir(workdir)
  if jax.process_index() == 0:  # The processes of one run share the workdir.
    lock.acquire()
  dataset = data.load(run.dataset, run.split, run.data_dir, run.tfds_data_dir,
                      image=run.image_options())
  data_sha256 = dataset.sha256  # Of the data as loaded, which resumes check.
  if family.prepare_data:
    images, labels = family.prepare_data(model, dataset.images,
                                         dataset.labels)
    # New arrays are new data, whose labels the loaded class names do not
    # name; the very arrays given back are the data as loaded.
    if images is not dataset.images or labels is not dataset.labels:
      dataset = data.Dataset(images, labels)
  data_spec = DataSpec.of(dataset.images, dataset.labels)
  logging.info("Data: %d images of shape %s from %s.", len(dataset),
               data_spec.image_shape, run.data_dir or f"TFDS {run.dataset}")
  if dataset.class_names:  # What --label=N will mean.
    logging.info("Classes: %s.", ", ".join(
        f"{i} {name}" for i, name in enumerate(dataset.class_names)))
  record = run_record(family, model, run, data_spec,
                      data_sha256, dataset.class_names)

  mesh = parallel.make_mesh()
  parallel.check_batch_size(run.batch_size, mesh)
  state_sharding = parallel.replicated(mesh)
  batches_per_step = family.batches_per_step(model)
  batch_sharding = parallel.batch_sharding(mesh, batches_per_step)
  logging.info("Devices: %d (%s), %d process(es).", mesh.size,
               jax.devices()[0].platform, jax.process_count())

  def fresh_state():
    return jax.device_put(
        family.init(model, data_spec, jax.random.key(run.seed)),
        state_sharding)

  check = _resume_check(record, workdir)
  mngr = checkpoint.manager(workdir, run.keep_checkpoints)
  state = _restore_if_present(mngr, fresh_state(), check)
  start_step = int(parallel.host_value(state.step))
  if start_step == 0:
    _warn_if_started_before(workdir)
  if start_step > run.num_steps:
    raise ConfigError(
        f"--num_steps={run.num_steps} is below step {start_step}, where the "
        f"run in --workdir={workdir} is: raise it to continue that run, or "
        "use a new --workdir.")
  last_saved = f"step {start_step}" if start_step else "none yet"

  is_chief = jax.process_index() == 0
  # TensorBoard events from process 0 only; the log line is the console.
  writer = (summaries.SummaryWriter(workdir) if is_chief
            else summaries.NullWriter())
  if start_step == 0:
    writer.write_hparams(_scalar_hparams(run, model))

  # Built before the loop: a missing classifier trains here, once.
  evaluation_hook = (eval_hook.EvalHook(family, run, workdir)
                     if run.eval_every else None)

  train_step = jax.jit(family.train_step,
                       in_shardings=(state_sharding, batch_sharding),
                       out_shardings=(state_sharding, state_sharding),
                       donate_argnums=0)
  preview = jax.jit(family.get("preview"))
  preview_key = jax.random.key(run.seed + 1)
  preview_images = jax.device_put(
      data.to_model_range(dataset.images[:run.num_grid_samples]),
      state_sharding)
  # A conditional family's preview also gets the images' classes.
  preview_labels = (
      (jax.device_put(dataset.labels[:run.num_grid_samples], state_sharding),)
      if sampling.num_classes(family, state) else ())

  def batches_from(step):
    return data.prefetch(
        data.batches(dataset, run.batch_size, seed=run.seed, start_step=step,
                     batches_per_step=batches_per_step,
                     by_label=family.batches_by_label,
                     process_index=jax.process_index(),
                     process_count=jax.process_count()),
        put=functools.partial(parallel.put_batch, sharding=batch_sharding))

  batches = batches_from(start_step)
  history = []
  timer_step, timer_start = start_step, time.perf_counter()
  run_start = time.perf_counter()
  nan_restores = 0
  done = start_step
  last_metrics = {}
  if done < run.num_steps:
    logging.info("Compiling the %s step; the first step waits for it.",
                 family.name)
  try:
    while done < run.num_steps:
      state, metrics = train_step(state, next(batches))
      if done == start_step:
        jax.block_until_ready(metrics)  # Once: to say when compiling ended.
        logging.info("Compiled; the first step took %.1f s. Training.",
                     time.perf_counter() - run_start)
      history.append(metrics)
      done += 1
      stopping = preemption.reached(done)
      is_last = done == run.num_steps
      save_now = done % run.checkpoint_every == 0 or is_last or stopping
      if done % run.log_every == 0 or save_now:
        # Checked before any save, so a diverged state is never checkpointed.
        summary = _mean_metrics(history)
        history = []
        bad = _non_finite(summary)
        if bad and (run.on_nan == "stop" or nan_restores == MAX_NAN_RESTORES):
          raise DivergenceError(
              f"Training diverged by step {done}: non-finite {bad}. The last "
              f"good checkpoint ({last_saved}) is kept; try a lower --lr, "
              "another loss, or --on_nan=restore.")
        if bad:
          nan_restores += 1
          batches.close()
          state = _restart_after_divergence(mngr, fresh_state(), check,
                                            state_sharding, nan_restores)
          logging.warning(
              "Non-finite %s by step %d: restarting from step %d with a new "
              "PRNG stream (--on_nan=restore, %d of %d).", bad, done,
              int(parallel.host_value(state.step)), nan_restores, MAX_NAN_RESTORES)
          done = int(parallel.host_value(state.step))
          batches = batches_from(done)
          timer_step, timer_start = done, time.perf_counter()
          continue
        described = family.describe_metrics(summary)
        last_metrics = dict(summary)
        now = time.perf_counter()
        summary["steps_per_sec"] = (done - timer_step) / (now - timer_start)
        summary["images_per_sec"] = summary["steps_per_sec"] * run.batch_size
        timer_step, timer_start = done, now
        writer.write_scalars(done, summary)
        logging.info("step %d/%d  %s  %.1f steps/s  ETA %s", done,
                     run.num_steps, described, summary["steps_per_sec"],
                     _format_eta((run.num_steps - done)
                                 / summary["steps_per_sec"]))
      if done % run.sample_every == 0 or is_last:
        previews = preview(state, preview_key, preview_images,
                           *preview_labels)
        if is_chief:
          _write_previews(writer, workdir, done, previews)
      if evaluation_hook and (done % run.eval_every == 0 or is_last):
        evaluation_hook(state, record, writer)
      if save_now:
        mngr = _reopen_if_deleted(mngr, workdir, run.keep_checkpoints, done)
        checkpoint.save(mngr, state, record)
        last_saved = f"step {done}"
      if stopping:  # The `finally` below waits for the save to complete.
        raise Preempted(
            f"Stopped by {preemption.reason} after step {done}; the "
            f"checkpoint of that step is saved in {workdir}. Rerun the same "
            "command to resume.", preemption.signum)
    if is_chief:
      _log_done(family, workdir, start_step, done, last_metrics,
                time.perf_counter() - run_start)
  finally:
    # Also on errors: finish pending saves so the last good step survives.
    # CheckpointError here if a pending save could not be written.
    batches.close()
    try:
      checkpoint.close(mngr)
      if evaluation_hook:
        checkpoint.close(evaluation_hook.mngr)
    finally:
      writer.close()
  return state
