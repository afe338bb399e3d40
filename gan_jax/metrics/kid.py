"""Kernel Inception Distance (KID), in float64 numpy.

Binkowski et al. 2018, "Demystifying MMD GANs": the unbiased estimate of the
squared MMD between real and generated features under the cubic polynomial
kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets. Unlike FID it
is unbiased, so it can be compared across sample sizes.
"""

from typing import Tuple

import numpy as np

from gan_jax.metrics import distances


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """(x.y / d + 1)^3 for x [M, D], y [N, D] -> [M, N]."""
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def polynomial_mmd2(x, y) -> float:
  """Unbiased MMD^2 of samples x [M, D] and y [N, D] (M, N >= 2).

  Leaves out the diagonals of K_xx and K_yy (a sample compared with itself),
  which is what makes the estimate unbiased; M and N may differ.
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  m, n = x.shape[0], y.shape[0]
  k_xx = _polynomial_kernel(x, x)
  k_yy = _polynomial_kernel(y, y)
  k_xy = _polynomial_kernel(x, y)
  return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
               + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
               - 2.0 * k_xy.mean())


def kernel_inception_distance(real_features, fake_features,
                              num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> Tuple[float, float]:
  """KID of real [N, D] and fake [M, D] features; returns (mean, std).

  Each of num_subsets subsets draws min(subset_size, N, M) real and as many
  fake samples without replacement (numpy Generator from seed), so fewer
  samples than subset_size work; the std (ddof=0) is over subsets.
  """
  real, fake = distances.feature_pair(real_features, fake_features)
  size = min(subset_size, real.shape[0], fake.shape[0])
  if size < 2:
    raise ValueError(
        f"KID needs at least 2 real and 2 fake samples per subset for the "
        f"unbiased estimator, got {real.shape[0]} real, {fake.shape[0]} fake "
        f"and subset_size={subset_size}.")
  rng = np.random.default_rng(seed)
  estimates = [
      polynomial_mmd2(real[rng.choice(real.shape[0], size, replace=False)],
                      fake[rng.choice(fake.shape[0], size, replace=False)])
      for _ in range(num_subsets)]
  return float(np.mean(estimates)), float(np.std(estimates))
