"""The training loop: data in, checkpoints, samples and summaries out.

    train_and_evaluate(GANConfig(arch="dcgan"), workdir="/tmp/mnist_gan")

What lands in `workdir`:
  checkpoints/<step>/  orbax checkpoints of the whole GANState (last few kept).
  best/<step>/  with eval_every: the checkpoint of lowest FD, with its results.
  samples/step_<step>.png  a grid from a fixed latent batch, every
    `sample_every` steps (eval-mode generator).
  events.out.tfevents.*  TensorBoard scalars (losses, D outputs, accuracies,
    gradient norms, steps/sec) and the sample grids.

Starting again in the same workdir resumes from the latest good checkpoint:
the step, both players and optimizers, the PRNG key and the data position (a
pure function of the step) come back, so the result equals an uninterrupted
run. SIGTERM stops after the current step with a checkpoint (on several hosts
at a step they agree on); a non-finite loss stops the run or, with
on_nan="restore", goes back to the last good checkpoint with a new key.
"""

import functools
import math
import os
import signal
import tempfile
import threading
import time
from typing import Dict, List

import jax
import jax.numpy as jnp
from absl import logging
from clu import metric_writers
from jax.experimental import multihost_utils

from gan_jax import checkpoint, data, evaluate, parallel, sampling, steps
from gan_jax.config import GANConfig
from gan_jax.errors import (ConfigError, DivergenceError, Preempted,
                            WorkdirError)
from gan_jax.metrics import evaluation
from gan_jax.state import GANState, create_state


def _quiet_orbax_info_logs() -> None:
  """Orbax logs dozens of INFO lines per save; keep its warnings only."""
  logger = logging.get_absl_logger()
  if not any(getattr(f, "is_gan_jax_filter", False) for f in logger.filters):
    def keep(record):
      return record.levelno >= logging.converter.STANDARD_WARNING or (
          f"{os.sep}orbax{os.sep}" not in record.pathname)
    keep.is_gan_jax_filter = True
    logger.addFilter(keep)


def _prepare_workdir(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
    # A unique name: every process of a multi-host run probes the same dir.
    with tempfile.NamedTemporaryFile(dir=workdir, prefix=".write_test"):
      pass
  except OSError as e:
    raise WorkdirError(f"--workdir={workdir} is not writable "
                       f"({e.strerror}); choose another --workdir.") from e


def _mean_metrics(history: List[Dict[str, jax.Array]]) -> Dict[str, float]:
  """Averages per-step metrics on the device, then one transfer to the host."""
  means = jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs)), *history)
  return {name: float(value) for name, value in jax.device_get(means).items()}


def _non_finite(metrics: Dict[str, float]) -> str:
  """'name=value, ...' of the non-finite metrics; empty if all are finite."""
  return ", ".join(f"{k}={v}" for k, v in sorted(metrics.items())
                   if not math.isfinite(v))


class _Preemption:
  """Says when to stop for a preemption (SIGTERM): after the current step.

  One process: a SIGTERM handler sets a flag (only the main thread may
  install one; elsewhere SIGTERM keeps its default behaviour). Several
  processes: JAX's preemption sync point, so that all hosts stop and save at
  the same step even though only some of them got the signal.
  """

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
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


# Salt of the new PRNG stream after each --on_nan=restore.
_RESTART_SALT = 0x5EED
MAX_NAN_RESTORES = 3


def _restart_after_divergence(mngr, config: GANConfig, workdir: str,
                              image_shape, state_sharding,
                              attempt: int) -> GANState:
  """The last good checkpoint (or the initial state) with a new PRNG stream.

  The new key is derived from the old one and `attempt` and saved with the
  next checkpoint, so a resumed run replays the restarted trajectory.
  """
  checkpoint.wait(mngr)  # A save in flight may be the last good one.
  state = jax.device_put(create_state(config, image_shape), state_sharding)
  state = _restore_if_present(mngr, state, config, workdir, image_shape)
  key = jax.random.fold_in(jax.random.wrap_key_data(state.rng),
                           _RESTART_SALT + attempt)
  return state.replace(rng=jax.device_put(jax.random.key_data(key),
                                          state_sharding))


def _format_eta(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}"


def _restore_if_present(mngr, state: GANState, config: GANConfig,
                        workdir: str, image_shape) -> GANState:
  """The latest good checkpoint of `workdir` if any (checked against `config`).

  An unreadable or corrupt newest checkpoint is skipped with a warning and
  moved aside; if none is good, CheckpointError (never a silent fresh start).
  """

  def check(saved_config, saved_shape):
    # Before any array is read: another run fails here, not on a shape.
    config.check_resumable_from(saved_config, workdir)
    if saved_shape != image_shape:
      raise ConfigError(f"--workdir={workdir} was trained on images of shape "
                        f"{saved_shape}, this data has {image_shape}.")

  restored = checkpoint.restore_latest_good(mngr, state, check)
  if restored is None:
    return state
  saved_step, state = restored
  logging.info("Resuming from the checkpoint at step %d.", saved_step)
  return state


def _log_summary(writer, step: int, num_steps: int,
                 summary: Dict[str, float]) -> None:
  writer.write_scalars(step, summary)
  logging.info(
      "step %d/%d  d_loss %.3f  g_loss %.3f  D(x) %.2f  D(G(z)) %.2f  "
      "acc real/fake %.2f/%.2f  %.1f steps/s  ETA %s", step, num_steps,
      summary["d_loss"], summary["g_loss"], summary["d_real"],
      summary["d_fake"], summary["d_acc_real"], summary["d_acc_fake"],
      summary["steps_per_sec"],
      _format_eta((num_steps - step) / summary["steps_per_sec"]))


def _write_sample_grid(writer, workdir: str, step: int, images) -> None:
  grid = sampling.image_grid(sampling.to_uint8(images))
  sampling.save_png(
      os.path.join(workdir, "samples", f"step_{step:07d}.png"), grid)
  writer.write_images(step, {"samples": grid[None]})


def _protocol(records) -> tuple:
  """What must match for two FDs to be comparable."""
  first = records[0]
  return tuple(first[k] for k in ("extractor_sha256", "reference_sha256",
                                  "num_generated", "seed"))


class _Evaluation:
  """--eval_every: FD and classifier score of G, and the best checkpoint.

  The checkpoint with the lowest FD so far is kept in <workdir>/best/ (with
  its evaluation records), beside the latest ones in checkpoints/. Samples use
  the evaluation seed, so `experiments.evaluate --checkpoint=best` reproduces
  the logged FD.
  """

  def __init__(self, config: GANConfig, workdir: str):
    self.evaluator = evaluate.Evaluator(evaluate.EvalConfig.for_run(
        config, metrics=evaluation.TRAINING_METRICS))
    self.mngr = checkpoint.best_manager(workdir)
    saved = checkpoint.best_records(self.mngr)
    self.best_fd = evaluation.by_metric(saved)["fd"] if saved else math.inf
    self.best_protocol = _protocol(saved) if saved else None

  def __call__(self, state: GANState, config: GANConfig, image_shape,
               writer) -> None:
    start = time.perf_counter()
    # A process-local copy: every process scores the same samples by itself.
    g_state = jax.device_put(jax.device_get(state.g), jax.local_devices()[0])
    step = int(state.step)
    records = self.evaluator.generated(g_state, step=step)
    scores = evaluation.by_metric(records)
    if self.best_protocol not in (None, _protocol(records)):
      logging.warning("The evaluation protocol changed since best/ was kept; "
                      "its FD is not comparable and will be replaced.")
      self.best_fd = math.inf
    improved = scores["fd"] < self.best_fd
    if improved:
      self.best_fd, self.best_protocol = scores["fd"], _protocol(records)
      checkpoint.save(self.mngr, state, config, image_shape,
                      extra={"eval": records})
    seconds = time.perf_counter() - start
    writer.write_scalars(step, {**{f"eval/{k}": v for k, v in scores.items()},
                                "eval/seconds": seconds})
    logging.info("step %d: FD %.3f%s, classifier score %.3f (%d samples, "
                 "%.1f s)", step, scores["fd"], " (best)" if improved else "",
                 scores["score"], records[0]["num_generated"], seconds)


def train_and_evaluate(config: GANConfig, workdir: str) -> GANState:
  """Trains (or resumes) the GAN of `config` in `workdir`; returns its state.

  On SIGTERM (preemption) it finishes the current step, saves and waits for a
  checkpoint, and raises `errors.Preempted`; rerunning resumes from there.
  """
  preemption = _Preemption()  # From the start: a TERM in set-up counts too.
  try:
    return _train(config, workdir, preemption)
  finally:
    preemption.restore()


def _train(config: GANConfig, workdir: str, preemption: _Preemption
           ) -> GANState:
  config.validate()
  _quiet_orbax_info_logs()
  _prepare_workdir(workdir)
  dataset = data.load(config.dataset, config.split, config.data_dir)
  image_shape = dataset.image_shape
  logging.info("Data: %d images of shape %s from %s.", len(dataset),
               image_shape, config.data_dir or f"TFDS {config.dataset}")

  mesh = parallel.make_mesh()
  parallel.check_batch_size(config.batch_size, mesh)
  state_sharding = parallel.replicated(mesh)
  batch_sharding = parallel.batch_sharding(mesh, config.d_steps)
  logging.info("Devices: %d (%s), %d process(es).", mesh.size,
               jax.devices()[0].platform, jax.process_count())

  mngr = checkpoint.manager(workdir, config.keep_checkpoints)
  state = jax.device_put(create_state(config, image_shape), state_sharding)
  state = _restore_if_present(mngr, state, config, workdir, image_shape)
  start_step = int(state.step)
  last_saved = f"step {start_step}" if start_step else "none yet"

  is_chief = jax.process_index() == 0
  # TensorBoard events from process 0 only; the log line is the console.
  writer = (metric_writers.AsyncWriter(metric_writers.SummaryWriter(workdir))
            if is_chief else metric_writers.MultiWriter([]))
  if start_step == 0:
    writer.write_hparams(
        {k: v for k, v in config.to_dict().items() if v is not None})

  # Built before the loop: a missing classifier trains here, once.
  evaluation_hook = _Evaluation(config, workdir) if config.eval_every else None

  train_step = jax.jit(steps.train_step,
                       in_shardings=(state_sharding, batch_sharding),
                       out_shardings=(state_sharding, state_sharding),
                       donate_argnums=0)
  generate = jax.jit(sampling.generate)
  fixed_z = steps.sample_latents(jax.random.key(config.seed + 1),
                                 config.num_grid_samples, config.latent_dim)

  def batches_from(step):
    return data.prefetch(
        data.batches(dataset, config.batch_size, seed=config.seed,
                     start_step=step, batches_per_step=config.d_steps,
                     process_index=jax.process_index(),
                     process_count=jax.process_count()),
        put=functools.partial(parallel.put_batch, sharding=batch_sharding))

  batches = batches_from(start_step)
  history = []
  timer_step, timer_start = start_step, time.perf_counter()
  nan_restores = 0
  done = start_step
  try:
    while done < config.num_steps:
      state, metrics = train_step(state, next(batches))
      history.append(metrics)
      done += 1
      stopping = preemption.reached(done)
      is_last = done == config.num_steps
      save_now = done % config.checkpoint_every == 0 or is_last or stopping
      if done % config.log_every == 0 or save_now or is_last:
        # Checked before any save, so a diverged state is never checkpointed.
        summary = _mean_metrics(history)
        history = []
        bad = _non_finite(summary)
        if bad and (config.on_nan == "stop"
                    or nan_restores == MAX_NAN_RESTORES):
          raise DivergenceError(
              f"Training diverged by step {done}: non-finite {bad}. The last "
              f"good checkpoint ({last_saved}) is kept; try a lower --lr, "
              "another --loss, or --on_nan=restore.")
        if bad:
          nan_restores += 1
          batches.close()
          state = _restart_after_divergence(mngr, config, workdir,
                                            image_shape, state_sharding,
                                            nan_restores)
          logging.warning(
              "Non-finite %s by step %d: restarting from step %d with a new "
              "PRNG stream (--on_nan=restore, %d of %d).", bad, done,
              int(state.step), nan_restores, MAX_NAN_RESTORES)
          done = int(state.step)
          batches = batches_from(done)
          timer_step, timer_start = done, time.perf_counter()
          continue
        now = time.perf_counter()
        summary["steps_per_sec"] = (done - timer_step) / (now - timer_start)
        summary["images_per_sec"] = (summary["steps_per_sec"]
                                     * config.batch_size)
        timer_step, timer_start = done, now
        _log_summary(writer, done, config.num_steps, summary)
      if (done % config.sample_every == 0 or is_last) and is_chief:
        _write_sample_grid(writer, workdir, done, generate(state.g, fixed_z))
      if evaluation_hook and (done % config.eval_every == 0 or is_last):
        evaluation_hook(state, config, image_shape, writer)
      if save_now:
        checkpoint.save(mngr, state, config, image_shape)
        last_saved = f"step {done}"
      if stopping:  # The `finally` below waits for the save to complete.
        raise Preempted(
            f"Stopped by SIGTERM after step {done}; the checkpoint of that "
            f"step is saved in {workdir}. Rerun the same command to resume.")
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
