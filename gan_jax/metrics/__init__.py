"""Evaluation metrics for generative models: pure functions of features.

Each takes numpy or JAX arrays (features from any network, e.g. Inception
pool features [N, 2048], or class predictions) and returns python floats.

  feature_statistics(features) -> (mean [D], cov [D, D])
  frechet_distance(mean1, cov1, mean2, cov2): FID, Heusel et al. 2017.
  frechet_distance_from_features(features1, features2)
  classifier_score(probs_or_logits, splits, from_logits) -> (mean, std):
    Inception score, Salimans et al. 2016.
  kernel_inception_distance(real, fake, num_subsets, subset_size, seed)
    -> (mean, std): KID, Binkowski et al. 2018.
  polynomial_mmd2(x, y): one unbiased MMD^2 estimate, KID's building block.
  precision_recall(real, fake, k) -> (precision, recall):
    Kynkaenniemi et al. 2019.
  density_coverage(real, fake, k) -> (density, coverage): Naeem et al. 2020.
  class_coverage(predicted_labels, num_classes): share of classes generated.

Features and logits come from the extractors of `gan_jax.metrics.extractors`
(the project's domain classifier, `classifier.py`, or FID's InceptionV3,
`inception.py`, its weights `inception_weights.py`); `gan_jax.metrics.evaluation` scores images with the
protocol attached. None of them is imported here: they need flax and orbax.
"""

from gan_jax.metrics.coverage import class_coverage
from gan_jax.metrics.frechet import feature_statistics
from gan_jax.metrics.frechet import frechet_distance
from gan_jax.metrics.frechet import frechet_distance_from_features
from gan_jax.metrics.kid import kernel_inception_distance
from gan_jax.metrics.kid import polynomial_mmd2
from gan_jax.metrics.manifold import density_coverage
from gan_jax.metrics.manifold import precision_recall
from gan_jax.metrics.scores import classifier_score

__all__ = [
    "class_coverage",
    "classifier_score",
    "density_coverage",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_features",
    "kernel_inception_distance",
    "polynomial_mmd2",
    "precision_recall",
]
