"""VAE encoders and decoders (Kingma & Welling 2014), MLP and convolutional.

Encoders map images [B, H, W, C] in [-1, 1] to the mean and log-variance of
a diagonal Gaussian q(z | x), each float32 [B, latent_dim]. Decoders map z
[B, latent_dim] to the parameters of p(x | z), float32 [B, H, W, out_channels]
(out_channels = C times the likelihood's parameters per channel; see
gan_jax.likelihoods).

The convolutional pair mirrors the DCGAN's shapes (gan_jax/models/dcgan.py):
4x4/2 convolutions down to a base map (7x7 at 28, 4x4 at 32 and 64), doubling
the channels, and transposed convolutions back up, without BatchNorm (its
batch coupling would make the ELBO of an image depend on its batch).
"""

from typing import Any, Callable, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import conditioning, layers
from gan_jax.models.dcgan import num_upsamplings

Dtype = Any


class _GaussianHead(nn.Module):
  """features -> (mean, log-variance) of q(z | x), float32."""
  latent_dim: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    out = nn.Dense(2 * self.latent_dim, dtype=self.dtype,
                   param_dtype=self.param_dtype)(x).astype(jnp.float32)
    mean, log_var = jnp.split(out, 2, axis=-1)
    return mean, log_var


class MLPEncoder(nn.Module):
  """images [B, H, W, C] -> (mean, log_var) [B, latent_dim]."""
  latent_dim: int = 20
  hidden: Sequence[int] = (500,)
  activation: Callable = nn.relu
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array):
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = x.reshape(x.shape[0], -1).astype(self.dtype)
    for i, width in enumerate(self.hidden):
      x = self.activation(nn.Dense(width, **kw)(x))
      self.sow(layers.FEATURES, f"hidden_{i}", x)
    return _GaussianHead(self.latent_dim, **kw)(x)


class MLPDecoder(nn.Module):
  """z [B, latent_dim] -> likelihood parameters [B, H, W, out_channels]."""
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  out_channels: int = 1
  hidden: Sequence[int] = (500,)
  activation: Callable = nn.relu
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = z.astype(self.dtype)
    for width in self.hidden:
      x = self.activation(nn.Dense(width, **kw)(x))
    height, width, _ = self.image_shape
    x = nn.Dense(height * width * self.out_channels, **kw)(x)
    return x.reshape(z.shape[0], height, width,
                     self.out_channels).astype(jnp.float32)


class ConvEncoder(nn.Module):
  """images [B, H, W, C] -> (mean, log_var): 4x4/2 convs to the base map,
  then a dense layer."""
  latent_dim: int = 20
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  features: int = 32  # Channels of the first conv; doubled at each halving.
  hidden: int = 256  # Width of the dense layer before the head.
  activation: Callable = layers.elu
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array):
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = x.astype(self.dtype)
    for i in range(num_upsamplings(self.image_shape[0])):
      x = self.activation(layers.Conv(self.features << i, (4, 4), (2, 2),
                                      **kw)(x))
      self.sow(layers.FEATURES, f"block_{i}", x)
    x = self.activation(nn.Dense(self.hidden, **kw)(x.reshape(x.shape[0], -1)))
    self.sow(layers.FEATURES, "hidden", x)
    return _GaussianHead(self.latent_dim, **kw)(x)


class ConvDecoder(nn.Module):
  """z -> dense -> base map -> 4x4/2 transposed convs -> [B, H, W, out]."""
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  out_channels: int = 1
  features: int = 32  # Channels of the last hidden map; doubled going back.
  hidden: int = 256
  activation: Callable = layers.elu
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    height, width, _ = self.image_shape
    n_up = num_upsamplings(height)
    base_h, base_w = height >> n_up, width >> n_up
    top = self.features << (n_up - 1)
    x = self.activation(nn.Dense(self.hidden, **kw)(z.astype(self.dtype)))
    x = self.activation(nn.Dense(base_h * base_w * top, **kw)(x))
    x = x.reshape(z.shape[0], base_h, base_w, top)
    for i in range(n_up - 1):
      x = self.activation(layers.ConvTranspose(top >> (i + 1), (4, 4), (2, 2),
                                               **kw)(x))
    x = layers.ConvTranspose(self.out_channels, (4, 4), (2, 2), **kw)(x)
    return x.astype(jnp.float32)



class LabelledEncoder(nn.Module):
  """q(z | x, y) of a CVAE (Sohn et al. 2015) from any encoder: the label's
  one-hot planes are extra input channels. (images [B, H, W, C], labels
  [B]) -> (mean, log_var) [B, latent_dim]."""
  encoder: nn.Module
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array):
    planes = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)
    planes = jnp.broadcast_to(planes[:, None, None, :],
                              x.shape[:3] + (self.num_classes,))
    return self.encoder(jnp.concatenate([x, planes], axis=-1))


class LabelledDecoder(nn.Module):
  """p(x | z, y) of a CVAE from any decoder: z with a learned class
  embedding beside it, as the conditional GAN generators. (z [B, latent_dim],
  labels [B]) -> likelihood parameters."""
  decoder: nn.Module
  num_classes: int
  label_features: int = 16

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array) -> jax.Array:
    return self.decoder(conditioning.concat_label_embedding(
        z, labels, self.num_classes, self.label_features, z.dtype,
        jnp.float32))
