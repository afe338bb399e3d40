"""Spectral norm of D against a power iteration written out in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models, steps
from gan_jax.errors import ConfigError
from gan_jax.families import gan
from gan_jax.state import create_state

SHAPE = (28, 28, 1)


def _normalize(x):
  return x / max(np.linalg.norm(x), 1e-12)


def _power_iteration(kernel, u, times):
  """u <- normalize(normalize(u W^T) W), `times` times; and sigma = v W u^T
  of the last one (Miyato et al. 2018, algorithm 1)."""
  w = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
  u = np.asarray(u, np.float64)
  for _ in range(times):
    v = _normalize(u @ w.T)
    u = _normalize(v @ w)
  return u, float((v @ w @ u.T)[0, 0])


def _state(**changes):
  config = gan.GANConfig(arch="dcgan_tiny", latent_dim=8, spectral_norm=True,
                         **changes)
  return create_state(config, SHAPE, rng=jax.random.key(3))


def _batch(seed=0):
  return {"image": jax.random.uniform(jax.random.key(seed), (8,) + SHAPE,
                                      minval=-1.0, maxval=1.0)}


def _conv1(stats):
  return stats["SpectralNorm_1"]["Conv_1/kernel/u"], stats[
      "SpectralNorm_1"]["Conv_1/kernel/sigma"]


def test_u_and_sigma_live_in_batch_stats_not_params():
  state = _state()
  paths = [jax.tree_util.keystr(p) for p, _ in
           jax.tree_util.tree_flatten_with_path(state.d.params)[0]]
  assert not any("/u" in p or "sigma" in p for p in paths)
  assert _conv1(state.d.batch_stats)[0].shape == (1, 16)
  # The DCGAN D drops BatchNorm under spectral norm (as SNGAN's CNN does).
  assert not any("BatchNorm" in p for p in paths)


def test_a_train_step_keeps_one_power_iteration_per_d_pass():
  """D's step runs D on the real batch, then on the fakes; each train-mode
  pass iterates u once from the last one and keeps it, so a step moves u by
  two iterations, with the pre-update weights. G's pass keeps nothing."""
  state = _state()
  u0, _ = _conv1(state.d.batch_stats)
  kernel = state.d.params["Conv_1"]["kernel"]
  new_state, _ = jax.jit(steps.train_step)(state, _batch())
  u2, sigma2 = _conv1(new_state.d.batch_stats)
  expected_u, expected_sigma = _power_iteration(kernel, u0, 2)
  np.testing.assert_allclose(u2, expected_u, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(sigma2, expected_sigma, rtol=1e-5)
  # G's step reads D's stored u (one iteration from it, not kept): its
  # loss is D's train-mode output on G's fakes with those variables.
  key = jax.random.key(0)
  _, g_metrics = steps.g_step(state.g, state.d.params, key, batch_size=8,
                              d_batch_stats=state.d.batch_stats)
  z = steps.sample_latents(steps._stream_keys(key)[0], 8, 8)  # pylint: disable=protected-access
  fake = state.g.apply_fn(state.g.variables(), z, train=True,
                          mutable=["batch_stats"])[0]
  logits = state.game.discriminator.apply(
      state.d.variables(), fake, train=True, mutable=["batch_stats"])[0]
  np.testing.assert_allclose(g_metrics["g_loss"],
                             np.mean(np.logaddexp(0.0, -np.asarray(logits))),
                             rtol=1e-5)


def test_layer_output_is_the_weight_over_its_estimated_sigma():
  state = _state()
  discriminator = state.game.discriminator
  images = _batch(1)["image"]
  # Eval mode: deterministic, and u does not move.
  out, updates = discriminator.apply(state.d.variables(), images, train=False,
                                     mutable=["batch_stats"])
  again = discriminator.apply(state.d.variables(), images, train=False)
  np.testing.assert_array_equal(out, again)
  for a, b in zip(jax.tree.leaves(updates["batch_stats"]),
                  jax.tree.leaves(state.d.batch_stats)):
    if a.ndim:  # u vectors; sigma scalars are recomputed and not kept.
      np.testing.assert_array_equal(a, b)
  # The last layer is a dense [784, 1]: its normalised weight is W / ||W||
  # after any number of iterations, so D(x) is <x', W> / ||W|| + b exactly.
  features = _features_before_dense(state, images)
  w = np.asarray(state.d.params["Dense_0"]["kernel"], np.float64)
  b = float(state.d.params["Dense_0"]["bias"][0])
  np.testing.assert_allclose(out, features @ w[:, 0] / np.linalg.norm(w) + b,
                             rtol=1e-4, atol=1e-5)


def _features_before_dense(state, images):
  """The flattened input of D's dense layer: its eval-mode convs by hand,
  each kernel over the sigma of one iteration from the stored u."""
  x = images
  for i, name in enumerate(("Conv_0", "Conv_1")):
    kernel = np.asarray(state.d.params[name]["kernel"], np.float64)
    u = state.d.batch_stats[f"SpectralNorm_{i}"][f"{name}/kernel/u"]
    _, sigma = _power_iteration(kernel, u, 1)
    x = jax.lax.conv_general_dilated(
        np.asarray(x, np.float64), kernel / sigma, (2, 2), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = x + np.asarray(state.d.params[name]["bias"], np.float64)
    x = np.where(x > 0, x, 0.2 * x)
  return np.asarray(x).reshape(x.shape[0], -1)


def test_sigma_converges_to_the_largest_singular_value():
  state = _state()
  variables = state.d.variables()
  images = _batch(2)["image"]
  apply = jax.jit(lambda v: state.game.discriminator.apply(
      v, images, train=True, mutable=["batch_stats"])[1])
  for _ in range(200):
    variables = {"params": variables["params"], **apply(variables)}
  _, sigma = _conv1(variables["batch_stats"])
  kernel = np.asarray(state.d.params["Conv_1"]["kernel"], np.float64)
  largest = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]),
                          compute_uv=False)[0]
  np.testing.assert_allclose(sigma, largest, rtol=1e-3)


def test_spectral_norm_needs_a_discriminator_that_has_it():
  with pytest.raises(ConfigError, match="--spectral_norm"):
    models.with_spectral_norm(models.create("mlp")[1])
