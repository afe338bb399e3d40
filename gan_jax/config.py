"""Configs: the run's settings (`RunConfig`), and the helpers every family's
model config uses.

A config is a frozen dataclass whose fields carry their flag's help text,
choices and topic in `metadata` (see `setting`). `gan_jax.cli` generates the
absl flags from those fields, so a flag and its field cannot drift apart, and
the same object is saved as JSON beside every checkpoint, so a workdir
describes the run that produced it.

    run = RunConfig(dataset="fashion_mnist", num_steps=2000)
    model = gan.GANConfig(loss="hinge")          # gan_jax.families.gan
    train.train_and_evaluate(gan.FAMILY, model, run, workdir="/tmp/run")

Fields whose values are objects rather than numbers or names (your own loss,
network or regulariser) get no flag; in the JSON record they are described
as "custom:<what>", and a run that used them is loaded by passing the same
model config again.
"""

import dataclasses
import functools
import math
import typing
from typing import Any, Dict, Optional, Sequence

import numpy as np

from gan_jax.errors import ConfigError
from gan_jax.image_preprocessing import RESIZE_METHODS, ImageOptions

# Topics of the flags, in the order `--help` lists them.
GROUPS = ("data", "model", "optimisation", "schedule", "bookkeeping",
          "evaluation", "multi-host")
CUSTOM = "custom:"  # Prefix of the JSON description of a non-JSON value.
# Larger latents are a typo, not a model: refused before memory runs out.
MAX_LATENT_DIM = 65_536


def setting(default: Any, help: str, *, group: str,  # pylint: disable=redefined-builtin
            choices: Optional[Sequence[str]] = None, flag: bool = True):
  """A config field with its flag's help, topic and (for names) choices.

  `flag=False` keeps a field (e.g. a flax module you pass in) off the command
  line.
  """
  if group not in GROUPS:
    raise ValueError(f"group {group!r} is not one of {GROUPS}")
  return dataclasses.field(default=default, metadata={
      "help": help, "group": group, "flag": flag,
      "choices": tuple(choices) if choices is not None else None})


def json_value(value: Any) -> Any:
  """A JSON description of a config value; objects become 'custom:...'."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
    return [json_value(v) for v in value]
  return CUSTOM + describe(value)


def describe(value: Any) -> str:
  """A stable one-line description of a value: functions and classes by
  their qualified name, modules, dataclasses and named tuples by their type
  and fields, recursively."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return repr(value)
  if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
    return "(" + ", ".join(map(describe, value)) + ("," if len(value) == 1
                                                     else "") + ")"
  if isinstance(value, np.dtype):
    return value.name
  if isinstance(value, functools.partial):
    keywords = ", ".join(f"{k}={describe(v)}"
                         for k, v in sorted(value.keywords.items()))
    return f"partial({describe(value.func)}, {keywords})"
  if callable(value) and hasattr(value, "__qualname__"):
    return f"{value.__module__}.{value.__qualname__}"  # Also wrapped ones.
  if dataclasses.is_dataclass(value):
    # flax modules' bookkeeping fields: `parent`, and `name` unless set.
    items = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)
             if f.name != "parent"
             and not (f.name == "name" and getattr(value, f.name) is None)]
  elif hasattr(value, "_asdict"):
    # Fields left at their defaults are omitted, so adding a defaulted field
    # to a named tuple keeps the descriptions that older records hold.
    defaults = getattr(value, "_field_defaults", {})
    items = [(k, v) for k, v in value._asdict().items()
             if not (k in defaults and v == defaults[k])]
  else:
    return f"{type(value).__module__}.{type(value).__qualname__}"
  fields = ", ".join(f"{k}={describe(v)}" for k, v in items)
  return f"{type(value).__module__}.{type(value).__qualname__}({fields})"


def field_types(config_class: type) -> Dict[str, type]:
  """{field: its flag's type} for the fields that have flags.

  Optional[X] and Union[X, ...] give X, the first of int, float, str, bool.
  """
  hints = typing.get_type_hints(config_class)
  out = {}
  for f in dataclasses.fields(config_class):
    if not f.metadata.get("flag", False):
      continue
    hint = hints[f.name]
    candidates = typing.get_args(hint) or (hint,)
    kind = next((c for c in candidates if c in (bool, int, float, str)), None)
    if kind is None:
      raise TypeError(f"{config_class.__name__}.{f.name}: a flag needs a "
                      f"bool, int, float or str type, not {hint}.")
    out[f.name] = kind
  return out


class Config:
  """Mixin of the frozen config dataclasses: replace, JSON in and out."""

  def replace(self, **changes: Any):
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> Dict[str, Any]:
    """Every field as JSON (objects described as 'custom:...')."""
    return {f.name: json_value(getattr(self, f.name))
            for f in dataclasses.fields(self)}

  @classmethod
  def from_dict(cls, values: Dict[str, Any]):
    """The config of a JSON record; unknown keys are ignored, missing ones
    take their defaults, and lists become tuples."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in values.items() if k in known})

  def custom_fields(self) -> Sequence[str]:
    """Fields holding objects passed in code rather than names or numbers."""
    return [name for name, value in self.to_dict().items()
            if _is_custom(value)]

  def check_choices(self) -> None:
    """ConfigError naming a field whose name-valued setting is unknown."""
    for f in dataclasses.fields(self):
      value, choices = getattr(self, f.name), f.metadata.get("choices")
      if choices and isinstance(value, str) and value not in choices:
        raise ConfigError(f"--{f.name}={value!r} is not one of "
                          f"{', '.join(sorted(choices))}.")

  def positive(self, *names: str) -> None:
    for name in names:
      value = getattr(self, name)
      if not (value > 0 and math.isfinite(value)):  # Refuses NaN and inf.
        raise ConfigError(f"--{name} must be positive and finite, got "
                          f"{value!r}.")

  def non_negative(self, *names: str) -> None:
    for name in names:
      value = getattr(self, name)
      if not (value >= 0 and math.isfinite(value)):  # Refuses NaN and inf.
        raise ConfigError(f"--{name} must be >= 0 and finite, got "
                          f"{value!r}.")

  def at_most(self, limit: int, *names: str) -> None:
    for name in names:
      if getattr(self, name) > limit:
        raise ConfigError(f"--{name} must be at most {limit}, got "
                          f"{getattr(self, name)!r}.")

  def in_unit_interval(self, *names: str) -> None:
    for name in names:
      value = getattr(self, name)
      if not 0.0 <= value < 1.0:
        raise ConfigError(f"--{name} must be in [0, 1), got {value!r}.")


def _is_custom(value: Any) -> bool:
  if isinstance(value, list):
    return any(_is_custom(v) for v in value)
  return isinstance(value, str) and value.startswith(CUSTOM)


@dataclasses.dataclass(frozen=True)
class RunConfig(Config):
  """The settings of a training run that do not depend on the model family:
  data, schedule, bookkeeping and evaluation."""

  dataset: str = setting(
      "mnist", "TFDS name of the data (mnist, fashion_mnist, cifar10, ...). "
      "With --data_dir it still names the data: it picks the evaluation "
      "classifier.", group="data")
  data_dir: Optional[str] = setting(
      None, "Folder of your own images (PNG/JPEG, one sub-folder per class) "
      "or of MNIST-format IDX files, used instead of downloading --dataset "
      "with TFDS.", group="data")
  tfds_data_dir: Optional[str] = setting(
      None, "Where TFDS keeps prepared datasets (default "
      "~/tensorflow_datasets). Offline, put files you downloaded in its "
      "downloads/manual/ folder.", group="data")
  split: str = setting("train", "Split to train on.", group="data")
  image_size: Optional[int] = setting(
      None, "Centre-crop and resize every image to this square size (default: "
      "the native size; 64 for TFDS images of mixed or non-square size).",
      group="data")
  background: str = setting(
      "white", "Colour that transparent images are composited on: white, "
      "black, grey or #rrggbb.", group="data")
  resize: str = setting(
      "bicubic", "Antialiased resize method of --image_size.",
      choices=tuple(RESIZE_METHODS), group="data")

  batch_size: int = setting(64, "Global batch size (all devices).",
                            group="schedule")
  num_steps: int = setting(10_000, "Training steps of the whole run; raise "
                           "it to extend a finished run.", group="schedule")
  seed: int = setting(0, "Seed of initialisation, data order and latents.",
                      group="schedule")

  log_every: int = setting(100, "Steps between log lines and TensorBoard "
                           "scalars.", group="bookkeeping")
  sample_every: int = setting(1000, "Steps between preview grids.",
                              group="bookkeeping")
  checkpoint_every: int = setting(1000, "Steps between checkpoints (and "
                                  "always at the end).", group="bookkeeping")
  keep_checkpoints: int = setting(3, "Checkpoints kept.", group="bookkeeping")
  num_grid_samples: int = setting(64, "Images in each preview grid.",
                                  group="bookkeeping")
  on_nan: str = setting(
      "stop", "On a non-finite loss or gradient: stop, or restore the last "
      "good checkpoint with a new PRNG stream (3 times at most).",
      choices=("stop", "restore"), group="bookkeeping")

  eval_every: int = setting(
      0, "Steps between evaluations during training (0: none); keeps the "
      "checkpoint of lowest FD in best/.", group="evaluation")
  eval_num_samples: int = setting(10_000, "Generated images per evaluation.",
                                  group="evaluation")
  eval_split: str = setting("test", "Real split the samples are compared "
                            "with.", group="evaluation")
  eval_extractor: str = setting(
      "classifier", "Features for FD: the dataset's domain classifier "
      "(trained on first use) or InceptionV3 (needs --inception_weights).",
      choices=("classifier", "inception"), group="evaluation")
  inception_weights: Optional[str] = setting(
      None, "pytorch-fid's pt_inception-2015-12-05-6726825d.pth or its .npz "
      "(experiments.convert_inception).", group="evaluation")

  # What may differ when a run resumes: its length and its bookkeeping. The
  # data may move (its content hash is checked instead of its path).
  RESUMABLE_CHANGES = frozenset({
      "num_steps", "log_every", "sample_every", "checkpoint_every",
      "keep_checkpoints", "num_grid_samples", "on_nan", "eval_every",
      "eval_num_samples", "eval_split", "eval_extractor", "inception_weights",
      "data_dir", "tfds_data_dir"})

  def validate(self) -> "RunConfig":
    """Raises ConfigError naming the offending field (= flag) and the fix."""
    self.positive("batch_size", "num_steps", "log_every", "sample_every",
                  "checkpoint_every", "keep_checkpoints", "num_grid_samples")
    self.check_choices()
    if not 0 <= self.seed < 2 ** 32:
      # Larger seeds wrap around to the keys of smaller ones.
      raise ConfigError(f"--seed must be in [0, 2**32), got {self.seed!r}.")
    self.non_negative("eval_every")
    if self.eval_num_samples < 2:
      raise ConfigError(f"--eval_num_samples must be at least 2, got "
                        f"{self.eval_num_samples!r}.")
    if self.data_dir is None and not self.dataset:
      raise ConfigError("Set --dataset (a TFDS name) or --data_dir.")
    self.image_options().validate()
    return self

  def image_options(self) -> ImageOptions:
    """How every training and reference image is shaped."""
    return ImageOptions(self.image_size, self.background, self.resize)


def differences(current: Dict[str, Any], saved: Dict[str, Any],
                ignore: Sequence[str] = ()) -> Sequence[str]:
  """'--name=value (saved: value)' for each field that differs."""
  return [f"--{name}={value!r} (saved: {saved.get(name)!r})"
          for name, value in current.items()
          if name not in ignore and name in saved and saved[name] != value]


def __getattr__(name: str):
  # `from gan_jax.config import GANConfig` (release 0.1) keeps working; the
  # GAN's model config lives with its family, imported only when asked for.
  if name == "GANConfig":
    from gan_jax.families.gan import GANConfig  # pylint: disable=g-import-not-at-top
    return GANConfig
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
