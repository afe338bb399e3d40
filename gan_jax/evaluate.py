"""Evaluating saved runs and sample files: the library side of
`python -m experiments.evaluate`.

    config = EvalConfig(dataset="fashion_mnist", data_dir=...)
    records, step = evaluate_checkpoint(config, workdir)  # latest checkpoint
    records = evaluate_samples(config, "samples.npz")     # any codebase's
    write_records(records, "eval.json")

Scoring itself (`EvalConfig`, `Evaluator`) is gan_jax.evaluator, which the
training loop uses for --eval_every.
"""

import dataclasses
import json
import os
import zipfile
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from absl import logging
import numpy as np

from gan_jax import runs
from gan_jax.errors import ConfigError, DataError
from gan_jax.evaluator import EvalConfig, Evaluator  # pylint: disable=unused-import
from gan_jax.image_preprocessing import ImageOptions

Records = List[Dict[str, Any]]


def evaluate_checkpoint(config: EvalConfig, workdir: str,
                        which: Union[str, int] = "latest",
                        view: Optional[str] = None) -> Tuple[Records, int]:
  """Scores checkpoint `which` ("latest", "best" or a step) of a run.

  The dataset, data_dir and tfds_data_dir default to the run's own. `view`
  names one of the family's views of the state (e.g. the GAN's "live"
  generator instead of its EMA). Returns the records, which name the
  content hash of the run's training data and any view, and the
  checkpoint's step.
  """
  run = runs.load(workdir, which)
  state = run.state
  context = {}
  if view:
    state = run.family.view(view)(state)
    context = {"view": view}
  config = dataclasses.replace(
      config, dataset=config.dataset or run.run.dataset,
      data_dir=config.data_dir or run.run.data_dir,
      tfds_data_dir=config.tfds_data_dir or run.run.tfds_data_dir,
      image=(config.image if config.image != ImageOptions()
             else run.run.image_options()))
  records = Evaluator(config, run.family).generated(
      state, family=run.family.name, source=os.path.abspath(workdir),
      checkpoint=str(which), step=run.step,
      train_data_sha256=run.record.data_sha256, **context)
  return records, run.step


def load_samples(path: str) -> np.ndarray:
  """The images of an .npz: key "images" (or its only array), [N, H, W, C]
  with N >= 2, uint8 (or integers in [0, 255], or float in [-1, 1])."""
  if not os.path.isfile(path):
    raise DataError(f"--samples={path}: no such file.")
  if not zipfile.is_zipfile(path):
    with open(path, "rb") as f:
      start = f.read(16)
    raise DataError(f"--samples={path} is not an .npz file (a zip of .npy "
                    f"arrays, as np.savez writes); it starts with {start!r}.")
  try:
    with np.load(path, allow_pickle=False) as saved:
      keys = list(saved.keys())
      key = "images" if "images" in keys else (keys[0] if len(keys) == 1
                                               else None)
      if key is None:
        raise DataError(f"--samples={path} holds {', '.join(keys)}; name the "
                        "image array `images`.")
      images = saved[key]
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise DataError(f"--samples={path} is not a readable .npz file "
                    f"({type(e).__name__}: {e}).") from e
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise DataError(f"--samples={path}: images must be [N, H, W, C] with 1 or "
                    f"3 channels, got shape {images.shape}.")
  if len(images) < 2:
    raise DataError(f"--samples={path} holds {len(images)} image(s); the "
                    "metrics need at least 2 (10,000 for comparable FDs).")
  if np.issubdtype(images.dtype, np.integer) and images.dtype != np.uint8:
    if images.min() < 0 or images.max() > 255:
      raise DataError(f"--samples={path}: {images.dtype} images must lie in "
                      f"[0, 255] (got [{images.min()}, {images.max()}]).")
    images = images.astype(np.uint8)
  elif not np.issubdtype(images.dtype, np.integer):
    if not np.issubdtype(images.dtype, np.floating):
      raise DataError(f"--samples={path}: images are {images.dtype}; save "
                      "uint8 [0, 255] or float [-1, 1].")
    if images.min() < -1 or images.max() > 1:
      raise DataError(f"--samples={path}: float images must lie in [-1, 1] "
                      f"(got [{images.min():.3g}, {images.max():.3g}]); save "
                      "uint8 [0, 255] instead.")
  return images


def load_labels(path: str, num_images: int) -> Optional[np.ndarray]:
  """The `labels` array of an .npz (the classes its images were drawn for),
  int [N]; None if it has none."""
  with np.load(path, allow_pickle=False) as saved:
    if "labels" not in saved:
      return None
    labels = saved["labels"]
  if labels.shape != (num_images,) or not np.issubdtype(labels.dtype,
                                                        np.integer):
    raise DataError(f"--samples={path}: `labels` must be integers, one per "
                    f"image ({num_images}), got {labels.dtype} "
                    f"{labels.shape}.")
  return labels


def evaluate_samples(config: EvalConfig, path: str) -> Records:
  """Scores the images of an .npz file (from this codebase or any other);
  with a `labels` array (the classes requested), class_accuracy too."""
  config.validate()  # Flag errors first, before reading anything.
  images = load_samples(path)
  return Evaluator(config)(images, labels=load_labels(path, len(images)),
                           source=os.path.abspath(path))


def write_records(records: Sequence[Dict[str, Any]], path: str) -> None:
  """Writes the records as a JSON list, atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(list(records), f, indent=2)
  os.replace(tmp, path)


def run(config: EvalConfig, *, workdir: Optional[str] = None,
        samples: Optional[str] = None, which: Union[str, int] = "latest",
        output: Optional[str] = None, view: Optional[str] = None) -> Records:
  """Scores a run's checkpoint or an .npz and writes the records as JSON.

  Exactly one of `workdir` and `samples`. `output` defaults to
  <workdir>/eval/<which>_step_<step>[_<view>].json or <samples>.eval.json.
  """
  if view and samples is not None:
    raise ConfigError("--view picks a model of a run: it needs --workdir, "
                      "not --samples.")
  if (workdir is None) == (samples is None):
    raise ConfigError("Pass exactly one of --workdir (score a run) and "
                      "--samples (score an .npz of images).")
  if workdir is not None:
    records, step = evaluate_checkpoint(config, workdir, which, view)
    suffix = f"_{view}" if view else ""
    output = output or os.path.join(workdir, "eval",
                                    f"{which}_step_{step:07d}{suffix}.json")
  else:
    records = evaluate_samples(config, samples)
    output = output or f"{os.path.splitext(samples)[0]}.eval.json"
  write_records(records, output)
  logging.info("Wrote %d results to %s.", len(records), output)
  return records
