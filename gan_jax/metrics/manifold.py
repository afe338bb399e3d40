"""Sample-based fidelity and diversity: precision, recall, density, coverage.

Each set of features is taken to span a "manifold": the union of balls around
its samples, each with the radius to that sample's k-th nearest neighbour in
the same set. Unlike FID, these separate the two failure modes: low
precision/density means unrealistic samples, low recall/coverage means missing
modes.

  Kynkaenniemi et al. 2019, "Improved Precision and Recall Metric for
    Assessing Generative Models".
  Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
    Models".

Distances are computed in float32 on the default JAX device, in row batches
(see distances.py).
"""

from typing import Tuple

import numpy as np

from gan_jax.metrics import distances


def _prepare(real_features, fake_features) -> Tuple[np.ndarray, np.ndarray]:
  """Checks shapes; centres both sets on the real mean.

  Distances do not change under a shared shift, but the float32 matmul form
  ||a||^2 - 2 a.b + ||b||^2 loses digits when ||a||^2 is large next to the
  distances, as with features far from the origin.
  """
  real, fake = distances.feature_pair(real_features, fake_features)
  shift = real.mean(axis=0)
  return (real - shift).astype(np.float32), (fake - shift).astype(np.float32)


def precision_recall(real_features, fake_features, k: int = 3,
                     batch_size: int = 1024) -> Tuple[float, float]:
  """Improved precision and recall, Kynkaenniemi et al. 2019.

  Args:
    real_features: [N, D] features of real samples.
    fake_features: [M, D] features of generated samples.
    k: neighbour defining each ball's radius (the paper uses 3); needs
      k < N and k < M.
    batch_size: rows per distance block; memory is O(batch_size * max(N, M)).

  Returns:
    (precision, recall): the share of fake samples inside the real manifold,
    and of real samples inside the fake manifold.
  """
  real, fake = _prepare(real_features, fake_features)
  real_radii = distances.kth_neighbour_sq_radii(real, k, batch_size)
  fake_radii = distances.kth_neighbour_sq_radii(fake, k, batch_size)
  fake_counts, _ = distances.ball_membership(fake, real, real_radii,
                                             batch_size)
  real_counts, _ = distances.ball_membership(real, fake, fake_radii,
                                             batch_size)
  return float(np.mean(fake_counts > 0)), float(np.mean(real_counts > 0))


def density_coverage(real_features, fake_features, k: int = 5,
                     batch_size: int = 1024) -> Tuple[float, float]:
  """Density and coverage, Naeem et al. 2020.

  With B_i the ball around real sample i of radius NND_k(real_i), N real and
  M fake samples:
    density = 1 / (k M) * sum_j #{i : fake_j in B_i},
    coverage = 1 / N * #{i : some fake_j in B_i}.
  Density is about 1 when fakes follow the real distribution and can exceed
  1; coverage is in [0, 1].

  Args:
    real_features: [N, D] features of real samples (k < N).
    fake_features: [M, D] features of generated samples.
    k: neighbour defining each ball's radius (the paper uses 5).
    batch_size: rows per distance block; memory is O(batch_size * N).
  """
  real, fake = _prepare(real_features, fake_features)
  real_radii = distances.kth_neighbour_sq_radii(real, k, batch_size)
  counts, covered = distances.ball_membership(fake, real, real_radii,
                                              batch_size)
  return float(counts.sum() / (k * fake.shape[0])), float(covered.mean())
