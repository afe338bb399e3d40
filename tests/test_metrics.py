import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance

from gan_jax import metrics
from gan_jax.metrics import distances


def _gaussian(n, d, seed, shift=0.0):
  return np.random.default_rng(seed).normal(size=(n, d)) + shift


def _random_spd(d, seed):
  """A A^T / n + eps I with n > d: well conditioned, and two draws do not
  commute, so Tr((S1 S2)^{1/2}) is not Tr(S1^{1/2} S2^{1/2})."""
  a = np.random.default_rng(seed).normal(size=(d, 2 * d))
  return a @ a.T / (2 * d) + 1e-3 * np.eye(d)


# Frechet distance.


def test_feature_statistics_match_numpy():
  features = _gaussian(300, 8, seed=0)
  mean, cov = metrics.feature_statistics(jnp.asarray(features, jnp.float32))
  np.testing.assert_allclose(mean, features.mean(0), atol=1e-6)
  np.testing.assert_allclose(cov, np.cov(features, rowvar=False), atol=1e-6)
  assert cov.dtype == np.float64
  assert metrics.feature_statistics(features[:, :1])[1].shape == (1, 1)
  with pytest.raises(ValueError, match="at least 2 samples"):
    metrics.feature_statistics(features[:1])


def test_frechet_distance_of_identical_features_is_zero():
  features = _gaussian(300, 16, seed=0, shift=3.0)
  scale = np.trace(np.cov(features, rowvar=False))  # About 16.
  fd = metrics.frechet_distance_from_features(features, features.copy())
  assert abs(fd) < 1e-6 * scale


def test_frechet_distance_of_shifted_unit_gaussians_is_squared_shift():
  mu = np.array([1.0, -2.0, 0.5, 3.0])  # ||mu||^2 = 14.25
  eye = np.eye(4)
  assert metrics.frechet_distance(np.zeros(4), eye, mu, eye) == pytest.approx(
      14.25, abs=1e-12)


def test_frechet_distance_of_diagonal_gaussians_has_closed_form():
  # Diagonal covariances commute: Tr((AB)^{1/2}) = sum sqrt(a b), so
  # FD = ||mu1 - mu2||^2 + sum (sqrt(a) - sqrt(b))^2.
  rng = np.random.default_rng(0)
  a, b = rng.uniform(0.1, 4.0, size=(2, 10))
  mu1, mu2 = rng.normal(size=(2, 10))
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  # Hand check: (sqrt 4 - sqrt 1)^2 = 1, plus the shift (3 - 0)^2 = 9.
  assert metrics.frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == (
      pytest.approx(10.0, abs=1e-12))
  assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == (
      pytest.approx(expected, rel=1e-10))


@pytest.mark.parametrize("d", [32, 64])
def test_frechet_distance_matches_scipy_sqrtm(d):
  cov1, cov2 = _random_spd(d, seed=d), _random_spd(d, seed=d + 1)
  assert not np.allclose(cov1 @ cov2, cov2 @ cov1)
  mu1, mu2 = np.random.default_rng(d).normal(size=(2, d)) * 0.1
  trace_sqrt = np.trace(np.real(scipy.linalg.sqrtm(cov1 @ cov2)))
  expected = (np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2)
              - 2 * trace_sqrt)
  fd = metrics.frechet_distance(mu1, cov1, mu2, cov2)
  assert abs(fd - expected) < 1e-3 * abs(expected)


def test_frechet_distance_is_finite_for_singular_covariances():
  # 20 samples in 64 dims: rank-19 covariances, where sqrtm can go complex.
  a, b = _gaussian(20, 64, seed=0), _gaussian(20, 64, seed=1, shift=0.5)
  fd_ab = metrics.frechet_distance_from_features(a, b)
  assert np.isfinite(fd_ab) and fd_ab > 0
  assert fd_ab == pytest.approx(metrics.frechet_distance_from_features(b, a),
                                rel=1e-9)


# Precision, recall, density, coverage.


def test_identical_sets_have_full_precision_recall_and_coverage():
  features = _gaussian(300, 16, seed=0)
  precision, recall = metrics.precision_recall(features, features.copy())
  _, coverage = metrics.density_coverage(features, features.copy())
  assert (precision, recall, coverage) == (1.0, 1.0, 1.0)


def test_disjoint_sets_score_zero():
  real = _gaussian(200, 16, seed=0)
  fake = _gaussian(150, 16, seed=1, shift=100.0)
  assert metrics.precision_recall(real, fake) == (0.0, 0.0)
  assert metrics.density_coverage(real, fake) == (0.0, 0.0)


def test_manifold_metrics_by_hand():
  # Reals at 0, 1, 2, 3: with k=1 every ball has radius 1. Fake 0.5 lies in
  # the balls of 0 and 1, fake 10 in none. Each fake's ball has radius 9.5,
  # so the one around 0.5 holds every real.
  real = np.array([[0.0], [1.0], [2.0], [3.0]])
  fake = np.array([[0.5], [10.0]])
  assert metrics.precision_recall(real, fake, k=1) == (0.5, 1.0)
  # Density 2 / (k M) = 2 / 2 = 1; coverage: 2 of 4 balls hold a fake.
  assert metrics.density_coverage(real, fake, k=1) == (1.0, 0.5)
  # Balls are closed (distance <= radius, as in the paper): fake 4 lies on the
  # boundary of real 3's ball.
  assert metrics.precision_recall(real, [[4.0], [10.0]], k=1)[0] == 0.5


def test_manifold_metrics_match_brute_force_at_any_batch_size():
  real = _gaussian(200, 8, seed=0)
  fake = _gaussian(150, 8, seed=1, shift=0.7)
  d_rr = scipy.spatial.distance.cdist(real, real)
  d_ff = scipy.spatial.distance.cdist(fake, fake)
  d_fr = scipy.spatial.distance.cdist(fake, real)  # [M, N]
  r_real3 = np.sort(d_rr, axis=1)[:, 3]  # Column 0 is the point itself.
  r_fake3 = np.sort(d_ff, axis=1)[:, 3]
  precision = np.mean((d_fr <= r_real3[None, :]).any(1))
  recall = np.mean((d_fr.T <= r_fake3[None, :]).any(1))
  inside5 = d_fr <= np.sort(d_rr, axis=1)[:, 5][None, :]  # [M, N]
  density = inside5.sum() / (5 * len(fake))
  coverage = inside5.any(0).mean()
  assert 0.05 < precision < 0.95 and 0.05 < coverage < 0.95  # Not trivial.
  for batch_size in (1024, 64):  # 64 pads the last block of both sets.
    assert metrics.precision_recall(real, fake, k=3, batch_size=batch_size) == (
        pytest.approx((precision, recall), abs=1e-12))
    assert metrics.density_coverage(real, fake, k=5, batch_size=batch_size) == (
        pytest.approx((density, coverage), abs=1e-12))


def test_kth_neighbour_radii_count_duplicates_and_check_k():
  points = np.array([[0.0], [0.0], [3.0]])
  np.testing.assert_allclose(distances.kth_neighbour_sq_radii(points, 1),
                             [0.0, 0.0, 9.0])
  with pytest.raises(ValueError, match="k < number of samples"):
    distances.kth_neighbour_sq_radii(points, 3)


# Classifier (Inception) score.


def test_classifier_score_of_uniform_predictions_is_one():
  probs = np.full((100, 10), 0.1)
  mean, std = metrics.classifier_score(probs, splits=10)
  assert mean == pytest.approx(1.0, abs=1e-12) and std < 1e-12


def test_classifier_score_of_confident_even_predictions_is_num_classes():
  labels = np.arange(200) % 10  # Each split of 20 holds every class twice.
  mean, std = metrics.classifier_score(np.eye(10)[labels], splits=10)
  assert mean == pytest.approx(10.0, abs=1e-4) and std < 1e-4


def test_classifier_score_by_hand():
  # p(y) = (0.75, 0.25); KL = log(4/3) = 0.287682 and
  # 0.5 log(2/3) + 0.5 log 2 = 0.143841; exp(mean) = exp(0.215762) = 1.24081.
  mean, _ = metrics.classifier_score([[1.0, 0.0], [0.5, 0.5]], splits=1)
  assert mean == pytest.approx(1.24081, abs=1e-5)


def test_classifier_score_from_logits_matches_probabilities():
  logits = np.random.default_rng(0).normal(size=(90, 7)) * 3.0
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  from_probs = metrics.classifier_score(probs, splits=3)
  assert metrics.classifier_score(logits, splits=3, from_logits=True) == (
      pytest.approx(from_probs, rel=1e-9))
  # float32 JAX logits: the same up to float32 rounding.
  assert metrics.classifier_score(jnp.asarray(logits), splits=3,
                                  from_logits=True) == (
      pytest.approx(from_probs, rel=1e-6))
  # Huge logits stay finite where exp() would overflow.
  assert np.isfinite(metrics.classifier_score(logits * 1e3, splits=3,
                                              from_logits=True)[0])


# Kernel Inception distance.


def _mmd2_double_loop(x, y):
  kernel = lambda a, b: (a @ b / len(a) + 1.0) ** 3
  m, n = len(x), len(y)
  k_xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  k_yy = sum(kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
  k_xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(n))
  return k_xx / (m * (m - 1)) + k_yy / (n * (n - 1)) - 2 * k_xy / (m * n)


def test_mmd2_matches_double_loop():
  x, y = _gaussian(5, 3, seed=0), _gaussian(6, 3, seed=1, shift=0.5)
  assert metrics.polynomial_mmd2(x, y) == pytest.approx(
      _mmd2_double_loop(x, y), abs=1e-6)
  # One subset of all 5 vs 5 samples: the subset is a permutation.
  mean, std = metrics.kernel_inception_distance(x, y[:5], num_subsets=1)
  assert mean == pytest.approx(_mmd2_double_loop(x, y[:5]), abs=1e-6)
  assert std == 0.0


def test_kid_is_near_zero_for_one_distribution_and_grows_with_shift():
  real = _gaussian(200, 16, seed=0)
  same, _ = metrics.kernel_inception_distance(
      real, _gaussian(200, 16, seed=1), num_subsets=20, subset_size=100)
  shifted, _ = metrics.kernel_inception_distance(
      real, _gaussian(200, 16, seed=1, shift=1.0), num_subsets=20,
      subset_size=100)
  assert shifted > 0.1
  assert abs(same) < 0.05 * shifted


def test_kid_falls_back_to_the_smaller_set():
  real, fake = _gaussian(30, 8, seed=0), _gaussian(40, 8, seed=1)
  kid = metrics.kernel_inception_distance(real, fake, num_subsets=5,
                                          subset_size=1000)
  assert np.all(np.isfinite(kid))
  assert kid == metrics.kernel_inception_distance(real, fake, num_subsets=5,
                                                  subset_size=30)
  with pytest.raises(ValueError, match="at least 2 real and 2 fake"):
    metrics.kernel_inception_distance(real[:1], fake)


# Class coverage.


def test_class_coverage():
  assert metrics.class_coverage(np.full(50, 3), num_classes=10) == 0.1
  assert metrics.class_coverage(np.arange(50) % 10, num_classes=10) == 1.0
  probs = np.eye(10)[np.array([0, 1, 2, 2, 1])] * 0.9 + 0.01
  assert metrics.class_coverage(jnp.asarray(probs), num_classes=10) == 0.3
  with pytest.raises(ValueError, match=r"\[0, 10\)"):
    metrics.class_coverage(np.array([0, 10]), num_classes=10)
