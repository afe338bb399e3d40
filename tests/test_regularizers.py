"""Regularisers: penalties by hand, eager and lazy updates, optimizer scaling."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import optax

from gan_jax import regularizers, steps
from gan_jax.families import gan
from gan_jax.regularizers import Regularizer
from gan_jax.errors import ConfigError
from gan_jax.state import create_state, make_optimizer

SHAPE = (4, 4, 1)


class LinearD(nn.Module):
  """D(x) = <k, x> + b: its input gradient is k for every image."""

  @nn.compact
  def __call__(self, x, train=True):
    del train
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]


def _images(seed, n=6):
  return jax.random.uniform(jax.random.key(seed), (n,) + SHAPE, minval=-1.0,
                            maxval=1.0)


def _state(*regs, lr=1e-2):
  config = gan.GANConfig(arch="mlp_tiny", latent_dim=4, lr=lr,
                         discriminator=LinearD(), d_regularizers=regs)
  return create_state(config, SHAPE)


def test_r1_and_r2_of_a_linear_discriminator():
  state = _state()
  kernel = state.d.params["Dense_0"]["kernel"]
  discriminate = lambda x: state.d.apply_fn(state.d.variables(), x)
  expected = float(jnp.sum(kernel ** 2))  # ||grad_x D||^2 = ||k||^2.
  np.testing.assert_allclose(regularizers.r1_penalty(
      discriminate, _images(0), _images(1), None), expected, rtol=1e-6)
  np.testing.assert_allclose(regularizers.r2_penalty(
      discriminate, _images(0), _images(1), None), expected, rtol=1e-6)
  # The gamma convention: weight = gamma / 2.
  assert regularizers.r1(gamma=10.0).weight == 5.0


def test_lazy_scale_and_optimizer():
  assert regularizers.lazy_scale([]) == 1.0
  assert regularizers.lazy_scale([regularizers.r1(interval=1)]) == 1.0
  assert regularizers.lazy_scale([regularizers.r1(interval=16)]) == 16 / 17
  np.testing.assert_allclose(regularizers.lazy_scale(
      [regularizers.r1(interval=4), regularizers.r2(interval=16)]),
                             1 / (1 + 1 / 4 + 1 / 16))
  # Adam with lr * c/(c+1) and betas ** (c/(c+1)), update for update.
  ours = regularizers.adam(1e-3, 0.5, 0.99, [regularizers.r1(interval=4)])
  reference = optax.adam(1e-3 * 0.8, b1=0.5 ** 0.8, b2=0.99 ** 0.8)
  params = {"w": jnp.arange(3.0)}
  grads = {"w": jnp.array([0.3, -1.0, 2.0])}
  a, b = ours.init(params), reference.init(params)
  for _ in range(3):
    (ua, a), (ub, b) = ours.update(grads, a, params), reference.update(
        grads, b, params)
    np.testing.assert_allclose(ua["w"], ub["w"], rtol=1e-6)


def _main_update_only(d_state):
  """The same state without regularisers (same, scaled, optimizer)."""
  game = dataclasses.replace(d_state.game, d_regularizers=())
  return d_state.replace(game=game)


def test_eager_regulariser_adds_its_weighted_penalty_to_the_loss():
  reg = regularizers.r1(gamma=4.0)  # weight 2, every step
  state = _state(reg)
  real, fake, key = _images(0), _images(1), jax.random.key(0)
  new, metrics = steps._update_discriminator(state.d, real, fake, key)  # pylint: disable=protected-access
  plain, plain_metrics = steps._update_discriminator(  # pylint: disable=protected-access
      _main_update_only(state.d), real, fake, key)
  kernel = state.d.params["Dense_0"]["kernel"]
  np.testing.assert_allclose(metrics["r1"], jnp.sum(kernel ** 2), rtol=1e-6)
  np.testing.assert_allclose(metrics["d_loss"], plain_metrics["d_loss"]
                             + 2.0 * metrics["r1"], rtol=1e-6)
  assert not np.allclose(new.params["Dense_0"]["kernel"],
                         plain.params["Dense_0"]["kernel"])


def test_lazy_regulariser_is_a_separate_update_every_c_steps():
  penalty = lambda d, real, fake, key: jnp.mean(d(real) ** 2)  # Drift.
  reg = Regularizer("drift", penalty, weight=0.5, interval=3)
  state = _state(reg)
  real, fake, key = _images(0), _images(1), jax.random.key(0)
  update = jax.jit(steps._update_discriminator)  # pylint: disable=protected-access
  d_state, applied = state.d, []
  for i in range(7):
    main_only, _ = update(_main_update_only(d_state), real, fake, key)
    new, metrics = update(d_state, real, fake, key)
    assert np.isfinite(metrics["drift"])
    due = i % 3 == 0
    applied.append(bool(metrics["drift"] != 0.0))
    if due:
      # By hand: after the main update, one optimizer step on
      # interval * weight * penalty at the new params.
      def loss(params, s=main_only):
        d = lambda x: s.apply_fn({"params": params}, x)
        return 3 * 0.5 * penalty(d, real, fake, key)
      grads = jax.grad(loss)(main_only.params)
      updates, opt_state = main_only.tx.update(grads, main_only.opt_state,
                                               main_only.params)
      expected = optax.apply_updates(main_only.params, updates)
      chex_close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5,
                                                           atol=1e-7)
      jax.tree.map(chex_close, new.params, expected)
      jax.tree.map(chex_close, new.opt_state, opt_state)
    else:
      jax.tree.map(np.testing.assert_array_equal, new.params,
                   main_only.params)
    assert int(new.step) == i + 1  # Main updates only.
    d_state = new
  assert applied == [True, False, False, True, False, False, True]


def test_regularised_train_step_keeps_finite_metrics_between_penalties():
  state = _state(regularizers.r1(gamma=1.0, interval=2),
                 regularizers.r2(gamma=1.0))
  step = jax.jit(steps.train_step)
  for i in range(3):
    state, metrics = step(state, {"image": _images(i)})
    assert all(np.isfinite(v) for v in metrics.values())
    assert float(metrics["r2"]) > 0
    assert (float(metrics["r1"]) > 0) == (i % 2 == 0)


def test_wgan_gp_penalty_by_hand():
  key = jax.random.key(7)
  real, fake = _images(0), _images(1)
  # Linear D: the gradient is k at every interpolate.
  state = _state()
  kernel = np.asarray(state.d.params["Dense_0"]["kernel"], np.float64)
  discriminate = lambda x: state.d.apply_fn(state.d.variables(), x)
  np.testing.assert_allclose(
      regularizers.wgan_gp_penalty(discriminate, real, fake, key),
      (np.linalg.norm(kernel) - 1.0) ** 2, rtol=1e-5)
  # D(x) = 1/2 a ||x||^2: the gradient at x_hat is a x_hat, with x_hat =
  # eps real + (1 - eps) fake and eps ~ U[0, 1] per image from the key.
  a = 0.7
  quadratic = lambda x: 0.5 * a * jnp.sum(x.reshape(x.shape[0], -1) ** 2, 1)
  eps = np.asarray(jax.random.uniform(key, (real.shape[0], 1, 1, 1)))
  x_hat = eps * np.asarray(real) + (1 - eps) * np.asarray(fake)
  norms = a * np.linalg.norm(x_hat.reshape(len(x_hat), -1), axis=1)
  np.testing.assert_allclose(
      regularizers.wgan_gp_penalty(quadratic, real, fake, key),
      np.mean((norms - 1.0) ** 2), rtol=1e-5)
  assert regularizers.wgan_gp(weight=10.0, interval=4).weight == 10.0


def test_penalty_flags_choose_a_regulariser_and_scale_d_adam():
  config = gan.GANConfig(penalty="r1", penalty_weight=4.0, penalty_interval=8)
  (chosen,) = config.all_d_regularizers()
  assert (chosen.name, chosen.weight, chosen.interval) == ("r1", 2.0, 8)
  gp = gan.GANConfig(penalty="wgan_gp").all_d_regularizers()[0]
  assert (gp.name, gp.weight, gp.interval) == ("wgan_gp", 10.0, 1)
  state = create_state(config.replace(arch="mlp_tiny", latent_dim=4), SHAPE)
  assert state.game.d_regularizers == (chosen,)
  # D's Adam is scaled by 8/9; G's is not.
  params = {"w": jnp.arange(3.0)}
  grads = {"w": jnp.array([0.3, -1.0, 2.0])}
  for tx, reference in (
      (state.d.tx, optax.adam(2e-4 * 8 / 9, 0.5 ** (8 / 9), 0.999 ** (8 / 9))),
      (state.g.tx, optax.adam(2e-4, 0.5, 0.999))):
    a, b = tx.init(params), reference.init(params)
    for _ in range(3):
      (ua, a), (ub, b) = (tx.update(grads, a, params),
                          reference.update(grads, b, params))
      np.testing.assert_allclose(ua["w"], ub["w"], rtol=1e-6)


def test_each_player_has_its_own_learning_rate_and_betas():
  """TTUR: Adam's first update moves every weight by about its lr."""
  config = gan.GANConfig(arch="mlp_tiny", latent_dim=4, g_lr=1e-4, d_lr=4e-4,
                         d_b1=0.0, g_b2=0.99)
  assert config.optimizer_settings("g") == (1e-4, 0.5, 0.99)
  assert config.optimizer_settings("d") == (4e-4, 0.0, 0.999)
  state = create_state(config, SHAPE)
  new, _ = jax.jit(steps.train_step)(state, {"image": _images(0)})
  for player, lr in (("g", 1e-4), ("d", 4e-4)):
    before = getattr(state, player).params
    after = getattr(new, player).params
    moved = max(float(jnp.max(jnp.abs(a - b)))
                for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before)))
    np.testing.assert_allclose(moved, lr, rtol=1e-3)


def _first_updates(tx, num):
  """The updates of `num` Adam steps on one weight with gradient 1: each is
  -lr of its step (Adam's normalised step is 1 for a constant gradient)."""
  params = jnp.zeros(())
  opt_state = tx.init(params)
  moves = []
  for _ in range(num):
    updates, opt_state = tx.update(jnp.ones(()), opt_state, params)
    moves.append(-float(updates))
  return np.array(moves)


def test_lr_decay_counts_each_players_own_updates():
  """Cosine decay over 4 G steps: G's lr at its k-th update is
  lr (1 + cos(pi k / 4)) / 2; D, with 2 D steps per G step and an R1 every
  2nd D step (3 updates per 2 D steps), decays over 4 * 2 * 3 / 2 = 12."""
  config = gan.GANConfig(lr=1e-3, lr_decay_steps=4, d_steps=2, penalty="r1",
                         penalty_interval=2)
  cosine = lambda k, n: 1e-3 * (1 + np.cos(np.pi * np.minimum(k, n) / n)) / 2
  np.testing.assert_allclose(_first_updates(make_optimizer(config, (), "g"), 6),
                             cosine(np.arange(6), 4), rtol=1e-4, atol=1e-9)
  lazy = config.all_d_regularizers()
  scale = regularizers.lazy_scale(lazy)
  np.testing.assert_allclose(
      _first_updates(make_optimizer(config, lazy, "d"), 13),
      cosine(np.arange(13), 12) * scale, rtol=1e-4, atol=1e-9)
  with pytest.raises(ConfigError, match="--lr_decay_steps must be >= 0"):
    gan.GANConfig(lr_decay_steps=-1).validate()
