"""k-means of images, for conditioning a GAN on clusters instead of labels.

A class-conditional GAN trains far better than an unconditional one on the
same budget (README, "Conditional generation"), but needs labels. Clusters
found without labels give some of that back (the self-conditioned GAN of
Liu et al. 2020 clusters D's features; here the clusters are of the pixels,
found once before training, so they stay fixed and cost nothing per step).

k-means++ seeding (Arthur & Vassilvitskii 2007) from a fixed seed, then
Lloyd's iterations, jitted: the same images give the same clusters, so a
resumed run trains on the clusters it started with.
"""

import functools
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np


def _squared_distances(points: jax.Array, centroids: jax.Array) -> jax.Array:
  """||p - c||^2 [N, K] as one matmul (the |p|^2 term kept: it is cheap)."""
  return (jnp.sum(points ** 2, axis=1, keepdims=True)
          - 2.0 * points @ centroids.T + jnp.sum(centroids ** 2, axis=1))


@functools.partial(jax.jit, static_argnames="iterations")
def _lloyd(points: jax.Array, centroids: jax.Array, iterations: int
           ) -> Tuple[jax.Array, jax.Array]:
  k = centroids.shape[0]

  def step(_, centroids):
    one_hot = jax.nn.one_hot(
        jnp.argmin(_squared_distances(points, centroids), axis=1), k,
        dtype=points.dtype)
    counts = jnp.sum(one_hot, axis=0)[:, None]
    means = (one_hot.T @ points) / jnp.maximum(counts, 1.0)
    return jnp.where(counts > 0, means, centroids)  # An empty cluster stays.

  centroids = jax.lax.fori_loop(0, iterations, step, centroids)
  return centroids, jnp.argmin(_squared_distances(points, centroids), axis=1)


def kmeans(points: np.ndarray, k: int, seed: int = 0, iterations: int = 30
           ) -> Tuple[np.ndarray, np.ndarray]:
  """k-means of points [N, D]: (centroids float32 [k, D], assignments int32
  [N]). k-means++ seeding from `seed`, then `iterations` Lloyd steps."""
  points = np.asarray(points, np.float32)
  if not 1 <= k <= len(points):
    raise ValueError(f"k-means of {len(points)} points into {k} clusters: "
                     "k must be between 1 and the number of points.")
  rng = np.random.default_rng(seed)
  chosen = [int(rng.integers(len(points)))]
  nearest = np.sum((points - points[chosen[0]]) ** 2, axis=1)
  for _ in range(k - 1):
    # The next seed is drawn with probability proportional to its squared
    # distance from the nearest seed so far.
    total = float(np.sum(nearest))
    chosen.append(int(rng.choice(len(points), p=nearest / total)) if total
                  else int(rng.integers(len(points))))
    nearest = np.minimum(nearest,
                         np.sum((points - points[chosen[-1]]) ** 2, axis=1))
  centroids, assignments = _lloyd(jnp.asarray(points),
                                  jnp.asarray(points[chosen]), iterations)
  return np.asarray(centroids), np.asarray(assignments, np.int32)


# Images are clustered at no more than this many values each: larger ones
# are average-pooled 2x2 until they fit (64x64x3 -> 16x16x3), which keeps
# k-means' memory at N x 4 KB (800 MB for CelebA's 200k images) and leaves
# MNIST's 28x28 as they are.
MAX_POINT_SIZE = 1024


def image_points(images: np.ndarray) -> np.ndarray:
  """images uint8 [N, H, W, C] -> float32 [N, D] in [0, 1], D at most
  MAX_POINT_SIZE where 2x2 pooling can get there."""
  points = images.astype(np.float32) / 255.0
  while (np.prod(points.shape[1:]) > MAX_POINT_SIZE
         and points.shape[1] % 2 == 0 and points.shape[2] % 2 == 0):
    n, h, w, c = points.shape
    points = points.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
  return points.reshape(len(points), -1)


def cluster_images(images: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
  """Cluster ids int32 [N] of images uint8 [N, H, W, C], by k-means of their
  pixels scaled to [0, 1] (`image_points`)."""
  return kmeans(image_points(images), k, seed)[1]
