"""Adversarial losses: pure functions of discriminator logits.

Every function takes logits of any shape (usually [B] or [B, 1]), computes in
float32 whatever the model's compute dtype, and returns a scalar mean. They are
written with softplus (= -log sigmoid(-x)) so they stay finite for logits of
any size, where log(sigmoid(x)) would round to log(0).

    log sigmoid(x)     = -softplus(-x)
    log(1 - sigmoid(x)) = -softplus(x)
"""

from typing import Callable, NamedTuple, Union

import jax
import jax.numpy as jnp

Array = jax.Array


def _f32(x: Array) -> Array:
  return jnp.asarray(x, jnp.float32)


def minimax_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """-E[log D(x)] - E[log(1 - D(G(z)))], Goodfellow et al. 2014, eq. 1."""
  return (jnp.mean(jax.nn.softplus(-_f32(real_logits)))
          + jnp.mean(jax.nn.softplus(_f32(fake_logits))))


def minimax_g_loss(fake_logits: Array) -> Array:
  """E[log(1 - D(G(z)))]: the generator minimises the game's value directly.

  Saturates (vanishing gradient) when D confidently rejects fakes, which is why
  the non-saturating loss is the default.
  """
  return -jnp.mean(jax.nn.softplus(_f32(fake_logits)))


def non_saturating_g_loss(fake_logits: Array) -> Array:
  """-E[log D(G(z))], the heuristic of Goodfellow et al. 2014, section 3."""
  return jnp.mean(jax.nn.softplus(-_f32(fake_logits)))


def hinge_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], Lim & Ye 2017."""
  return (jnp.mean(jax.nn.relu(1.0 - _f32(real_logits)))
          + jnp.mean(jax.nn.relu(1.0 + _f32(fake_logits))))


def hinge_g_loss(fake_logits: Array) -> Array:
  """-E[D(G(z))]."""
  return -jnp.mean(_f32(fake_logits))


def wasserstein_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """E[D(G(z))] - E[D(x)]: the critic's estimate of the Wasserstein-1
  distance, negated (Arjovsky et al. 2017). Needs a Lipschitz constraint on
  D, e.g. a gradient penalty, to mean anything."""
  return jnp.mean(_f32(fake_logits)) - jnp.mean(_f32(real_logits))


def wasserstein_g_loss(fake_logits: Array) -> Array:
  """-E[D(G(z))]."""
  return -jnp.mean(_f32(fake_logits))


def least_squares_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]: LSGAN with labels a=0, b=1
  (Mao et al. 2017, eq. 9), D's output taken as a raw score."""
  return 0.5 * (jnp.mean(jnp.square(_f32(real_logits) - 1.0))
                + jnp.mean(jnp.square(_f32(fake_logits))))


def least_squares_g_loss(fake_logits: Array) -> Array:
  """1/2 E[(D(G(z)) - 1)^2] (c=1)."""
  return 0.5 * jnp.mean(jnp.square(_f32(fake_logits) - 1.0))


def _relativistic(logits: Array, others: Array) -> Array:
  """C(x) - E[C(x')]: how much more real x looks than the other batch."""
  return _f32(logits) - jnp.mean(_f32(others))


def relativistic_average_d_loss(real_logits: Array,
                                fake_logits: Array) -> Array:
  """-E[log sig(C(x) - E C(G(z)))] - E[log(1 - sig(C(G(z)) - E C(x)))].

  RaSGAN, Jolicoeur-Martineau 2018 (section 4.2, as written there; the
  author's code halves both players' losses, which Adam barely notices).
  """
  return (jnp.mean(jax.nn.softplus(-_relativistic(real_logits, fake_logits)))
          + jnp.mean(jax.nn.softplus(_relativistic(fake_logits, real_logits))))


def relativistic_average_g_loss(fake_logits: Array,
                                real_logits: Array) -> Array:
  """The same game with the labels swapped: G also pushes real images to
  look less real than its fakes, so it needs D's logits on real images."""
  return relativistic_average_d_loss(fake_logits, real_logits)


class GANLoss(NamedTuple):
  """The two players' losses. Pass your own as `GANConfig(loss=GANLoss(...))`;
  compute in float32 and return a scalar mean.

  With `g_uses_real`, the generator's loss is g_loss(fake_logits,
  real_logits): the step then also runs D (after its update) on the real
  batch, without gradient, as relativistic losses need.
  """
  d_loss: Callable[[Array, Array], Array]  # (real_logits, fake_logits) -> []
  g_loss: Callable[..., Array]  # fake_logits [, real_logits] -> []
  g_uses_real: bool = False


LOSSES = {
    "minimax": GANLoss(minimax_d_loss, minimax_g_loss),
    "non_saturating": GANLoss(minimax_d_loss, non_saturating_g_loss),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss),
    "wasserstein": GANLoss(wasserstein_d_loss, wasserstein_g_loss),
    "least_squares": GANLoss(least_squares_d_loss, least_squares_g_loss),
    "relativistic_average": GANLoss(relativistic_average_d_loss,
                                    relativistic_average_g_loss,
                                    g_uses_real=True),
}


def resolve(loss: Union[str, GANLoss]) -> GANLoss:
  """The GANLoss named `loss` in LOSSES, or `loss` itself if it is one."""
  return LOSSES[loss] if isinstance(loss, str) else loss
