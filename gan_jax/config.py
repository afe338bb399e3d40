"""The run configuration: one frozen dataclass, validated in one place.

Flags map onto these fields one to one (see `experiments/mnist_gan.py`), and the
same object is saved as JSON next to every checkpoint so that a workdir
describes the run that produced it.
"""

import dataclasses
from typing import Any, Optional

from gan_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class GANConfig:
  """Everything that defines a GAN training run."""

  # Data.
  dataset: str = "mnist"  # TFDS name; ignored when data_dir is set.
  data_dir: Optional[str] = None  # A folder of MNIST-format IDX files.
  split: str = "train"

  # Model.
  arch: str = "dcgan"  # A key of gan_jax.models.ARCHITECTURES.
  latent_dim: int = 100
  dtype: str = "float32"  # Compute dtype; params and losses stay float32.

  # Game and optimisation.
  loss: str = "non_saturating"  # A key of gan_jax.losses.LOSSES.
  lr: float = 2e-4
  b1: float = 0.5
  b2: float = 0.999
  batch_size: int = 64
  d_steps: int = 1  # Discriminator updates per generator update.
  g_ema_decay: float = 0.0  # EMA of G's params for sampling; 0: none.
  num_steps: int = 10_000
  seed: int = 0

  # Bookkeeping.
  log_every: int = 100
  sample_every: int = 1000
  checkpoint_every: int = 1000
  keep_checkpoints: int = 3
  num_grid_samples: int = 64
  on_nan: str = "stop"  # Or "restore": last good checkpoint, new PRNG stream.

  # Evaluation during training (see gan_jax.evaluate); 0 turns it off.
  eval_every: int = 0  # Steps between FD/score evaluations; keeps the best.
  eval_num_samples: int = 10_000
  eval_split: str = "test"  # Real split the samples are compared with.
  eval_extractor: str = "classifier"  # A key of metrics.extractors.EXTRACTORS.
  inception_weights: Optional[str] = None  # For eval_extractor="inception".

  def replace(self, **changes: Any) -> "GANConfig":
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: dict) -> "GANConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known})

  def validate(self) -> "GANConfig":
    """Raises ConfigError naming the offending field (= flag) and the fix."""
    # Imported here so that config stays importable without model code.
    from gan_jax import losses, models  # pylint: disable=g-import-not-at-top
    from gan_jax.metrics import extractors  # pylint: disable=g-import-not-at-top

    def positive(name):
      if getattr(self, name) <= 0:
        raise ConfigError(
            f"--{name} must be positive, got {getattr(self, name)!r}.")

    for name in ("lr", "batch_size", "latent_dim", "d_steps", "num_steps",
                 "log_every", "sample_every", "checkpoint_every",
                 "keep_checkpoints", "num_grid_samples"):
      positive(name)
    for name in ("b1", "b2", "g_ema_decay"):
      if not 0.0 <= getattr(self, name) < 1.0:
        raise ConfigError(
            f"--{name} must be in [0, 1), got {getattr(self, name)!r}.")
    if self.eval_every < 0:
      raise ConfigError(f"--eval_every must be >= 0 (0: no evaluation), got "
                        f"{self.eval_every!r}.")
    if self.eval_num_samples < 2:
      raise ConfigError(f"--eval_num_samples must be at least 2, got "
                        f"{self.eval_num_samples!r}.")
    _one_of("eval_extractor", self.eval_extractor, extractors.EXTRACTORS)
    _one_of("on_nan", self.on_nan, ("stop", "restore"))
    _one_of("arch", self.arch, models.ARCHITECTURES)
    _one_of("loss", self.loss, losses.LOSSES)
    _one_of("dtype", self.dtype, ("float32", "bfloat16", "float16"))
    if self.data_dir is None and not self.dataset:
      raise ConfigError("Set --dataset (a TFDS name) or --data_dir.")
    return self

  def check_resumable_from(self, saved: "GANConfig", workdir: str) -> None:
    """Raises ConfigError if a run saved with `saved` can't resume as `self`.

    Only the length of the run and its bookkeeping may change on resume.
    """
    may_change = {"num_steps", "log_every", "sample_every", "checkpoint_every",
                  "keep_checkpoints", "num_grid_samples", "on_nan",
                  "eval_every", "eval_num_samples", "eval_split",
                  "eval_extractor", "inception_weights"}
    differing = [
        f"--{f.name}={getattr(self, f.name)!r} (saved: "
        f"{getattr(saved, f.name)!r})" for f in dataclasses.fields(self)
        if f.name not in may_change
        and getattr(self, f.name) != getattr(saved, f.name)]
    if differing:
      raise ConfigError(
          f"--workdir={workdir} holds a different run: {'; '.join(differing)}."
          " Use a new --workdir, or the saved values to resume.")


def _one_of(name, value, choices):
  if value not in choices:
    raise ConfigError(
        f"--{name}={value!r} is not one of {', '.join(sorted(choices))}.")
