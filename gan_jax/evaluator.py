"""Scoring a family's state, or any images, against one real reference.

    evaluator = Evaluator(EvalConfig(dataset="fashion_mnist", data_dir=...),
                          family=vae.FAMILY)
    records = evaluator.generated(state, step=1000)   # one dict per metric
    records = Evaluator(config)(images)               # uint8 [N, H, W, C]

Three kinds of metric, one protocol:
  * of samples (`gan_jax.metrics.evaluation.METRICS`: fd, score, kid,
    precision_recall, density_coverage, class_coverage): any family that can
    `generate`, or an .npz of anyone's images, through a feature extractor;
  * of the model on real images (`DATA_METRICS`): elbo (the ELBO and its
    terms) and nll (the IWAE bound with `nll_samples` samples), for families
    that offer the `elbo` and `log_likelihood` predictions;
  * of a translation family (pix2pix, CycleGAN) on held-out sources, made
    from the reference split by its `pairs` prediction: the sample metrics
    of its translations against the real target domain, and, where the
    sources have true targets, `PAIRED_METRICS` (l1, psnr, ssim), plus
    cycle_l1 for a family that translates back (`reconstruct`). Each is
    also given for the identity baseline (the sources themselves), in
    records with "output": "identity" beside "output": "model".

Every record carries its protocol: sample counts, dataset, split, a hash of
the real images, the extractor and its weights hash, the seed, and what the
family says of how it saw the data (likelihood, binarisation).
"""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jax
import numpy as np

from gan_jax import data, hashing, sampling
from gan_jax.errors import ConfigError
from gan_jax.family import Family
from gan_jax.image_preprocessing import ImageOptions
from gan_jax.metrics import evaluation, extractors
from gan_jax.metrics.paired import PAIRED_METRICS, paired_metrics

Records = List[Dict[str, Any]]
# Metrics of a model on real images, and the prediction each needs.
DATA_METRICS = {"elbo": "elbo", "nll": "log_likelihood"}
# Images per jitted call of the data metrics: part of their protocol, since
# the keys are fold_in(key(seed), batch index).
DATA_METRIC_BATCH = {"elbo": 500, "nll": 100}
# Metrics of a translation family's outputs against their true targets, and
# of its round trip (reconstruct) against the sources.
TRANSLATION_METRICS = PAIRED_METRICS + ("cycle_l1",)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """What to compare against, through which network, with which metrics."""
  dataset: Optional[str] = None  # Names the real data and its classifier.
  data_dir: Optional[str] = None  # IDX folder of that dataset (offline).
  tfds_data_dir: Optional[str] = None  # TFDS's folder; None: its default.
  image: ImageOptions = ImageOptions()  # How each real image is shaped.
  reference_split: str = "test"
  num_real: Optional[int] = None  # First N images of the split; None: all.
  num_samples: int = 10_000  # Generated images per evaluation.
  extractor: str = "classifier"  # A key of extractors.EXTRACTORS.
  inception_weights: Optional[str] = None
  # None: every sample metric, plus elbo for families that have one.
  metrics: Optional[Tuple[str, ...]] = None
  nll_samples: int = 5000  # Importance samples per image of the nll metric.
  seed: int = 0  # Of the latents, the binarisation and KID's subsets.
  cache_dir: Optional[str] = None  # Reference features; None: the default.
  classifier_root: Optional[str] = None  # None: the default cache.

  @classmethod
  def for_run(cls, run, **changes: Any) -> "EvalConfig":
    """The evaluation settings of a training run's RunConfig (--eval_*)."""
    return cls(**{**dict(
        dataset=run.dataset, data_dir=run.data_dir,
        tfds_data_dir=run.tfds_data_dir, image=run.image_options(),
        reference_split=run.eval_split, num_samples=run.eval_num_samples,
        extractor=run.eval_extractor,
        inception_weights=run.inception_weights), **changes})

  def validate(self) -> "EvalConfig":
    if self.num_samples < 2:
      raise ConfigError(f"--num_samples={self.num_samples} must be at least "
                        "2 (a covariance needs two samples).")
    if self.nll_samples < 1:
      raise ConfigError(f"--nll_samples={self.nll_samples} must be >= 1.")
    if self.extractor not in extractors.EXTRACTORS:
      raise ConfigError(f"--extractor={self.extractor!r} is not one of "
                        f"{', '.join(sorted(extractors.EXTRACTORS))}.")
    check_metrics(self.metrics or ())
    if not self.dataset:
      raise ConfigError("Evaluation needs --dataset (mnist, fashion_mnist, "
                        "...) to pick the real data and its classifier.")
    return self


def check_metrics(metrics: Sequence[str]) -> None:
  known = [*evaluation.METRICS, *DATA_METRICS, *TRANSLATION_METRICS]
  unknown = [m for m in metrics if m not in known]
  if unknown:
    raise ConfigError(f"--metrics has unknown {', '.join(unknown)}; choose "
                      f"from {', '.join(known)}.")


def default_metrics(family: Optional[Family]) -> Tuple[str, ...]:
  """Every sample metric the family supports, and elbo if it has one (and
  class_accuracy where there are labels: `Evaluator.sample_metrics_for`);
  for a translation family, the paired metrics and cycle_l1 too."""
  metrics = ()
  if family is None or family.can("generate") or family.can("translate"):
    metrics += tuple(m for m in evaluation.METRICS
                     if m not in evaluation.LABELLED_METRICS)
  if family is not None and family.can("elbo"):
    metrics += ("elbo",)
  if family is not None and family.can("translate"):
    metrics += PAIRED_METRICS + (("cycle_l1",) if family.can("reconstruct")
                                 else ())
  return metrics


class Evaluator:
  """Scores images or a family's state against one reference split; loads
  the real images and builds the extractor once."""

  def __init__(self, config: EvalConfig, family: Optional[Family] = None):
    self.config = config.validate()
    self.family = family
    self.metrics = tuple(config.metrics or default_metrics(family))
    self.sample_metrics = [m for m in self.metrics if m in evaluation.METRICS]
    self.data_metrics = [m for m in self.metrics if m in DATA_METRICS]
    self.translation_metrics = [m for m in self.metrics
                                if m in TRANSLATION_METRICS]
    self.translates = family is not None and family.can("translate")
    for metric in self.data_metrics + self.translation_metrics:
      if family is None:
        raise ConfigError(f"--metrics={metric} scores a model, not images: "
                          "evaluate a --workdir.")
      family.get(DATA_METRICS.get(metric, "translate"))
    if "cycle_l1" in self.translation_metrics:
      family.get("reconstruct")
    if self.sample_metrics and family is not None and not self.translates:
      family.get("generate")
    self.real = evaluation.real_images(config.dataset, config.reference_split,
                                       config.data_dir, config.num_real,
                                       config.tfds_data_dir, config.image)
    self.extractor = self.reference = None
    if self.sample_metrics:
      self.extractor = extractors.create(
          config.extractor, dataset=config.dataset, data_dir=config.data_dir,
          classifier_root=config.classifier_root,
          inception_weights=config.inception_weights,
          tfds_data_dir=config.tfds_data_dir, image=config.image)
      if not self.extractor.num_classes:
        # "Every metric" of an extractor without logits: those it can give;
        # asked for by name, they are an error now, before any training.
        if config.metrics is not None:
          evaluation.check_logits(self.sample_metrics, self.extractor)
        self.sample_metrics = [m for m in self.sample_metrics
                               if m not in evaluation.LOGIT_METRICS]
      if not self.translates:  # Theirs is the target domain (`pairs`).
        self.reference = evaluation.real_reference(
            self.extractor, config.dataset, config.reference_split,
            config.data_dir, config.num_real, config.cache_dir,
            real=self.real)

  def sample_metrics_for(self, labels: Optional[np.ndarray]) -> List[str]:
    """The sample metrics to compute: by default, class_accuracy too when
    the samples come with requested classes and the extractor is the
    dataset's own classifier."""
    if (labels is None or self.config.metrics is not None
        or self.extractor.trained_on_sha256 is None):
      return self.sample_metrics
    return self.sample_metrics + list(evaluation.LABELLED_METRICS)

  def __call__(self, images, labels: Optional[np.ndarray] = None,
               **context: Any) -> Records:
    """Sample metrics of images [N, H, W, C] (uint8, or float in [-1, 1]),
    drawn for classes `labels` int [N] if conditional."""
    metrics = self.sample_metrics_for(labels)
    if not metrics:
      return []
    return evaluation.evaluate(images, self.extractor, self.reference,
                               metrics=metrics, seed=self.config.seed,
                               labels=labels, **context)

  def requested_labels(self, classes: int) -> Optional[np.ndarray]:
    """The classes a conditional model (of `classes`; 0: none) is asked
    for: the reference's own labels, shuffled with the seed and cycled to
    `num_samples`, so FD compares the same class proportions (an imbalanced
    folder stays imbalanced); every class in turn if the reference has no
    labels. class_accuracy scores whatever was asked for."""
    if not classes:
      return None
    n = self.config.num_samples
    real = np.asarray(self.real.labels, np.int32)
    if not len(real) or real.min() < 0 or real.max() >= classes:
      return np.arange(n, dtype=np.int32) % classes
    real = np.random.default_rng(self.config.seed).permutation(real)
    return real[np.arange(n) % len(real)]

  def generated(self, state: Any, **context: Any) -> Records:
    """The family's samples scored (`num_samples` of them), then its data
    metrics on the real images; a translation family's translations of the
    held-out sources instead of samples."""
    if self.translates:
      return self._translations(state, context)
    records = []
    if self.sample_metrics:
      labels = self.requested_labels(sampling.num_classes(self.family, state))
      images = sampling.sample(self.family, state, self.config.num_samples,
                               seed=self.config.seed, labels=labels)
      records += self(images, labels=labels, **context)
    for metric in self.data_metrics:
      records += self._data_metric(metric, state, context)
    return records

  def _translations(self, state: Any, context: Dict[str, Any]) -> Records:
    """The translation family's records, and the identity baseline's."""
    pairs = self.family.get("pairs")(state, self.real.images,
                                     self.real.labels, self.config.seed)
    outputs = sampling.translate(self.family, state, pairs.sources)
    identity = sampling.to_uint8(np.broadcast_to(
        pairs.sources, pairs.sources.shape[:-1] + outputs.shape[-1:]))
    reference = None
    if self.sample_metrics:
      reference = evaluation.real_reference(
          self.extractor, self.config.dataset, self.config.reference_split,
          cache_dir=self.config.cache_dir,
          real=data.Dataset(pairs.targets, pairs.target_labels))
    protocol = {"num_sources": len(pairs.sources),
                "num_targets": len(pairs.targets),
                "dataset": self.config.dataset,
                "reference_split": self.config.reference_split,
                "reference_sha256": hashing.tree_sha256(self.real.images),
                "seed": self.config.seed, **context}
    records = []
    for output, images in (("model", outputs), ("identity", identity)):
      if reference is not None:
        records += evaluation.evaluate(
            images, self.extractor, reference, metrics=self.sample_metrics,
            seed=self.config.seed, output=output, **context)
      paired = [m for m in self.translation_metrics if m in PAIRED_METRICS]
      if paired and pairs.truth is not None:
        scores = paired_metrics(images, pairs.truth)
        records += [{"metric": m, **scores[m], "units": "[0, 1] pixels",
                     "output": output, **protocol} for m in paired]
    if "cycle_l1" in self.translation_metrics:
      round_trip = sampling.translate(self.family, state, pairs.sources,
                                      prediction="reconstruct")
      score = paired_metrics(round_trip, sampling.to_uint8(pairs.sources))
      records.append({"metric": "cycle_l1", **score["l1"],
                      "units": "[0, 1] pixels", "output": "model",
                      **protocol})
    return records

  def _data_metric(self, metric: str, state: Any,
                   context: Dict[str, Any]) -> Records:
    images = self.real.images
    batch = DATA_METRIC_BATCH[metric]
    # A conditional model's bound is of each image given its class.
    labels = (self.real.labels if sampling.num_classes(self.family, state)
              else None)
    if metric == "elbo":
      terms = _per_image(jax.jit(self.family.get("elbo")), state, images,
                         self.config.seed, batch, labels)
      value = float(terms["elbo"].mean())
      result = {"value": value, "recon": float(terms["recon"].mean()),
                "kl": float(terms["kl"].mean())}
    else:
      k = self.config.nll_samples
      log_likelihood = jax.jit(self.family.get("log_likelihood"),
                               static_argnums=3)
      bounds = _per_image(
          lambda s, x, key, **labels: log_likelihood(s, x, key, k, **labels),
          state, images, self.config.seed, batch, labels)
      value = float(-bounds.mean())
      result = {"value": value, "std_error": float(
          bounds.std(ddof=1) / np.sqrt(len(bounds))) if len(bounds) > 1
                else 0.0, "num_importance_samples": k}
    dims = int(np.prod(images.shape[1:]))
    described = {}
    if self.family.can("describe_data"):
      described = self.family.get("describe_data")(state, images)
    return [{
        "metric": metric, **result, "units": "nats per image",
        "bits_per_dim": abs(value) / (dims * np.log(2.0)),
        "num_real": len(images), "dataset": self.config.dataset,
        "reference_split": self.config.reference_split,
        "reference_sha256": hashing.tree_sha256(images),
        "seed": self.config.seed, "batch_size": batch, **described,
        **context}]


def _per_image(fn, state, images: np.ndarray, seed: int, batch: int,
               labels: Optional[np.ndarray] = None):
  """fn(state, images float [B, ...], key[, labels=int [B]]) over `images`
  (and their `labels`, if given) in batches of `batch` (the last padded),
  key fold_in(key(seed), batch index); the per-image outputs concatenated
  (a dict of them, or one array)."""
  pad = lambda x, n: np.concatenate([x, np.repeat(x[:1], n, axis=0)])
  outputs = []
  for i, start in enumerate(range(0, len(images), batch)):
    chunk = images[start:start + batch]
    padded = pad(chunk, batch - len(chunk))
    key = jax.random.fold_in(jax.random.key(seed), i)
    extra = ({} if labels is None else
             {"labels": pad(labels[start:start + batch], batch - len(chunk))})
    out = jax.device_get(fn(state, data.to_model_range(padded), key, **extra))
    outputs.append(jax.tree.map(lambda x, n=len(chunk): np.asarray(x)[:n],
                                out))
  return jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)
