"""Batched nearest-neighbour queries on feature sets, for the manifold metrics.

Squared Euclidean distances are computed as matmuls,
||a||^2 - 2 a.b + ||b||^2, jitted, a block of rows at a time: the full
[N, M] matrix is never held, so memory is O(batch_size * M) (40 MB at the
default batch size for M = 10,000) and 10k x 10k feature sets fit anywhere.
Every block has the same shape (the last is padded), so each function
compiles once per (set size, feature dim).

All radii and distances here are squared; comparing squares gives the same
answers as comparing distances, without the square roots.
"""

import functools
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def feature_pair(real_features,
                 fake_features) -> Tuple[np.ndarray, np.ndarray]:
  """Checks and converts real [N, D] and fake [M, D] features to float64."""
  real = np.asarray(real_features, np.float64)
  fake = np.asarray(fake_features, np.float64)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(
        f"Expected real [N, D] and fake [M, D] features with one D, got "
        f"{real.shape} and {fake.shape}.")
  return real, fake


@jax.jit
def squared_distances(a: Array, b: Array) -> Array:
  """Squared Euclidean distances [A, B] of rows of a [A, D] and b [B, D].

  Clipped at 0, where cancellation of the matmul form can leave tiny
  negatives.
  """
  # HIGHEST so accelerators do not use TF32/bfloat16 passes for the float32
  # matmul, which would lose the digits that separate near neighbours.
  cross = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  sq = (jnp.sum(a * a, axis=1)[:, None] - 2.0 * cross
        + jnp.sum(b * b, axis=1)[None, :])
  return jnp.maximum(sq, 0.0)


@functools.partial(jax.jit, static_argnames="k")
def _kth_neighbour_block(rows: Array, row_start: Array, points: Array,
                         k: int) -> Array:
  """Squared distance [B] of rows [B, D] = points[row_start:][:B] to their
  k-th nearest neighbour among points [N, D], themselves excluded."""
  sq = squared_distances(rows, points)  # [B, N]
  # The k + 1 nearest, then each row's own entry dropped by index (not by
  # distance 0, so exact duplicates still count as neighbours). Masking the
  # own entry with inf before top_k instead is 30x slower on XLA:CPU.
  neg_nearest, index = jax.lax.top_k(-sq, k + 1)  # [B, k + 1]
  own = row_start + jnp.arange(rows.shape[0])
  others = jnp.where(index == own[:, None], jnp.inf, -neg_nearest)
  return jnp.sort(others, axis=1)[:, k - 1]


@jax.jit
def _ball_block(queries: Array, valid: Array, centers: Array,
                sq_radii: Array) -> Tuple[Array, Array]:
  """For queries [B, D] (valid [B] masks padding) and balls (centers [N, D],
  sq_radii [N]): balls containing each query [B], and whether each ball
  contains any query [N]."""
  inside = squared_distances(queries, centers) <= sq_radii[None, :]  # [B, N]
  inside = inside & valid[:, None]
  return inside.sum(axis=1), inside.any(axis=0)


def _batches(x: np.ndarray, batch_size: int):
  """Yields (start, block [b, D], valid [b]) with b = min(batch_size, N)."""
  n = x.shape[0]
  size = min(batch_size, n)
  padded = np.pad(x, ((0, -n % size), (0, 0)))
  for start in range(0, n, size):
    yield start, padded[start:start + size], np.arange(start, start + size) < n


def kth_neighbour_sq_radii(points, k: int, batch_size: int = 1024
                           ) -> np.ndarray:
  """Squared distance [N] of each of points [N, D] to its k-th nearest other
  point (NND_k in Kynkaenniemi et al. 2019 and Naeem et al. 2020)."""
  points = np.asarray(points, np.float32)
  n = points.shape[0]
  if not 1 <= k < n:
    raise ValueError(
        f"k-th nearest neighbours need 1 <= k < number of samples, got k={k} "
        f"with {n} samples.")
  device_points = jnp.asarray(points)
  radii = [_kth_neighbour_block(block, start, device_points, k)
           for start, block, _ in _batches(points, batch_size)]
  return np.concatenate([np.asarray(r) for r in radii])[:n]


def ball_membership(queries, centers, sq_radii, batch_size: int = 1024
                    ) -> Tuple[np.ndarray, np.ndarray]:
  """Which queries [Q, D] lie in which closed balls (centers [N, D], squared
  radii [N]).

  Returns:
    counts: int [Q], the number of balls containing each query.
    covered: bool [N], whether each ball contains at least one query.
  """
  queries = np.asarray(queries, np.float32)
  device_centers = jnp.asarray(np.asarray(centers, np.float32))
  device_radii = jnp.asarray(np.asarray(sq_radii, np.float32))
  counts = []
  covered = np.zeros(device_centers.shape[0], bool)
  for _, block, valid in _batches(queries, batch_size):
    block_counts, block_covered = _ball_block(block, valid, device_centers,
                                              device_radii)
    counts.append(np.asarray(block_counts))
    covered |= np.asarray(block_covered)
  return np.concatenate(counts)[:queries.shape[0]], covered
