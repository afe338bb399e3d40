"""The training loop: data in, checkpoints, samples and summaries out.

    train_and_evaluate(GANConfig(arch="dcgan"), workdir="/tmp/mnist_gan")

What lands in `workdir`:
  checkpoints/<step>/  orbax checkpoints of the whole GANState (last few kept).
  samples/step_<step>.png  a grid from a fixed latent batch, every
    `sample_every` steps (eval-mode generator).
  events.out.tfevents.*  TensorBoard scalars (losses, D outputs, accuracies,
    gradient norms, steps/sec) and the sample grids.

Starting again in the same workdir resumes from the latest checkpoint: the
step, both players and optimizers, and the data position (a pure function of
the step) come back, so the result equals an uninterrupted run.
"""

import functools
import math
import os
import signal
import threading
import time
from typing import Dict, List

import jax
import jax.numpy as jnp
from absl import logging
from clu import metric_writers

from gan_jax import checkpoint, data, parallel, sampling, steps
from gan_jax.config import GANConfig
from gan_jax.errors import (ConfigError, DivergenceError, Preempted,
                            WorkdirError)
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
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise WorkdirError(f"--workdir={workdir} is not writable "
                       f"({e.strerror}); choose another --workdir.") from e


def _mean_metrics(history: List[Dict[str, jax.Array]]) -> Dict[str, float]:
  """Averages per-step metrics on the device, then one transfer to the host."""
  means = jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs)), *history)
  return {name: float(value) for name, value in jax.device_get(means).items()}


def _check_finite(metrics: Dict[str, float], step: int,
                  last_saved: str) -> None:
  bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
  if bad:
    raise DivergenceError(
        f"Training diverged by step {step}: non-finite "
        f"{', '.join(f'{k}={v}' for k, v in sorted(bad.items()))}. "
        f"The last good checkpoint ({last_saved}) is kept; try a lower "
        "--lr or another --loss.")


class _SigtermFlag:
  """Records SIGTERM (preemption) so the loop stops after the current step.

  Only the main thread may install signal handlers; elsewhere (a loop run
  from a worker thread) SIGTERM keeps its default behaviour.
  """

  def __init__(self):
    self.received = False
    self._previous = None
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM: stopping after the current step.")
    self.received = True

  def restore(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _format_eta(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}"


def _restore_if_present(mngr, state: GANState, config: GANConfig,
                        workdir: str, image_shape) -> GANState:
  """The latest checkpoint of `workdir` if any (checked against `config`)."""
  if mngr.latest_step() is None:
    return state
  saved_step, saved_config, saved_shape = checkpoint.load_config(mngr)
  config.check_resumable_from(saved_config, workdir)
  if saved_shape != image_shape:
    raise ConfigError(f"--workdir={workdir} was trained on images of shape "
                      f"{saved_shape}, this data has {image_shape}.")
  logging.info("Resuming from the checkpoint at step %d.", saved_step)
  return checkpoint.restore(mngr, state)


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


def train_and_evaluate(config: GANConfig, workdir: str) -> GANState:
  """Trains (or resumes) the GAN of `config` in `workdir`; returns its state.

  On SIGTERM (preemption) it finishes the current step, saves and waits for a
  checkpoint, and raises `errors.Preempted`; rerunning resumes from there.
  """
  sigterm = _SigtermFlag()  # From the start: a TERM during set-up counts too.
  try:
    return _train(config, workdir, sigterm)
  finally:
    sigterm.restore()


def _train(config: GANConfig, workdir: str, sigterm: "_SigtermFlag"
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

  train_step = jax.jit(steps.train_step,
                       in_shardings=(state_sharding, batch_sharding),
                       out_shardings=(state_sharding, state_sharding),
                       donate_argnums=0)
  generate = jax.jit(sampling.generate)
  fixed_z = steps.sample_latents(jax.random.key(config.seed + 1),
                                 config.num_grid_samples, config.latent_dim)
  batches = data.prefetch(
      data.batches(dataset, config.batch_size, seed=config.seed,
                   start_step=start_step, batches_per_step=config.d_steps,
                   process_index=jax.process_index(),
                   process_count=jax.process_count()),
      put=functools.partial(parallel.put_batch, sharding=batch_sharding))

  history = []
  timer_step, timer_start = start_step, time.perf_counter()
  try:
    for step in range(start_step, config.num_steps):
      state, metrics = train_step(state, next(batches))
      history.append(metrics)
      done = step + 1
      stopping = sigterm.received
      is_last = done == config.num_steps
      save_now = done % config.checkpoint_every == 0 or is_last or stopping
      if done % config.log_every == 0 or save_now or is_last:
        # Checked before any save, so a diverged state is never checkpointed.
        summary = _mean_metrics(history)
        history = []
        _check_finite(summary, done, last_saved)
        now = time.perf_counter()
        summary["steps_per_sec"] = (done - timer_step) / (now - timer_start)
        summary["images_per_sec"] = (summary["steps_per_sec"]
                                     * config.batch_size)
        timer_step, timer_start = done, now
        _log_summary(writer, done, config.num_steps, summary)
      if (done % config.sample_every == 0 or is_last) and is_chief:
        _write_sample_grid(writer, workdir, done, generate(state.g, fixed_z))
      if save_now:
        checkpoint.save(mngr, state, config, image_shape)
        last_saved = f"step {done}"
      if stopping:  # The `finally` below waits for the save to complete.
        raise Preempted(
            f"Stopped by SIGTERM after step {done}; the checkpoint of that "
            f"step is saved in {workdir}. Rerun the same command to resume.")
  finally:
    # Also on errors: finish pending saves so the last good step survives.
    mngr.wait_until_finished()
    mngr.close()
    writer.close()
  return state
