"""Scoring generated images against real ones, with the protocol attached.

    extractor = extractors.create("classifier", dataset="fashion_mnist")
    reference = real_reference(extractor, "fashion_mnist", "test", data_dir)
    results = evaluate(images, extractor, reference, seed=0)
    # [{"metric": "fd", "value": 3.1, "num_real": 10000,
    #   "num_generated": 10000, "reference_split": "test",
    #   "extractor": "classifier/fashion_mnist", "extractor_sha256": ...,
    #   "resize": ..., "seed": 0, ...}, ...]

Every result carries the protocol that produced it, so two numbers can be
compared only when their protocols match. The real side (features, logits,
mean and covariance of a split under an extractor) is cached in
`<cache>/reference/`, keyed by content alone: a hash of the extractor's
weights and a hash of the real images themselves.
"""

import dataclasses
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from gan_jax import data, hashing
from gan_jax.errors import ConfigError
from gan_jax.image_preprocessing import ImageOptions
from gan_jax.metrics.coverage import class_coverage
from gan_jax.metrics.extractors import FeatureExtractor
from gan_jax.metrics.frechet import feature_statistics, frechet_distance
from gan_jax.metrics.kid import kernel_inception_distance
from gan_jax.metrics.manifold import density_coverage, precision_recall
from gan_jax.metrics.scores import classifier_score

# A classifier trained on the data's train split that gets fewer of its
# reference images right than this gives features that mean little.
MIN_REFERENCE_ACCURACY = 0.5


@dataclasses.dataclass(frozen=True)
class Reference:
  """Real images of one split seen through one extractor."""
  dataset: str
  split: str
  data_sha256: str  # Of the real images used, so caches can't go stale.
  features: np.ndarray  # float32 [N, D]
  logits: np.ndarray  # float32 [N, K]
  mean: np.ndarray  # float64 [D]
  cov: np.ndarray  # float64 [D, D]
  extractor_accuracy: Optional[float] = None  # Classifiers: on these labels.

  @property
  def num_images(self) -> int:
    return len(self.features)


def default_cache_dir() -> str:
  return hashing.cache_dir("reference")


def _compute_reference(extractor: FeatureExtractor, dataset_name: str,
                       split: str, images: np.ndarray, labels: np.ndarray,
                       data_sha256: str) -> Reference:
  features, logits = extractor(images)
  mean, cov = feature_statistics(features)
  accuracy = None
  if extractor.name.startswith("classifier/"):
    accuracy = float((logits.argmax(-1) == labels).mean())
  return Reference(dataset_name, split, data_sha256, features, logits, mean,
                   cov, accuracy)


def _load_cached(path: str) -> Reference:
  with np.load(path) as saved:
    accuracy = float(saved["extractor_accuracy"])
    return Reference(
        str(saved["dataset"]), str(saved["split"]), str(saved["data_sha256"]),
        saved["features"], saved["logits"], saved["mean"], saved["cov"],
        None if np.isnan(accuracy) else accuracy)


def _save_cached(path: str, reference: Reference) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}.npz"  # np.savez appends .npz otherwise.
  accuracy = reference.extractor_accuracy
  np.savez(tmp, dataset=reference.dataset, split=reference.split,
           data_sha256=reference.data_sha256, features=reference.features,
           logits=reference.logits, mean=reference.mean, cov=reference.cov,
           extractor_accuracy=np.nan if accuracy is None else accuracy)
  os.replace(tmp, path)  # Atomic: readers see the old file or the new one.


def real_images(dataset_name: str, split: str, data_dir: Optional[str],
                num_real: Optional[int],
                tfds_data_dir: Optional[str] = None,
                image: ImageOptions = ImageOptions()) -> data.Dataset:
  """The first `num_real` images (all if None) of a split, with labels."""
  real = data.load(dataset_name, split, data_dir, tfds_data_dir, image=image)
  if num_real is not None and not 2 <= num_real <= len(real):
    raise ConfigError(f"--num_real={num_real} must be in [2, {len(real)}], "
                      f"the size of the {split} split of {dataset_name}.")
  return data.Dataset(real.images[:num_real], real.labels[:num_real])


def real_reference(extractor: FeatureExtractor, dataset_name: str,
                   split: str = "test", data_dir: Optional[str] = None,
                   num_real: Optional[int] = None,
                   cache_dir: Optional[str] = None,
                   real: Optional[data.Dataset] = None,
                   tfds_data_dir: Optional[str] = None) -> Reference:
  """Features and statistics of the first `num_real` images of a split.

  All images when `num_real` is None; `real` passes them in if they are
  loaded already. Computed once per (extractor weights, images) and then
  read from `cache_dir`. A classifier extractor must
  recognise the reference images (accuracy >= 50%), which catches a
  --dataset that does not name the data in --data_dir.
  """
  if real is None:
    real = real_images(dataset_name, split, data_dir, num_real,
                       tfds_data_dir)
  images = real.images
  data_sha256 = hashing.tree_sha256(images)
  # Content only: a name typed by a user can't select another's features.
  key = "_".join([f"n{len(images)}", extractor.weights_sha256[:16],
                  data_sha256[:16]])
  path = os.path.join(cache_dir or default_cache_dir(), f"{key}.npz")
  reference = None
  if os.path.exists(path):
    try:
      reference = _load_cached(path)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("Ignoring the unreadable reference cache %s (%s: %s); "
                      "recomputing it.", path, type(e).__name__, e)
  if reference is None:
    logging.info("Computing %s features of %d %s/%s images.", extractor.name,
                 len(images), dataset_name, split)
    reference = _compute_reference(extractor, dataset_name, split, images,
                                   real.labels, data_sha256)
    _save_cached(path, reference)
  # The same images may have been cached under another name or split label.
  reference = dataclasses.replace(reference, dataset=dataset_name, split=split)
  accuracy = reference.extractor_accuracy
  if accuracy is not None and accuracy < MIN_REFERENCE_ACCURACY:
    raise ConfigError(
        f"The {extractor.name} extractor classifies only {accuracy:.0%} of "
        f"the {split} images of {data_dir or dataset_name} correctly: too "
        "weak for classifier-based metrics (too few images, or labels it "
        "cannot learn). Use --extractor=inception, or more labelled data.")
  return reference


# --- Metrics -----------------------------------------------------------------
# Each takes (features [M, D], logits [M, K], reference, seed, labels: the
# classes the samples were drawn for, int [M], or None) and returns
# {metric name: {"value": v, ...its parameters}}.

MetricFn = Callable[[np.ndarray, np.ndarray, Reference, int,
                     Optional[np.ndarray]], Dict[str, Dict[str, Any]]]


def _fd(features, logits, reference, seed, labels):
  del logits, seed, labels
  mean, cov = feature_statistics(features)
  return {"fd": {"value": frechet_distance(reference.mean, reference.cov,
                                           mean, cov)}}


def _score(features, logits, reference, seed, labels, splits=10):
  del features, reference, seed, labels
  splits = min(splits, len(logits))
  mean, std = classifier_score(logits, splits=splits, from_logits=True)
  return {"score": {"value": mean, "std": std, "splits": splits}}


def _kid(features, logits, reference, seed, labels, num_subsets=100,
         subset_size=1000):
  del logits, labels
  mean, std = kernel_inception_distance(
      reference.features, features, num_subsets=num_subsets,
      subset_size=subset_size, seed=seed)
  size = min(subset_size, reference.num_images, len(features))
  return {"kid": {"value": mean, "std": std, "num_subsets": num_subsets,
                  "subset_size": size}}


def _precision_recall(features, logits, reference, seed, labels, k=3):
  del logits, seed, labels
  precision, recall = precision_recall(reference.features, features, k=k)
  return {"precision": {"value": precision, "k": k},
          "recall": {"value": recall, "k": k}}


def _density_coverage(features, logits, reference, seed, labels, k=5):
  del logits, seed, labels
  density, coverage = density_coverage(reference.features, features, k=k)
  return {"density": {"value": density, "k": k},
          "coverage": {"value": coverage, "k": k}}


def _class_coverage(features, logits, reference, seed, labels):
  del features, reference, seed, labels
  return {"class_coverage": {"value": class_coverage(logits,
                                                     logits.shape[-1])}}


def class_accuracy(logits: np.ndarray, labels: np.ndarray
                   ) -> Tuple[float, List[float]]:
  """Share of samples the classifier assigns to the class they were drawn
  for, overall and per class (NaN where a class was not requested)."""
  predicted = np.argmax(logits, axis=-1)
  right = predicted == labels
  per_class = [float(right[labels == c].mean()) if np.any(labels == c)
               else float("nan") for c in range(logits.shape[-1])]
  return float(right.mean()), per_class


def _class_accuracy(features, logits, reference, seed, labels):
  del features, reference, seed
  if labels is None:
    raise ConfigError("--metrics=class_accuracy needs the classes the samples "
                      "were drawn for: score a conditional run, or an .npz "
                      "with a `labels` array.")
  if labels.shape != (len(logits),) or not 0 <= labels.min() <= labels.max(
  ) < logits.shape[-1]:
    raise ConfigError(f"The labels ({labels.shape}, in [{labels.min()}, "
                      f"{labels.max()}]) must be one per sample and classes "
                      f"of the classifier (0..{logits.shape[-1] - 1}).")
  value, per_class = class_accuracy(logits, labels)
  return {"class_accuracy": {"value": value, "per_class": per_class}}


METRICS: Dict[str, MetricFn] = {
    "fd": _fd,
    "score": _score,
    "kid": _kid,
    "precision_recall": _precision_recall,
    "density_coverage": _density_coverage,
    "class_coverage": _class_coverage,
    "class_accuracy": _class_accuracy,
}
# Metrics that need the samples' requested classes (a conditional model);
# "every metric" means the others unless there are labels.
LABELLED_METRICS = ("class_accuracy",)
# Metrics of the extractor's class logits: "every metric" leaves them out for
# an extractor without any (Inception weights holding the features only).
LOGIT_METRICS = ("score", "class_coverage", "class_accuracy")


def check_metrics(metrics: Sequence[str]) -> None:
  """ConfigError naming any of `metrics` that is not a key of METRICS."""
  unknown = [m for m in metrics if m not in METRICS]
  if unknown:
    raise ConfigError(f"--metrics has unknown {', '.join(unknown)}; choose "
                      f"from {', '.join(METRICS)}.")


def check_logits(metrics: Sequence[str], extractor: FeatureExtractor) -> None:
  """ConfigError if any of `metrics` needs class logits the extractor lacks."""
  needs_logits = [m for m in metrics if m in LOGIT_METRICS]
  if needs_logits and not extractor.num_classes:
    raise ConfigError(
        f"--metrics={','.join(needs_logits)} needs class logits, and the "
        f"{extractor.name} weights have none (a features-only file, such as "
        "the TorchScript conversion): use pytorch-fid's .pth, or drop them.")


def evaluate(images, extractor: FeatureExtractor, reference: Reference, *,
             metrics: Sequence[str] = tuple(METRICS), seed: int = 0,
             labels: Optional[np.ndarray] = None,
             **context: Any) -> List[Dict[str, Any]]:
  """Scores generated images [M, H, W, C] (uint8, or float in [-1, 1]),
  drawn for classes `labels` int [M] if conditional (class_accuracy).

  Returns one record per metric: the metric, its value (and parameters),
  and the protocol (sample counts, split, extractor, weights hash, resize,
  seed) plus any `context` (e.g. source=..., step=...).
  """
  check_metrics(metrics)
  check_logits(metrics, extractor)
  if any(m in LABELLED_METRICS for m in metrics):
    if extractor.trained_on_sha256 is None:
      raise ConfigError(f"--metrics=class_accuracy needs the domain "
                        f"classifier of the dataset's own classes "
                        f"(--extractor=classifier), not {extractor.name}.")
  features, logits = extractor(images)
  if not np.isfinite(features).all():
    raise ConfigError("The generated images give non-finite features: check "
                      "that they are uint8 or float in [-1, 1].")
  protocol = {
      "num_real": reference.num_images,
      "num_generated": len(features),
      "dataset": reference.dataset,
      "reference_split": reference.split,
      "reference_sha256": reference.data_sha256,
      "extractor": extractor.name,
      "extractor_sha256": extractor.weights_sha256,
      **({"extractor_trained_on_sha256": extractor.trained_on_sha256}
         if extractor.trained_on_sha256 else {}),
      "resize": extractor.resize,
      "seed": seed,
      **context,
  }
  records = []
  for name in metrics:
    for metric, result in METRICS[name](features, logits, reference, seed,
                                        labels).items():
      if metric in LABELLED_METRICS:  # Its ceiling, on real images.
        result = {**result, "classifier_test_accuracy": extractor.info.get(
            "test_accuracy")}
      records.append({"metric": metric, **result, **protocol})
  return records


def by_metric(records: Sequence[Dict[str, Any]]) -> Dict[str, float]:
  """{metric: value} of a list of records."""
  return {r["metric"]: r["value"] for r in records}
