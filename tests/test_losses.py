import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

REAL = np.array([2.0, -1.0], np.float32)
FAKE = np.array([0.5, -3.0], np.float32)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def test_minimax_d_loss_matches_cross_entropy():
  expected = (-np.mean(np.log(_sigmoid(REAL)))
              - np.mean(np.log(1.0 - _sigmoid(FAKE))))
  # Hand check of the first term: -log(sigmoid(2)) = log(1 + e^-2) = 0.126928.
  assert np.isclose(-np.log(_sigmoid(2.0)), 0.126928, atol=1e-6)
  np.testing.assert_allclose(losses.minimax_d_loss(REAL, FAKE), expected,
                             rtol=1e-6)


def test_generator_losses():
  np.testing.assert_allclose(losses.minimax_g_loss(FAKE),
                             np.mean(np.log(1.0 - _sigmoid(FAKE))), rtol=1e-6)
  np.testing.assert_allclose(losses.non_saturating_g_loss(FAKE),
                             -np.mean(np.log(_sigmoid(FAKE))), rtol=1e-6)
  # At D(G(z)) = 1/2 both equal -log 2 / +log 2.
  np.testing.assert_allclose(losses.minimax_g_loss(np.zeros(3)), -np.log(2),
                             rtol=1e-6)
  np.testing.assert_allclose(losses.non_saturating_g_loss(np.zeros(3)),
                             np.log(2), rtol=1e-6)


def test_hinge_losses():
  # relu(1-2)=0, relu(1+1)=2 -> 1.0; relu(1+0.5)=1.5, relu(1-3)=0 -> 0.75.
  np.testing.assert_allclose(losses.hinge_d_loss(REAL, FAKE), 1.75, rtol=1e-6)
  np.testing.assert_allclose(losses.hinge_g_loss(FAKE), 1.25, rtol=1e-6)


def test_wasserstein_losses():
  # E fake = (0.5 - 3) / 2 = -1.25, E real = (2 - 1) / 2 = 0.5.
  np.testing.assert_allclose(losses.wasserstein_d_loss(REAL, FAKE), -1.75,
                             rtol=1e-6)
  np.testing.assert_allclose(losses.wasserstein_g_loss(FAKE), 1.25, rtol=1e-6)


def test_least_squares_losses():
  # D: 1/2 [((2-1)^2 + (-1-1)^2) / 2 + (0.5^2 + 3^2) / 2] = 1/2 [2.5 + 4.625].
  np.testing.assert_allclose(losses.least_squares_d_loss(REAL, FAKE), 3.5625,
                             rtol=1e-6)
  # G: 1/2 [((0.5-1)^2 + (-3-1)^2) / 2] = 1/2 * 8.125.
  np.testing.assert_allclose(losses.least_squares_g_loss(FAKE), 4.0625,
                             rtol=1e-6)
  # At the optimum D(x) = 1 for real and 0 for fake: zero D loss.
  assert float(losses.least_squares_d_loss(np.ones(2), np.zeros(2))) == 0.0


def test_relativistic_average_losses():
  # E real = 0.5, E fake = -1.25. D: real - E fake = [3.25, 0.25], fake -
  # E real = [0, -3.5]; -log sig(a) = softplus(-a), -log(1 - sig(a)) =
  # softplus(a).
  softplus = lambda a: np.log1p(np.exp(np.asarray(a, np.float64)))
  d = (np.mean(softplus([-3.25, -0.25])) + np.mean(softplus([0.0, -3.5])))
  np.testing.assert_allclose(losses.relativistic_average_d_loss(REAL, FAKE),
                             d, rtol=1e-6)
  # Hand value of one term: softplus(0) = log 2.
  assert np.isclose(softplus(0.0), np.log(2))
  # G swaps the roles: fakes should look more real than the real batch.
  g = (np.mean(softplus([0.0, 3.5])) + np.mean(softplus([3.25, 0.25])))
  np.testing.assert_allclose(losses.relativistic_average_g_loss(FAKE, REAL),
                             g, rtol=1e-6)
  assert losses.LOSSES["relativistic_average"].g_uses_real
  # Shifting every logit by a constant changes nothing: only differences
  # between real and fake count.
  np.testing.assert_allclose(
      losses.relativistic_average_d_loss(REAL + 7, FAKE + 7), d, rtol=1e-6)


def _g_loss(loss, fake_logits, real_logits):
  if loss.g_uses_real:
    return loss.g_loss(fake_logits, real_logits)
  return loss.g_loss(fake_logits)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_large_logits_stay_finite(name):
  loss = losses.LOSSES[name]
  big = jnp.array([1e4, -1e4, 88.0, -104.0], jnp.float32)
  values = [loss.d_loss(big, -big), loss.d_loss(-big, big),
            _g_loss(loss, big, -big), _g_loss(loss, -big, big)]
  grads = [jax.grad(lambda x: loss.d_loss(x, x))(big),
           jax.grad(lambda x: _g_loss(loss, x, -x))(big)]
  for v in values + grads:
    assert np.all(np.isfinite(np.asarray(v))), (name, v)


def test_saturation_regimes():
  # Confidently rejected fakes: D loss ~ 0, NS generator loss ~ logit size.
  np.testing.assert_allclose(
      losses.minimax_d_loss(jnp.array([1e4]), jnp.array([-1e4])), 0.0,
      atol=1e-6)
  np.testing.assert_allclose(
      losses.non_saturating_g_loss(jnp.array([-1e4])), 1e4, rtol=1e-6)
  # The minimax generator gradient vanishes there; the NS one does not.
  assert abs(float(jax.grad(losses.minimax_g_loss)(jnp.array([-30.0]))[0])) < 1e-12
  np.testing.assert_allclose(
      jax.grad(losses.non_saturating_g_loss)(jnp.array([-30.0])), [-1.0],
      rtol=1e-6)


def test_losses_compute_in_float32():
  logits = jnp.array([0.3, -0.7], jnp.bfloat16)
  for loss in losses.LOSSES.values():
    assert loss.d_loss(logits, logits).dtype == jnp.float32
    assert _g_loss(loss, logits, logits).dtype == jnp.float32
