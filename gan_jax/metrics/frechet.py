"""Frechet distance between Gaussians fitted to features (FID), in float64.

Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to
a Local Nash Equilibrium": with (mu, S) the mean and covariance of Inception
features of real and generated images,

    FD = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2}).

Everything here runs in float64 numpy: FID is a small difference of large
traces (Tr(S) is in the hundreds for 2048-d Inception features while FID can
be single digits), and float32's ~7 digits would be spent on the part that
cancels.
"""

from typing import Tuple

import numpy as np


def _as_features(features) -> np.ndarray:
  features = np.asarray(features, np.float64)
  if features.ndim != 2:
    raise ValueError(
        f"features must be [N, D], got shape {features.shape}.")
  return features


def feature_statistics(features) -> Tuple[np.ndarray, np.ndarray]:
  """Mean [D] and unbiased covariance [D, D] of features [N, D], float64.

  The covariance equals np.cov(features, rowvar=False), but stays [D, D] for
  D = 1. Needs N >= 2.
  """
  features = _as_features(features)
  n = features.shape[0]
  if n < 2:
    raise ValueError(
        f"feature_statistics needs at least 2 samples for an unbiased "
        f"covariance, got {n}.")
  mean = features.mean(axis=0)
  centered = features - mean
  return mean, centered.T @ centered / (n - 1)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """Symmetric PSD square root of a symmetric [D, D] matrix, via eigh.

  Eigenvalues a covariance should not have, but rounding can give (tiny
  negatives), are clipped to 0 instead of producing NaNs or complex numbers.
  """
  eigenvalues, eigenvectors = np.linalg.eigh(matrix)
  return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
          ) @ eigenvectors.T


def trace_sqrt_product(cov1, cov2) -> float:
  """Tr((S1 S2)^{1/2}) for symmetric PSD S1, S2 [D, D].

  S1 S2 is not symmetric, but it is similar to sqrt(S1) S2 sqrt(S1), which is
  symmetric PSD, so the two share eigenvalues. Taking them with eigvalsh is
  exact in exact arithmetic and, unlike scipy.linalg.sqrtm(S1 @ S2), never
  returns complex parts or fails on singular (rank-deficient) covariances.
  """
  cov1 = np.asarray(cov1, np.float64)
  cov2 = np.asarray(cov2, np.float64)
  sqrt_cov1 = _psd_sqrt((cov1 + cov1.T) / 2)
  middle = sqrt_cov1 @ cov2 @ sqrt_cov1
  middle = (middle + middle.T) / 2  # Undo the rounding asymmetry for eigvalsh.
  return float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None))))


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
  """Frechet distance of N(mean1 [D], cov1 [D, D]) and N(mean2, cov2).

  Heusel et al. 2017 (FID). Not clipped: rounding can make it a tiny negative
  number when the two Gaussians are equal.
  """
  mean1 = np.atleast_1d(np.asarray(mean1, np.float64))
  mean2 = np.atleast_1d(np.asarray(mean2, np.float64))
  cov1 = np.atleast_2d(np.asarray(cov1, np.float64))
  cov2 = np.atleast_2d(np.asarray(cov2, np.float64))
  d = mean1.shape[0]
  if (mean1.shape != (d,) or mean2.shape != (d,) or cov1.shape != (d, d)
      or cov2.shape != (d, d)):
    raise ValueError(
        f"Expected means [D] and covariances [D, D] with one D, got "
        f"{mean1.shape}, {cov1.shape}, {mean2.shape}, {cov2.shape}.")
  diff = mean1 - mean2
  return float(diff @ diff + np.trace(cov1) + np.trace(cov2)
               - 2.0 * trace_sqrt_product(cov1, cov2))


def frechet_distance_from_features(features1, features2) -> float:
  """Frechet distance of Gaussians fitted to features [N1, D] and [N2, D]."""
  return frechet_distance(*feature_statistics(features1),
                          *feature_statistics(features2))
