"""SNGAN/BigGAN-style ResNet generator and discriminator (Miyato et al. 2018).

The CIFAR-10 configuration of Miyato et al. 2018 (table 4) and Miyato &
Koyama 2018, built from the image size:

* G: z -> dense to a base map (4x4, or 7x7 for 28 pixels) of `features`
  channels -> residual up-blocks (BN, ReLU, 2x nearest upsampling, 3x3
  conv, BN, ReLU, 3x3 conv; shortcut: upsampling, 1x1 conv) until the image
  size -> BN, ReLU, 3x3 conv, tanh.
* D: residual down-blocks (ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 average
  pooling; shortcut: 1x1 conv, pooling; the first block starts without
  ReLU) down to 7x7 or 8x8, two residual blocks without pooling, ReLU,
  global sum pooling, a dense logit. Every weight is spectrally normalised
  (`spectral_norm`, on by default) and D has no BatchNorm.
* Labels (Miyato & Koyama 2018): with `num_classes` > 0, G's BatchNorms
  are conditional (a per-class gain and bias) and D adds the projection
  <embed(y), h> to the logit; both take `labels` [B].

| image | G blocks (base)  | D down-blocks, then plain |
| ----- | ---------------- | ------------------------- |
| 28    | 2 (7x7)          | 2 (-> 7x7), 2             |
| 32    | 3 (4x4)          | 2 (-> 8x8), 2             |
| 64    | 4 (4x4)          | 3 (-> 8x8), 2             |

Widths: `features` channels everywhere (the CIFAR-10 networks), or with
`pyramid` the widths of the larger SNGAN/BigGAN models: `features` at full
resolution, doubled at each halving (G at 64x64: 16f at 4x4, 8f, 4f, 2f, f
at 64x64; D: f, 2f, 4f down to 8x8, then 8f, 8f). Each block then costs
about the same, where constant widths spend most FLOPs at full resolution.

Weights are Glorot-uniform, as in the authors' Chainer code.
"""

from typing import Any, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import conditioning, layers
from gan_jax.models.dcgan import num_upsamplings

Dtype = Any
_INIT = nn.initializers.xavier_uniform()


def _upsample(x: jax.Array) -> jax.Array:
  """2x nearest-neighbour upsampling of [B, H, W, C]."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _avg_pool(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (2, 2), (2, 2))


class _Block(nn.Module):
  """Settings shared by the blocks; `conv` and `batch_norm` are called from
  the subclasses' compact __call__, where they create submodules."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  spectral_norm: bool = False
  train: bool = True

  def conv(self, features, kernel_size):
    return layers.spectral_wrapper(self.spectral_norm, self.train)(
        layers.Conv(features, (kernel_size, kernel_size), (1, 1),
                    kernel_init=_INIT, dtype=self.dtype,
                    param_dtype=self.param_dtype))

  def batch_norm(self):
    return _batch_norm(self.train, self.dtype, self.param_dtype)


def _batch_norm(train, dtype, param_dtype):
  return layers.BatchNorm(use_running_average=not train, momentum=0.9,
                          epsilon=1e-5, dtype=dtype, param_dtype=param_dtype)


class GeneratorBlock(_Block):
  """[B, H, W, C] -> [B, 2H, 2W, features]; class-conditional BatchNorm with
  num_classes and labels [B]."""
  features: int = 256
  num_classes: int = 0

  def norm(self, x, labels):
    x = self.batch_norm()(x)
    if self.num_classes:
      x = conditioning.ClassGainBias(self.num_classes, self.dtype,
                                     self.param_dtype)(x, labels)
    return x

  @nn.compact
  def __call__(self, x, labels=None):
    h = nn.relu(self.norm(x, labels))
    h = self.conv(self.features, 3)(_upsample(h))
    h = nn.relu(self.norm(h, labels))
    h = self.conv(self.features, 3)(h)
    return h + self.conv(self.features, 1)(_upsample(x))


class DiscriminatorBlock(_Block):
  """[B, H, W, C] -> [B, H/2, W/2, features] (or H, W without `down`)."""
  features: int = 128
  down: bool = True
  first: bool = False  # The input block: no ReLU on the images.

  @nn.compact
  def __call__(self, x):
    h = x if self.first else nn.relu(x)
    h = self.conv(self.features, 3)(h)
    h = self.conv(self.features, 3)(nn.relu(h))
    shortcut = x
    if self.first:  # Pool first: the 1x1 conv then runs on 4x fewer pixels.
      shortcut = self.conv(self.features, 1)(_avg_pool(x))
    elif self.down or x.shape[-1] != self.features:
      shortcut = self.conv(self.features, 1)(x)
      shortcut = _avg_pool(shortcut) if self.down else shortcut
    return (_avg_pool(h) if self.down else h) + shortcut


class ResNetGenerator(nn.Module):
  """z [B, latent_dim] (and labels [B] with num_classes) -> images
  [B, H, W, C] in [-1, 1]."""
  image_shape: Tuple[int, int, int] = (32, 32, 3)
  features: int = 256
  pyramid: bool = False  # Widths double at each halving of resolution.
  num_classes: int = 0  # > 0: class-conditional BatchNorm.
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True,
               labels: Optional[jax.Array] = None) -> jax.Array:
    conditioning.check_labels(self, self.num_classes, labels)
    height, width, channels = self.image_shape
    n_up = num_upsamplings(height)
    base_h, base_w = height >> n_up, width >> n_up
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, train=train)
    # widths[0]: the base map; widths[i + 1]: block i's output.
    widths = [self.features << (n_up - i if self.pyramid else 0)
              for i in range(n_up + 1)]
    x = nn.Dense(base_h * base_w * widths[0], kernel_init=_INIT,
                 dtype=self.dtype, param_dtype=self.param_dtype)(
                     z.astype(self.dtype))
    x = x.reshape(z.shape[0], base_h, base_w, widths[0])
    for width in widths[1:]:
      x = GeneratorBlock(features=width, num_classes=self.num_classes,
                         **kw)(x, labels)
    x = nn.relu(_batch_norm(train, self.dtype, self.param_dtype)(x))
    x = layers.Conv(channels, (3, 3), (1, 1), kernel_init=_INIT,
                    dtype=self.dtype, param_dtype=self.param_dtype)(x)
    return jnp.tanh(x)


class ResNetDiscriminator(nn.Module):
  """images [B, H, W, C] (and labels [B] with num_classes) -> logits [B]."""
  image_shape: Tuple[int, int, int] = (32, 32, 3)
  features: int = 128
  pyramid: bool = False  # Widths double at each halving of resolution.
  spectral_norm: bool = True
  num_classes: int = 0  # > 0: projection head for labels.
  # With num_classes: "projection", or "acgan" (an auxiliary classifier).
  class_head: str = "projection"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               labels: Optional[jax.Array] = None) -> jax.Array:
    conditioning.check_labels(self, self.num_classes, labels)
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype,
              spectral_norm=self.spectral_norm, train=train)
    wrap = layers.spectral_wrapper(self.spectral_norm, train)
    h = x.astype(self.dtype)
    n_down = max(num_upsamplings(self.image_shape[0]) - 1, 2)
    for i in range(n_down + 2):
      width = self.features << (min(i, n_down) if self.pyramid else 0)
      h = DiscriminatorBlock(features=width, first=i == 0,
                             down=i < n_down, **kw)(h)
      self.sow(layers.FEATURES, f"block_{i}", h)
    h = jnp.sum(nn.relu(h), axis=(1, 2))  # Global sum pooling: [B, C].
    self.sow(layers.FEATURES, "pooled", h)
    return conditioning.logit_head(h, labels, self.num_classes, wrap, _INIT,
                                   self.dtype, self.param_dtype,
                                   self.class_head, self)
