"""What a model family is, as the training loop and the evaluators see it.

A family (the GAN, the VAE, ...) is a module of pure functions over its own
state pytree, bundled in a `Family`:

    init(model_config, data_spec, key) -> state
    train_step(state, batch) -> (state, metrics)        # jit + donate
    predict["generate"](state, key, n) -> images        # and other names

The state carries its static parts (networks, loss, optimizer, intervals) in
a hashable non-pytree field, so every `train_step` has this one signature and
jit needs no closures. Per-step randomness is `step_key(state.rng, step)`
inside the step, so a resumed run replays an uninterrupted one.

Named predict functions, all pure (images are float [N, H, W, C] in [-1, 1]):

| name           | signature                                   | used by            |
| -------------- | ------------------------------------------- | ------------------ |
| preview        | (state, key, images[, labels]) -> {name: images} | grids    |
| generate       | (state, key, n) -> images [n, H, W, C]      | sampling, FD       |
| latents        | (state, key, n) -> z [n, latent_dim]        | interpolation      |
| decode         | (state, z) -> images                        | interpolation      |
| encode         | (state, images) -> z (posterior mean)       | interpolation      |
| reconstruct    | (state, images) -> images                   | VAE grids          |
| elbo           | (state, images, key) -> {elbo, recon, kl}   | evaluation ([N])   |
| log_likelihood | (state, images, key, k) -> [N] IWAE bound   | evaluation (NLL)   |
| classes        | (state) -> int (0: unconditional)           | --label, accuracy  |
| features       | (state, images) -> {layer: [N, ...]}        | linear probes      |
| translate      | (state, sources) -> images                  | translation tasks  |
| pairs          | (state, images uint8, labels, seed) -> HeldOutPairs | translation metrics (host) |
| sampler        | (state) -> state that samples the same, faster | before many `generate` batches |

A conditional family's `generate` and `decode` also take `labels` int32 [N]
as their last argument (default: every class in turn); its `preview` gets
the images' labels, and `encode`, `reconstruct`, `elbo` and `log_likelihood`
take them as the keyword `labels`.

`preview` values are [N, H, W, C] (tiled in a square) or [R, C, H, W, Ch]
(tiled as given). `describe_data(state, images uint8) -> dict` (host side)
adds what an evaluation record must say about how the family saw the data.

Nothing here imports a family: the loop (gan_jax/train.py) works from this.
"""

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import jax
import numpy as np

from gan_jax.errors import ConfigError

Array = jax.Array
Metrics = Dict[str, Array]
PREDICT_NAMES = ("preview", "generate", "latents", "decode", "encode",
                 "reconstruct", "elbo", "log_likelihood", "describe_data",
                 "classes", "features", "translate", "pairs", "sampler")


def conditional_classes(conditional: bool, num_classes: int,
                        data_spec: "DataSpec") -> int:
  """The classes of a --conditional model (0 if not conditional):
  --num_classes, or the data's. ConfigError if the data has no labels or
  more classes."""
  if not conditional:
    return 0
  classes = num_classes or data_spec.num_classes
  if not classes:
    raise ConfigError("--conditional needs labelled data: this dataset has "
                      "no labels (or pass --num_classes).")
  if data_spec.num_classes > classes:
    raise ConfigError(f"--num_classes={classes} is fewer than the "
                      f"{data_spec.num_classes} classes of the data's labels.")
  return classes


def class_rows(generate: Callable[[int, Optional[Array]], Array], num: int,
               num_classes: int) -> Array:
  """A preview grid of about `num` samples: generate(n, None) [n, H, W, C]
  if unconditional, else one row per class, generate(n, labels) reshaped
  to [classes, columns, H, W, C]."""
  if not num_classes:
    return generate(num, None)
  rows = min(num_classes, num)
  columns = max(1, num // rows)
  labels = jax.numpy.repeat(jax.numpy.arange(rows, dtype=jax.numpy.int32),
                            columns)
  samples = generate(rows * columns, labels)
  return samples.reshape((rows, columns) + samples.shape[1:])


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """What a family needs to know of the data to build its networks."""
  image_shape: Tuple[int, int, int]  # (H, W, C)
  num_classes: int = 0  # Distinct labels in the training data (0: none).
  # Training examples of each label, [num_classes] (empty: not recorded,
  # as in runs saved before it was).
  label_counts: Tuple[int, ...] = ()

  @classmethod
  def of(cls, images: np.ndarray, labels: np.ndarray) -> "DataSpec":
    """The spec of images uint8 [N, H, W, C] with int labels [N]."""
    labelled = len(labels) and labels.min() >= 0
    num_classes = int(labels.max()) + 1 if labelled else 0
    counts = np.bincount(labels, minlength=num_classes) if labelled else ()
    return cls(tuple(int(d) for d in images.shape[1:]), num_classes,
               tuple(int(c) for c in counts))

  def same_data(self, other: "DataSpec") -> bool:
    """Equal, except that a spec without label_counts (an older run's)
    matches any counts."""
    if not (self.label_counts and other.label_counts):
      other = dataclasses.replace(other, label_counts=self.label_counts)
    return self == other

  def to_dict(self) -> Dict[str, Any]:
    return {"image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "label_counts": list(self.label_counts)}

  @classmethod
  def from_dict(cls, values: Dict[str, Any]) -> "DataSpec":
    return cls(tuple(values["image_shape"]), values.get("num_classes", 0),
               tuple(values.get("label_counts", ())))


@dataclasses.dataclass(frozen=True)
class HeldOutPairs:
  """What a translation family is scored on, made from a real split by its
  `pairs` prediction: the sources to translate, the real target domain
  (FD's reference) and, where each source has one, its true target."""
  sources: np.ndarray  # float32 [M, H, W, Cs] in [-1, 1]
  targets: np.ndarray  # uint8 [K, H, W, C]: real images of the target domain
  target_labels: np.ndarray  # int32 [K]; -1 where unlabelled
  truth: Optional[np.ndarray] = None  # uint8 [M, H, W, C]; None: unpaired


@dataclasses.dataclass(frozen=True)
class Preset:
  """A named configuration: run and model settings that flags may override.

  `doc` says the command, its runtime on named hardware and its result.
  """
  doc: str
  run: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  model: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def describe_all(metrics: Mapping[str, float]) -> str:
  """'name value  name value ...': the default console form of metrics."""
  return "  ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))


@dataclasses.dataclass(frozen=True)
class Family:
  """A model family: its config, pure init and step, and named predictions.

  Attributes:
    name: what checkpoints record, e.g. "gan".
    config: the frozen dataclass of the model's settings (gan_jax.config).
    init: (model_config, DataSpec, key) -> state.
    train_step: (state, batch) -> (state, metrics); batch is {"image": float
      [B, H, W, C] in [-1, 1] (or [k, B, ...], see batches_per_step),
      "label": int32 [B]}; metrics are float32 scalars.
    predict: named pure functions (module docstring).
    batches_per_step: model_config -> real batches one step consumes.
    batches_by_label: draw stacked batch k from the examples labelled k
      (e.g. CycleGAN's two domains; gan_jax.data.batches).
    prepare_data: (model_config, images uint8 [N, H, W, C], labels int [N])
      -> (images, labels): what the family trains on, made from the loaded
      data on the host, once (e.g. CycleGAN's domains, the GAN's
      clusters); None, or the same arrays given back: as loaded.
    describe_metrics: metrics -> the console log line's middle part.
    eval_metrics: what --eval_every computes (gan_jax.evaluator names).
    run_defaults: RunConfig values the family's command line starts from.
    presets: named configurations (--preset=NAME).
    views: named state -> state functions giving another model to score
      from the same checkpoint (`experiments.evaluate --view=NAME`), e.g.
      the GAN's "live" generator when it keeps an EMA.
  """
  name: str
  config: type
  init: Callable[[Any, DataSpec, Array], Any]
  train_step: Callable[[Any, Dict[str, Array]], Tuple[Any, Metrics]]
  predict: Mapping[str, Callable[..., Any]]
  batches_per_step: Callable[[Any], int] = lambda model_config: 1
  batches_by_label: bool = False
  prepare_data: Optional[Callable[[Any, np.ndarray, np.ndarray],
                                  Tuple[np.ndarray, np.ndarray]]] = None
  describe_metrics: Callable[[Mapping[str, float]], str] = describe_all
  eval_metrics: Tuple[str, ...] = ("fd", "score")
  run_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  presets: Mapping[str, Preset] = dataclasses.field(default_factory=dict)
  views: Mapping[str, Callable[[Any], Any]] = dataclasses.field(
      default_factory=dict)

  def __post_init__(self):
    unknown = set(self.predict) - set(PREDICT_NAMES)
    if unknown:
      raise ValueError(f"Family {self.name}: unknown predict names "
                       f"{sorted(unknown)}; known: {PREDICT_NAMES}.")

  def can(self, name: str) -> bool:
    return name in self.predict

  def get(self, name: str) -> Callable[..., Any]:
    """The predict function `name`; ConfigError if the family has none."""
    if name not in self.predict:
      raise ConfigError(f"The {self.name} family cannot {name} (it offers "
                        f"{', '.join(sorted(self.predict))}).")
    return self.predict[name]

  def view(self, name: str) -> Callable[[Any], Any]:
    """The view `name`; ConfigError if the family has none of that name."""
    if name not in self.views:
      offered = ", ".join(sorted(self.views)) or "none"
      raise ConfigError(f"--view={name!r}: the {self.name} family's views "
                        f"are: {offered}.")
    return self.views[name]

  def preset(self, name: Optional[str]) -> Preset:
    if not name:
      return Preset(doc="")
    if name not in self.presets:
      raise ConfigError(f"--preset={name!r} is not one of "
                        f"{', '.join(sorted(self.presets))}.")
    return self.presets[name]


def step_key(rng: Array, step: Array) -> Array:
  """The PRNG key of one training step: fold_in(rng, step).

  `rng` is raw key data (uint32 [2]), which checkpoints store as an array.
  """
  return jax.random.fold_in(jax.random.wrap_key_data(rng), step)
