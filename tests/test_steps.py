import dataclasses
import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses, steps
from gan_jax.config import GANConfig
from gan_jax.errors import ConfigError
from gan_jax.state import create_state, step_key

SHAPE = (28, 28, 1)


def _state(arch="dcgan_tiny", **kwargs):
  return create_state(GANConfig(arch=arch, **kwargs), SHAPE)


def _batch(n=16, seed=0):
  images = jax.random.uniform(jax.random.key(seed), (n,) + SHAPE, minval=-1,
                              maxval=1)
  return {"image": images, "label": jnp.zeros((n,), jnp.int32)}


def _assert_trees_close(a, b, **tol):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **tol), a, b)


def _d_loss(state, real, key):
  """D's loss on `real` and on G's fakes for `key`, evaluated without update."""
  game = state.game
  z = steps.sample_latents(jax.random.split(key, 3)[0], real.shape[0],
                           game.latent_dim)
  fake, _ = state.g.apply_fn(state.g.variables(), z, train=True,
                             mutable=["batch_stats"])
  logits = lambda x: state.d.apply_fn(state.d.variables(), x, train=True,
                                      mutable=["batch_stats"])[0]
  return float(losses.LOSSES[game.loss].d_loss(logits(real), logits(fake)))


def _g_loss(state, key, batch_size):
  game = state.game
  z = steps.sample_latents(jax.random.split(key, 3)[0], batch_size,
                           game.latent_dim)
  fake, _ = state.g.apply_fn(state.g.variables(), z, train=True,
                             mutable=["batch_stats"])
  logits, _ = state.d.apply_fn(state.d.variables(), fake, train=True,
                               mutable=["batch_stats"])
  return float(losses.LOSSES[game.loss].g_loss(logits))


@pytest.mark.parametrize("arch", ["dcgan_tiny", "mlp_tiny"])
def test_each_player_step_lowers_its_own_loss(arch):
  # Large enough steps to see, small enough to stay in the linear regime.
  state = _state(arch, lr=1e-3)
  real = _batch()["image"]
  key = jax.random.key(7)
  if arch == "mlp_tiny":  # Dropout makes losses noisy; compare without it.
    game = dataclasses.replace(
        state.game,
        discriminator=state.game.discriminator.clone(dropout_rate=0.0))
    state = state.replace(
        g=state.g.replace(game=game),
        d=state.d.replace(game=game, apply_fn=game.discriminator.apply))
  before = _d_loss(state, real, key)
  d_state, metrics = steps.d_step(state.d, state.g.params, real, key)
  assert _d_loss(state.replace(d=d_state), real, key) < before
  np.testing.assert_allclose(metrics["d_loss"], before, rtol=1e-4)

  before = _g_loss(state, key, 16)
  g_state, metrics = steps.g_step(state.g, state.d.params, key, batch_size=16)
  assert _g_loss(state.replace(g=g_state), key, 16) < before
  np.testing.assert_allclose(metrics["g_loss"], before, rtol=1e-4)
  assert int(g_state.step) == int(d_state.step) == 1


def test_metrics_are_complete_and_sane():
  state, metrics = jax.jit(steps.train_step)(_state(), _batch())
  assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake",
                          "d_acc_real", "d_acc_fake", "d_grad_norm",
                          "g_grad_norm"}
  for name, value in metrics.items():
    assert value.shape == () and value.dtype == jnp.float32, name
    assert np.isfinite(value), name
  for name in ("d_real", "d_fake", "d_acc_real", "d_acc_fake"):
    assert 0.0 <= metrics[name] <= 1.0
  assert metrics["d_grad_norm"] > 0 and metrics["g_grad_norm"] > 0
  assert int(state.step) == 1


def test_train_step_is_d_step_then_g_step_with_the_same_key():
  state, batch = _state(), _batch()
  new_state, metrics = jax.jit(steps.train_step)(state, batch)
  key = jax.random.fold_in(step_key(state.rng, state.step), 0)
  d_state, d_metrics = jax.jit(steps.d_step)(state.d, state.g.params,
                                             batch["image"], key)
  g_state, g_metrics = steps.g_step(
      state.g, d_state.params, key, batch_size=16)
  _assert_trees_close(new_state.d.params, d_state.params, atol=1e-6)
  _assert_trees_close(new_state.g.params, g_state.params, atol=1e-5)
  _assert_trees_close(new_state.g.batch_stats, g_state.batch_stats, atol=1e-6)
  for name, value in {**d_metrics, **g_metrics}.items():
    np.testing.assert_allclose(metrics[name], value, rtol=1e-4, atol=1e-5)


def test_jit_matches_no_jit():
  state, batch = _state(), _batch()
  jitted_state, jitted_metrics = jax.jit(steps.train_step)(state, batch)
  with jax.disable_jit():
    eager_state, eager_metrics = steps.train_step(state, batch)
  _assert_trees_close(jitted_state, eager_state, rtol=1e-4, atol=1e-5)
  _assert_trees_close(jitted_metrics, eager_metrics, rtol=1e-4, atol=1e-5)


def test_no_retrace_across_steps():
  traced = chex.assert_max_traces(steps.train_step, n=1)
  train_step = jax.jit(traced, donate_argnums=0)
  state = _state()
  for i in range(4):
    state, metrics = train_step(state, _batch(seed=i))
  jax.block_until_ready(metrics)
  assert int(state.step) == 4


def test_steps_are_deterministic_and_keyed_by_step():
  state, batch = _state(), _batch()
  train_step = jax.jit(steps.train_step)
  a, _ = train_step(state, batch)
  b, _ = train_step(state, batch)
  _assert_trees_close(a.g.params, b.g.params, rtol=0, atol=0)
  # The same batch at the next step draws other latents.
  c, m1 = train_step(a, batch)
  d, m2 = train_step(a.replace(step=a.step + 1), batch)
  assert not np.allclose(m1["g_loss"], m2["g_loss"])


def test_several_d_steps_with_their_own_real_batches():
  state = _state(d_steps=3)
  images = jnp.stack([_batch(seed=i)["image"] for i in range(3)])
  new_state, metrics = jax.jit(steps.train_step)(state, {"image": images})
  assert int(new_state.d.step) == 3 and int(new_state.g.step) == 1
  assert np.isfinite(metrics["d_loss"])
  # A single [B, ...] batch is reused by every D update.
  new_state, _ = jax.jit(steps.train_step)(state, _batch())
  assert int(new_state.d.step) == 3
  with pytest.raises(ValueError, match="d_steps=3"):
    steps.train_step(state, {"image": images[:2]})


@pytest.mark.parametrize("loss", sorted(losses.LOSSES))
def test_every_loss_trains(loss):
  state, metrics = jax.jit(steps.train_step)(_state(loss=loss), _batch())
  assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])


def test_bfloat16_step_keeps_float32_state():
  state, metrics = jax.jit(steps.train_step)(_state(dtype="bfloat16"),
                                             _batch())
  for leaf in jax.tree.leaves((state.g.params, state.d.params)):
    assert leaf.dtype == jnp.float32
  for value in metrics.values():
    assert value.dtype == jnp.float32 and np.isfinite(value)


def test_global_norm_matches_optax():
  import optax  # pylint: disable=g-import-not-at-top
  tree = {"a": jnp.arange(12.0).reshape(3, 4), "b": [jnp.ones(5) * -2.0]}
  np.testing.assert_allclose(steps.global_norm(tree), optax.global_norm(tree),
                             rtol=1e-6)
  np.testing.assert_allclose(steps.global_norm(tree),
                             np.sqrt(np.sum(np.arange(12.0) ** 2) + 20.0),
                             rtol=1e-6)


def test_generator_ema_follows_the_params():
  assert _state().g.ema_params is None  # Off by default.
  before = _state(g_ema_decay=0.9)
  chex.assert_trees_all_equal(before.g.ema_params, before.g.params)
  state, _ = jax.jit(steps.train_step)(before, _batch())
  expected = jax.tree.map(lambda old, new: 0.9 * old + 0.1 * new,
                          before.g.params, state.g.params)
  chex.assert_trees_all_close(state.g.ema_params, expected, rtol=1e-6,
                              atol=1e-7)
  assert state.d.ema_params is None  # Only the generator keeps one.


def test_ema_rampup_caps_the_half_life_at_a_fraction_of_the_steps():
  game = _state(g_ema_decay=0.999, g_ema_rampup=0.05).game
  # StyleGAN2-ADA: half-life min(693 steps, 0.05 t); 0.5 ** (1 / (0.05 t)).
  for t, expected in [(1, 0.5 ** 20), (100, 0.5 ** 0.2),
                      (10_000, 0.5 ** (1 / 500)), (20_000, 0.999)]:
    np.testing.assert_allclose(steps.ema_decay_at(game, jnp.int32(t)),
                               expected, rtol=1e-6)
  # The first update all but copies the new params (the init is forgotten).
  before = _state(g_ema_decay=0.999, g_ema_rampup=0.05)
  state, _ = jax.jit(steps.train_step)(before, _batch())
  expected = jax.tree.map(lambda old, new: 0.5 ** 20 * old
                          + (1 - 0.5 ** 20) * new,
                          before.g.params, state.g.params)
  chex.assert_trees_all_close(state.g.ema_params, expected, rtol=1e-6,
                              atol=1e-7)
  no_ramp = _state(g_ema_decay=0.999).game
  assert steps.ema_decay_at(no_ramp, jnp.int32(1)) == np.float32(0.999)
  for bad, message in [(dict(g_ema_rampup=-0.1, g_ema_decay=0.9), ">= 0"),
                       (dict(g_ema_rampup=0.05), "set --g_ema_decay")]:
    with pytest.raises(ConfigError, match=message):
      GANConfig(**bad).validate()


def test_sampling_uses_the_ema_params_with_their_own_batch_stats():
  from gan_jax.families import gan  # pylint: disable=g-import-not-at-top
  state, _ = jax.jit(steps.train_step)(_state(g_ema_decay=0.5), _batch())
  z = jax.random.normal(jax.random.key(1), (4, 100))
  g = state.g
  standing = gan.standing_batch_stats(
      g.apply_fn, g.ema_params, g.batch_stats, jax.random.normal(
          jax.random.key(0), (gan.STANDING_STATS_BATCHES,
                              gan.STANDING_STATS_BATCH, 100)))
  ema_out = g.apply_fn({"params": g.ema_params, "batch_stats": standing}, z,
                       train=False)
  np.testing.assert_allclose(gan.generate_images(g, z), ema_out, atol=1e-6)
  # `sampler` computes them once: the same generator, ready for many batches.
  np.testing.assert_allclose(gan.generate_images(gan.sampler(state).g, z),
                             ema_out, atol=1e-6)
  live_stats_out = g.apply_fn(g.variables(g.ema_params), z, train=False)
  assert not np.allclose(ema_out, live_stats_out, atol=1e-3)
  # Without EMA (or in the "live" view), sampling is the live generator
  # with its running statistics.
  live = g.apply_fn(g.variables(), z, train=False)
  np.testing.assert_array_equal(
      gan.generate_images(g.replace(ema_params=None), z), live)
  np.testing.assert_array_equal(gan.decode(gan.FAMILY.view("live")(state), z),
                                live)


class DenseBatchNorm(nn.Module):
  """z -> BN(z W): its BatchNorm statistics are those of z W."""
  momentum: float

  @nn.compact
  def __call__(self, z, train=True):
    x = nn.Dense(3, use_bias=False)(z)
    return nn.BatchNorm(use_running_average=not train,
                        momentum=self.momentum)(x)


@pytest.mark.parametrize("momentum", [0.9, 0.99])
def test_standing_batch_stats_are_the_batch_mean_and_variance(momentum):
  from gan_jax.families import gan  # pylint: disable=g-import-not-at-top
  module = DenseBatchNorm(momentum)
  z = np.asarray(jax.random.normal(jax.random.key(0), (2, 64, 5)))
  variables = module.init(jax.random.key(1), z[0], train=False)
  stats = gan.standing_batch_stats(module.apply, variables["params"],
                                   variables["batch_stats"], z)
  # Each batch's mean and (biased) variance, averaged over the batches.
  x = z.astype(np.float64) @ np.asarray(variables["params"]["Dense_0"]
                                        ["kernel"], np.float64)
  np.testing.assert_allclose(stats["BatchNorm_0"]["mean"],
                             x.mean(1).mean(0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(stats["BatchNorm_0"]["var"],
                             x.var(1).mean(0), rtol=1e-4)
  # One batch's are what the running averages converge to on it.
  def update(_, running):
    _, updates = module.apply({"params": variables["params"],
                               "batch_stats": running}, z[0], train=True,
                              mutable=["batch_stats"])
    return updates["batch_stats"]

  running = jax.jit(lambda stats: jax.lax.fori_loop(0, 2000, update, stats))(
      variables["batch_stats"])
  one_batch = gan.standing_batch_stats(module.apply, variables["params"],
                                       variables["batch_stats"], z[:1])
  for a, b in zip(jax.tree.leaves(running), jax.tree.leaves(one_batch)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_relativistic_loss_gives_g_the_real_logits():
  state = _state(loss="relativistic_average")
  new_state, metrics = jax.jit(steps.train_step)(state, _batch())
  assert all(np.isfinite(v) for v in metrics.values())
  key = jax.random.key(3)
  with pytest.raises(ValueError, match="real_images"):
    steps.g_step(state.g, state.d.params, key, batch_size=16)
  # By hand: G's loss with D's logits on the same real batch.
  images = _batch()["image"]
  g_step = jax.jit(functools.partial(steps.g_step, batch_size=16))
  _, g_metrics = g_step(new_state.g, new_state.d.params, key,
                        real_images=images,
                        d_batch_stats=new_state.d.batch_stats)

  @jax.jit
  def by_hand(state):
    z = steps.sample_latents(steps._stream_keys(key)[0], 16, 100)  # pylint: disable=protected-access
    fake = state.g.apply_fn(state.g.variables(), z, train=True,
                            mutable=["batch_stats"])[0]
    d = lambda x: state.game.discriminator.apply(
        state.d.variables(), x, train=True, mutable=["batch_stats"])[0]
    return losses.relativistic_average_g_loss(d(fake), d(images))
  np.testing.assert_allclose(g_metrics["g_loss"], by_hand(new_state),
                             rtol=1e-5)
