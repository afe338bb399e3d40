"""Opening a saved run: its family, configs and state from a workdir.

    run = runs.load("/tmp/mnist_vae")            # latest good checkpoint
    images = sampling.sample(run.family, run.state, 64)
    run = runs.load(workdir, "best")             # or a step number

The family is the one the checkpoint records (gan_jax.families); a run of
your own family, or one that used your own networks or loss, is opened by
passing them: runs.load(workdir, family=my_family, model=my_model_config).
"""

import dataclasses
import os
from typing import Any, Optional, Sequence, Union

import jax
from absl import logging
import numpy as np

from gan_jax import checkpoint, families, paths, sampling
from gan_jax.config import RunConfig, differences
from gan_jax.errors import CheckpointError, ConfigError, WorkdirError
from gan_jax.family import Family

Which = Union[int, str, None]


@dataclasses.dataclass(frozen=True)
class Run:
  """A restored checkpoint of a training run."""
  family: Family
  model: Any  # The family's model config.
  run: RunConfig
  record: checkpoint.RunRecord
  step: int
  state: Any


def parse_which(text: str) -> Which:
  """--checkpoint's value: "latest", "best" or a step number."""
  if text.isdigit():
    return int(text)
  if text not in ("latest", "best"):
    raise ConfigError(f"--checkpoint={text!r} must be latest, best or a "
                      "step number.")
  return text


def model_config(family: Family, record: checkpoint.RunRecord,
                 model: Optional[Any] = None) -> Any:
  """The model config of `record`; `model` if given (it must match)."""
  if model is not None:
    differing = differences(model.to_dict(), record.model)
    if differing:
      raise ConfigError("The model config passed differs from the run's: "
                        f"{'; '.join(differing)}.")
    return model
  config = family.config.from_dict(record.model)
  custom = config.custom_fields()
  if custom:
    raise ConfigError(
        f"This run used parts passed in code ({', '.join(custom)}: "
        f"{', '.join(str(record.model[c]) for c in custom)}); open it with "
        "runs.load(workdir, model=<the same model config>).")
  return config


def _manager(workdir: str, which: Which):
  if which == "best":
    return checkpoint.best_manager(workdir, read_only=True)
  directory = checkpoint.checkpoint_dir(workdir)
  if not os.path.isdir(directory):
    raise CheckpointError(f"No checkpoint in {directory}: train first, or "
                          "check --workdir.")
  return checkpoint.manager(workdir, max_to_keep=None, read_only=True)


def load(workdir: str, which: Which = "latest", *,
         family: Optional[Family] = None, model: Optional[Any] = None) -> Run:
  """The run in `workdir` at checkpoint `which`: "latest" (or None), "best"
  (kept by --eval_every) or a step number.

  "latest" is the newest checkpoint that restores and matches its hash; a
  corrupt newer one is skipped with a warning (and left where it is).
  """
  mngr = _manager(workdir, which)
  try:
    opened = {}

    def target(record):
      fam = family or families.get(record.family)
      if fam.name != record.family:
        raise ConfigError(f"{workdir} holds a {record.family} run, not "
                          f"{fam.name}.")
      config = model_config(fam, record, model)
      opened.update(family=fam, model=config, record=record)
      return fam.init(config, record.data_spec, jax.random.key(0))

    if isinstance(which, int):
      if which not in mngr.all_steps():
        raise CheckpointError(
            f"No checkpoint of step {which} in {mngr.directory}; it has "
            f"steps {', '.join(map(str, mngr.all_steps())) or 'none'}.")
      step, record = checkpoint.load_record(mngr, which)
      state = checkpoint.restore(mngr, target(record), step)
    else:
      restored = checkpoint.restore_latest_good(mngr, target, set_aside=False)
      if restored is None:
        checkpoint.load_record(mngr)  # Raises "No checkpoint in ...".
      step, state = restored
  finally:
    mngr.close()
  return Run(opened["family"], opened["model"],
             RunConfig.from_dict(opened["record"].run), opened["record"],
             step, state)


def _writable(path: str, flag: str) -> None:
  """UserError now, rather than after sampling, if `path` can't be written."""
  problem = paths.unwritable_folder(os.path.dirname(os.path.abspath(path)))
  if problem is None and os.path.isdir(path):
    problem = f"{path} is a folder"
  if problem:
    raise WorkdirError(f"{flag}={path} cannot be written ({problem}); "
                       "choose another path.")


def sample_to_files(workdir: str, num_samples: int, output: str,
                    grid: Optional[str] = None, step: Which = None,
                    seed: int = 0, labels: Sequence[str] = ()) -> np.ndarray:
  """Writes `num_samples` images of a run to `output` (.npz, key "images";
  for a conditional model also "labels", the classes drawn: `labels`, see
  sampling.requested_labels, default all in turn), and the first 64 as a PNG
  grid if `grid` is given."""
  if not output.endswith(".npz"):
    raise ConfigError(f"--output={output} must end in .npz (numpy would "
                      "append it and write another file than the one named).")
  _writable(output, "--output")
  if grid:
    _writable(grid, "--grid")
  run = load(workdir, step)
  classes = sampling.num_classes(run.family, run.state)
  arrays = {}
  if labels or classes:
    arrays["labels"] = sampling.requested_labels(
        labels, num_samples, classes,
        run.record.extra.get("class_names", ()))
  images = sampling.sample(run.family, run.state, num_samples, seed=seed,
                           labels=arrays.get("labels"))
  tmp = f"{output}.tmp-{os.getpid()}.npz"
  np.savez_compressed(tmp, images=images, **arrays)
  os.replace(tmp, output)
  if grid:
    sampling.save_png(grid, sampling.image_grid(images[:64]))
  logging.info("Wrote %d samples of step %d to %s.", num_samples, run.step,
               output)
  return images
