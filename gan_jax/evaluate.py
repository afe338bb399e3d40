"""Evaluating runs and sample files: generate, extract features, score.

    config = EvalConfig(dataset="fashion_mnist", data_dir=...)
    records, step = evaluate_checkpoint(config, workdir)  # latest checkpoint
    records = evaluate_samples(config, "samples.npz")     # any codebase's
    write_records(records, "eval.json")

`experiments/evaluate.py` wraps these; the training loop uses `Evaluator`
with `TRAINING_METRICS` for --eval_every.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from absl import logging
import numpy as np

from gan_jax import sampling
from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics import evaluation, extractors

Records = List[Dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """What to compare against, through which network, with which metrics."""
  dataset: Optional[str] = None  # Names the real data and its classifier.
  data_dir: Optional[str] = None  # IDX folder of that dataset (offline).
  reference_split: str = "test"
  num_real: Optional[int] = None  # First N images of the split; None: all.
  num_samples: int = 10_000  # Generated images per evaluation.
  extractor: str = "classifier"  # A key of extractors.EXTRACTORS.
  inception_weights: Optional[str] = None
  metrics: Tuple[str, ...] = tuple(evaluation.METRICS)
  seed: int = 0  # Of the latents and of KID's subsets.
  cache_dir: Optional[str] = None  # Reference features; None: the default.
  classifier_root: Optional[str] = None  # None: the default cache.

  @classmethod
  def for_run(cls, config, **changes: Any) -> "EvalConfig":
    """The evaluation settings of a training run's GANConfig (--eval_*)."""
    return cls(**{**dict(
        dataset=config.dataset, data_dir=config.data_dir,
        reference_split=config.eval_split,
        num_samples=config.eval_num_samples, extractor=config.eval_extractor,
        inception_weights=config.inception_weights), **changes})

  def validate(self) -> "EvalConfig":
    if self.num_samples < 2:
      raise ConfigError(f"--num_samples={self.num_samples} must be at least "
                        "2 (a covariance needs two samples).")
    if self.extractor not in extractors.EXTRACTORS:
      raise ConfigError(f"--extractor={self.extractor!r} is not one of "
                        f"{', '.join(sorted(extractors.EXTRACTORS))}.")
    evaluation.check_metrics(self.metrics)
    if not self.dataset:
      raise ConfigError("Evaluation needs --dataset (mnist, fashion_mnist, "
                        "...) to pick the real data and its classifier.")
    return self


class Evaluator:
  """Scores images against one reference; builds the extractor once."""

  def __init__(self, config: EvalConfig):
    self.config = config.validate()
    self.extractor = extractors.create(
        config.extractor, dataset=config.dataset, data_dir=config.data_dir,
        classifier_root=config.classifier_root,
        inception_weights=config.inception_weights)
    self.reference = evaluation.real_reference(
        self.extractor, config.dataset, config.reference_split,
        config.data_dir, config.num_real, config.cache_dir)

  def __call__(self, images, **context: Any) -> Records:
    """uint8 [N, H, W, C] -> one record per metric (see evaluation.evaluate)."""
    return evaluation.evaluate(images, self.extractor, self.reference,
                               metrics=self.config.metrics,
                               seed=self.config.seed, **context)

  def generated(self, g_state, **context: Any) -> Records:
    """Draws `num_samples` from the generator of `g_state` and scores them."""
    images = sampling.sample(g_state, self.config.num_samples,
                             seed=self.config.seed)
    return self(images, **context)


def evaluate_checkpoint(config: EvalConfig, workdir: str,
                        which: Union[str, int] = "latest"
                        ) -> Tuple[Records, int]:
  """Scores checkpoint `which` ("latest", "best" or a step) of a run.

  The dataset and data_dir default to the run's own. Returns the records and
  the checkpoint's step.
  """
  g_state, run, step = sampling.load_generator(workdir, which)
  config = dataclasses.replace(config, dataset=config.dataset or run.dataset,
                               data_dir=config.data_dir or run.data_dir)
  records = Evaluator(config).generated(
      g_state, source=os.path.abspath(workdir), checkpoint=str(which),
      step=step)
  return records, step


def load_samples(path: str) -> np.ndarray:
  """The images of an .npz: key "images" (or its only array), [N, H, W, C]."""
  try:
    with np.load(path) as saved:
      keys = list(saved.keys())
      key = "images" if "images" in keys else (keys[0] if len(keys) == 1
                                               else None)
      if key is None:
        raise DataError(f"--samples={path} holds {', '.join(keys)}; name the "
                        "image array `images`.")
      images = saved[key]
  except (OSError, ValueError) as e:
    raise DataError(f"--samples={path} is not a readable .npz file "
                    f"({type(e).__name__}: {e}).") from e
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise DataError(f"--samples={path}: images must be [N, H, W, C] with 1 or "
                    f"3 channels, got shape {images.shape}.")
  if images.dtype != np.uint8 and (images.min() < -1 or images.max() > 1):
    raise DataError(f"--samples={path}: float images must lie in [-1, 1] "
                    f"(got [{images.min():.3g}, {images.max():.3g}]); save "
                    "uint8 [0, 255] instead.")
  return images


def evaluate_samples(config: EvalConfig, path: str) -> Records:
  """Scores the images of an .npz file (from this codebase or any other)."""
  config.validate()  # Flag errors first, before reading anything.
  images = load_samples(path)
  return Evaluator(config)(images, source=os.path.abspath(path))


def write_records(records: Sequence[Dict[str, Any]], path: str) -> None:
  """Writes the records as a JSON list, atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(list(records), f, indent=2)
  os.replace(tmp, path)


def run(config: EvalConfig, *, workdir: Optional[str] = None,
        samples: Optional[str] = None, which: Union[str, int] = "latest",
        output: Optional[str] = None) -> Records:
  """Scores a run's checkpoint or an .npz and writes the records as JSON.

  Exactly one of `workdir` and `samples`. `output` defaults to
  <workdir>/eval/<which>_step_<step>.json or <samples>.eval.json.
  """
  if (workdir is None) == (samples is None):
    raise ConfigError("Pass exactly one of --workdir (score a run) and "
                      "--samples (score an .npz of images).")
  if workdir is not None:
    records, step = evaluate_checkpoint(config, workdir, which)
    output = output or os.path.join(workdir, "eval",
                                    f"{which}_step_{step:07d}.json")
  else:
    records = evaluate_samples(config, samples)
    output = output or f"{os.path.splitext(samples)[0]}.eval.json"
  write_records(records, output)
  logging.info("Wrote %d results to %s.", len(records), output)
  return records
