"""Regularisers of the discriminator, as plain data with an interval.

A `Regularizer` is a penalty function, a weight and an interval c:

    penalty(discriminate, real_images, fake_images, key) -> float32 scalar

where `discriminate(images) -> logits [B]` is D with the params being
trained (train mode), so the penalty is differentiable w.r.t. them. Pass
your own in the model config; nothing needs registering:

    def my_penalty(discriminate, real, fake, key):
      return jnp.mean(discriminate(real) ** 2)      # logit drift penalty
    GANConfig(d_regularizers=(Regularizer("drift", my_penalty, weight=1e-3),))

Lazy regularisation (Karras et al. 2020, StyleGAN2): with interval c = 1 the
weighted penalty is added to D's loss at every step. With c > 1 it runs as a
separate optimizer update every c steps (steps where D's step count divides
by c), on the params after that step's main update, with its loss
multiplied by c; and D's Adam learning rate and betas are scaled by
c / (c + 1), so that the main and regularisation updates together move as
fast per minibatch as before. With several lazy regularisers the scale is
1 / (1 + sum 1/c_i), which is c / (c + 1) for one.

The gamma convention: `r1(gamma)` is gamma/2 * E||grad_x D(x)||^2 over real
images, as in Mescheder et al. 2018 (eq. 9) and StyleGAN2 (`r1_gamma`).
Mescheder's code (GAN_stability, `reg_param`) adds reg_param *
E||grad_x D(x)||^2 without the 1/2, so its reg_param = 10 is r1(gamma=20)
here. `weight` multiplies the mean squared gradient norm directly, so
weight = gamma / 2.

WGAN-GP (Gulrajani et al. 2017, algorithm 1): lambda * E(||grad D(x_hat)||
- 1)^2 at x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per image, lambda =
10; `weight` is lambda. The paper's critic has no BatchNorm (the penalty is
per image); with a BatchNorm discriminator it still trains but is not the
paper's method.

Metrics: each regulariser reports its unweighted penalty under its name on
the steps it runs, and 0 on the steps a lazy one skips (so a logged mean
over a window is the penalty divided by c).
"""

import dataclasses
from typing import Callable, Sequence, Union

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
Penalty = Callable[[Callable[[Array], Array], Array, Array, Array], Array]


@dataclasses.dataclass(frozen=True)
class Regularizer:
  """A weighted penalty on D, applied every `interval` steps."""
  name: str  # Its metric's name.
  penalty: Penalty
  weight: float
  interval: int = 1

  def __post_init__(self):
    if self.interval < 1:
      raise ValueError(f"Regularizer {self.name}: interval must be >= 1, got "
                       f"{self.interval}.")


def _squared_input_gradient_norm(discriminate, images: Array) -> Array:
  """E_batch ||d sum(D(x)) / dx||^2, float32."""
  grads = jax.grad(lambda x: jnp.sum(discriminate(x)))(images)
  grads = grads.astype(jnp.float32).reshape(grads.shape[0], -1)
  return jnp.mean(jnp.sum(grads * grads, axis=1))


def r1_penalty(discriminate, real_images, fake_images, key) -> Array:
  """E||grad_x D(x)||^2 on real images (Mescheder et al. 2018)."""
  del fake_images, key
  return _squared_input_gradient_norm(discriminate, real_images)


def r2_penalty(discriminate, real_images, fake_images, key) -> Array:
  """E||grad_x D(x)||^2 on generated images (Mescheder et al. 2018)."""
  del real_images, key
  return _squared_input_gradient_norm(discriminate,
                                      jax.lax.stop_gradient(fake_images))


def wgan_gp_penalty(discriminate, real_images, fake_images, key) -> Array:
  """E(||grad_x D(x_hat)||_2 - 1)^2 on random interpolates x_hat."""
  fake_images = jax.lax.stop_gradient(fake_images).astype(real_images.dtype)
  eps = jax.random.uniform(key, (real_images.shape[0],) + (1,) *
                           (real_images.ndim - 1), real_images.dtype)
  interpolates = eps * real_images + (1.0 - eps) * fake_images
  grads = jax.grad(lambda x: jnp.sum(discriminate(x)))(interpolates)
  grads = grads.astype(jnp.float32).reshape(grads.shape[0], -1)
  # sqrt has an infinite gradient at 0; the clamp keeps a flat D finite.
  norms = jnp.sqrt(jnp.maximum(jnp.sum(grads * grads, axis=1), 1e-12))
  return jnp.mean(jnp.square(norms - 1.0))


def r1(gamma: float = 10.0, interval: int = 1) -> Regularizer:
  """gamma/2 * E||grad D(x_real)||^2."""
  return Regularizer("r1", r1_penalty, weight=gamma / 2, interval=interval)


def r2(gamma: float = 10.0, interval: int = 1) -> Regularizer:
  """gamma/2 * E||grad D(x_fake)||^2."""
  return Regularizer("r2", r2_penalty, weight=gamma / 2, interval=interval)


def lazy_scale(regularizers: Sequence[Regularizer]) -> float:
  """c / (c + 1) for one lazy regulariser; 1 / (1 + sum 1/c_i) in general."""
  return 1.0 / (1.0 + sum(1.0 / r.interval for r in regularizers
                          if r.interval > 1))


def adam(lr: Union[float, optax.Schedule], b1: float, b2: float,
         regularizers: Sequence[Regularizer] = ()
         ) -> optax.GradientTransformation:
  """Adam with lr (a number or an optax schedule) and betas scaled for the
  player's lazy regularisers."""
  scale = lazy_scale(regularizers)
  if scale == 1.0:
    return optax.adam(lr, b1=b1, b2=b2)
  scaled_lr = (lambda count: lr(count) * scale) if callable(lr) else lr * scale
  return optax.adam(scaled_lr, b1=b1 ** scale, b2=b2 ** scale)


def wgan_gp(weight: float = 10.0, interval: int = 1) -> Regularizer:
  """weight * E(||grad D(x_hat)|| - 1)^2 (lambda = 10 in the paper)."""
  return Regularizer("wgan_gp", wgan_gp_penalty, weight=weight,
                     interval=interval)


REGULARIZERS = {"r1": r1, "r2": r2, "wgan_gp": wgan_gp}
