"""Pixel likelihoods p(x | z) of the VAE's decoder, chosen by name.

| name                  | data                  | decoder outputs / channel | why |
| --------------------- | --------------------- | ------------------------- | --- |
| bernoulli             | binary (MNIST, binarised) | 1: logits             | the standard for binarised MNIST, so NLLs compare with the literature (Kingma & Welling 2014, Burda et al. 2015) |
| discretized_logistic  | 8-bit grey or colour  | 2: mean, log scale        | a probability mass over the 256 levels of each pixel (Salimans et al. 2017, one component): a true likelihood of 8-bit data in nats or bits/dim. A Gaussian density on such data is not one: its value depends on a chosen variance and can grow without bound |

Each likelihood turns the batch's images (float [-1, 1], from uint8) into the
targets it scores, scores decoder outputs against them (a sum over pixels,
float32 [B], nats), and gives the decoder's mean image for sampling.

Bernoulli targets are drawn per step: pixel ~ Bernoulli(intensity / 255)
("dynamic binarisation", Salakhutdinov & Murray 2008). Data that is already
binary (TFDS `binarized_mnist`, the fixed binarisation of Larochelle &
Murray 2011) comes through unchanged, since Bernoulli(0 or 1) is
deterministic; evaluation records say which it was.
"""

import dataclasses
from typing import Any, Dict

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Bernoulli:
  """p(x | z) = prod Bernoulli(x_i; sigmoid(logit_i)) over binary pixels."""
  name: str = "bernoulli"
  num_params: int = 1

  def targets(self, images: Array, key: Array) -> Array:
    """Binarised pixels {0, 1}, float32: x ~ Bernoulli((images + 1) / 2)."""
    probs = (images.astype(jnp.float32) + 1.0) * 0.5
    return (jax.random.uniform(key, images.shape, jnp.float32)
            < probs).astype(jnp.float32)

  def fixed_targets(self, images: Array) -> Array:
    """Deterministic binarisation (threshold at 1/2), for encoding images."""
    return (images.astype(jnp.float32) > 0.0).astype(jnp.float32)

  def encoder_input(self, targets: Array) -> Array:
    return targets * 2.0 - 1.0

  def log_prob(self, logits: Array, targets: Array) -> Array:
    """sum_i x_i log s(l_i) + (1 - x_i) log(1 - s(l_i)): float32 [B]."""
    logits = logits.astype(jnp.float32)
    per_pixel = targets * logits - jax.nn.softplus(logits)
    return per_pixel.reshape(per_pixel.shape[0], -1).sum(-1)

  def mean(self, logits: Array) -> Array:
    """The pixel probabilities as an image in [-1, 1]."""
    return jax.nn.sigmoid(logits.astype(jnp.float32)) * 2.0 - 1.0

  def describe_data(self, images: np.ndarray) -> Dict[str, Any]:
    binary = bool(np.isin(images, (0, 255)).all())
    return {"likelihood": self.name, "binarization": (
        "fixed: the images are already binary" if binary else
        "dynamic: pixel ~ Bernoulli(intensity / 255), redrawn at every "
        "training step; evaluation images drawn once from the evaluation "
        "seed")}


@dataclasses.dataclass(frozen=True)
class DiscretizedLogistic:
  """One logistic per pixel, integrated over its bin of the 256 levels.

  Targets are the images themselves, float [-1, 1] on the grid
  k * 2/255 - 1. P(x) = sigmoid((x + 1/255 - mu) / s) - sigmoid((x - 1/255 -
  mu) / s), with the edge bins extended to -inf and +inf (PixelCNN++).
  """
  name: str = "discretized_logistic"
  num_params: int = 2
  min_log_scale: float = -7.0

  def targets(self, images: Array, key: Array) -> Array:
    del key
    return images.astype(jnp.float32)

  def fixed_targets(self, images: Array) -> Array:
    return images.astype(jnp.float32)

  def encoder_input(self, targets: Array) -> Array:
    return targets

  def _split(self, outputs: Array):
    outputs = outputs.astype(jnp.float32)
    mean, log_scale = jnp.split(outputs, 2, axis=-1)
    return mean, jnp.maximum(log_scale, self.min_log_scale)

  def log_prob(self, outputs: Array, targets: Array) -> Array:
    """log P(x) summed over pixels: float32 [B]."""
    mean, log_scale = self._split(outputs)
    centered = targets - mean
    inv_scale = jnp.exp(-log_scale)
    plus_in = inv_scale * (centered + 1.0 / 255.0)
    min_in = inv_scale * (centered - 1.0 / 255.0)
    log_cdf_plus = plus_in - jax.nn.softplus(plus_in)  # For x = -1.
    log_one_minus_cdf_min = -jax.nn.softplus(min_in)  # For x = +1.
    # The bin's mass, from the tail it lies in: above the mean, as a
    # difference of survival functions, which do not round to 1 in float32.
    cdf_delta = jnp.where(
        centered > 0,
        jax.nn.sigmoid(-min_in) - jax.nn.sigmoid(-plus_in),
        jax.nn.sigmoid(plus_in) - jax.nn.sigmoid(min_in))
    # Where the bin's mass underflows, the density at its centre times the
    # bin width (log 127.5 = -log(2/255)) is accurate.
    mid_in = inv_scale * centered
    log_pdf_mid = mid_in - log_scale - 2.0 * jax.nn.softplus(mid_in)
    log_mid = jnp.where(cdf_delta > 1e-5,
                        jnp.log(jnp.maximum(cdf_delta, 1e-12)),
                        log_pdf_mid - np.log(127.5))
    per_pixel = jnp.where(targets < -0.999, log_cdf_plus,
                          jnp.where(targets > 0.999, log_one_minus_cdf_min,
                                    log_mid))
    return per_pixel.reshape(per_pixel.shape[0], -1).sum(-1)

  def mean(self, outputs: Array) -> Array:
    return jnp.clip(self._split(outputs)[0], -1.0, 1.0)

  def describe_data(self, images: np.ndarray) -> Dict[str, Any]:
    del images
    return {"likelihood": f"{self.name} (256 levels per channel)",
            "binarization": "none"}


LIKELIHOODS = {
    "bernoulli": Bernoulli(),
    "discretized_logistic": DiscretizedLogistic(),
}


def resolve(likelihood):
  """The likelihood named `likelihood`, or `likelihood` itself."""
  return LIKELIHOODS[likelihood] if isinstance(likelihood, str) else likelihood
