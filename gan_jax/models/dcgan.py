"""DCGAN generator and discriminator (Radford et al. 2015).

The networks are built from the image size: the generator starts from a
`base_size` x `base_size` feature map and doubles it with 4x4/2 transposed
convolutions until it reaches the image size, halving the channels each time;
the discriminator mirrors it with 4x4/2 convolutions.

| image | base map | generator channels      | discriminator channels |
| ----- | -------- | ----------------------- | ---------------------- |
| 28    | 7x7      | 128 -> 64 -> C          | 64 -> 128              |
| 32    | 4x4      | 256 -> 128 -> 64 -> C   | 64 -> 128 -> 256       |
| 64    | 4x4      | 512 -> ... -> 64 -> C   | 64 -> ... -> 512       |

As in the paper: BatchNorm in every layer except the generator's output and
the discriminator's input, ReLU in G, LeakyReLU(0.2) in D, tanh output.
Layers followed by BatchNorm carry no bias (BN's shift replaces it).
"""

from typing import Any, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import layers

Dtype = Any


def num_upsamplings(image_size: int) -> int:
  """Halvings from the image size down to the base map: 28 -> 2, 64 -> 4."""
  n = 0
  while image_size % 2 == 0 and image_size > 4:
    image_size //= 2
    n += 1
  return n


def _batch_norm(train: bool, fast: bool, dtype: Dtype, param_dtype: Dtype):
  # momentum=0.9 is PyTorch's default (its momentum=0.1), so the running
  # statistics used by eval-mode sampling settle within a few hundred steps.
  batch_norm = layers.BatchNorm if fast else nn.BatchNorm
  return batch_norm(use_running_average=not train, momentum=0.9,
                    epsilon=1e-5, dtype=dtype, param_dtype=param_dtype)


class DCGANGenerator(nn.Module):
  """z [B, latent_dim] -> images [B, H, W, C] in [-1, 1]."""
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  features: int = 64  # Channels of the last hidden layer.
  fast_layers: bool = True  # gan_jax.models.layers: flax's functions, faster.
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    height, width, channels = self.image_shape
    n_up = num_upsamplings(height)
    base_h, base_w = height >> n_up, width >> n_up
    width_mult = 2 ** (n_up - 1)
    conv_t = layers.ConvTranspose if self.fast_layers else nn.ConvTranspose
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)

    x = nn.Dense(base_h * base_w * self.features * width_mult, use_bias=False,
                 **kw)(z.astype(self.dtype))
    x = x.reshape(z.shape[0], base_h, base_w, self.features * width_mult)
    x = nn.relu(_batch_norm(train, self.fast_layers, **kw)(x))
    for i in range(n_up - 1):
      x = conv_t(self.features * width_mult >> (i + 1), (4, 4), (2, 2),
                 use_bias=False, **kw)(x)
      x = nn.relu(_batch_norm(train, self.fast_layers, **kw)(x))
    x = conv_t(channels, (4, 4), (2, 2), **kw)(x)
    return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
  """images [B, H, W, C] -> logits [B] (float32)."""
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  features: int = 64  # Channels of the first layer.
  fast_layers: bool = True  # gan_jax.models.layers: flax's functions, faster.
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    conv = layers.Conv if self.fast_layers else nn.Conv
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = x.astype(self.dtype)
    for i in range(num_upsamplings(self.image_shape[0])):
      x = conv(self.features << i, (4, 4), (2, 2), use_bias=i == 0, **kw)(x)
      if i > 0:
        x = _batch_norm(train, self.fast_layers, **kw)(x)
      x = nn.leaky_relu(x, 0.2)
    logits = nn.Dense(1, **kw)(x.reshape(x.shape[0], -1))
    return logits[:, 0].astype(jnp.float32)
