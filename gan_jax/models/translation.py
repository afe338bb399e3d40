"""pix2pix's networks (Isola et al. 2017): a U-Net generator and a PatchGAN
discriminator, at the small sizes of this project.

* `UNetGenerator`: source [B, H, W, Cs] -> image [B, H, W, C] in [-1, 1].
  4x4/2 convolutions halve the map down to 1x1 (after zero-padding H and W
  up to a power of two: 28 -> 32, cropped back at the end), channels
  64-128-256-512-512-..., BatchNorm except on the first, LeakyReLU 0.2;
  4x4/2 transposed convolutions come back up, each concatenated with the
  encoder's map of the same size (the skips), BatchNorm, ReLU, dropout 0.5
  on the three innermost decoder layers; tanh out. The paper's 256-pixel
  U-Net is the same recipe with 8 halvings.
* `PatchDiscriminator`: (source, image) concatenated on channels -> a map
  of logits, one per patch (pytorch-CycleGAN-and-pix2pix's
  NLayerDiscriminator). `n_layers` 4x4/2 convolutions, one 4x4/1 and a 4x4/1
  to 1 channel; its receptive field is 70 pixels for the paper's n_layers=3
  at 256 (27% of the image). `patch_layers(size)` scales it: the largest
  field within 27% of the image, at least one layer (16 pixels: 25% at 64,
  57% at 28).

Weights are N(0, 0.02) and BatchNorm scales N(1, 0.02), as in the paper.
"""

from typing import Any, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError
from gan_jax.models import layers
from gan_jax.models.dcgan import paper_scale_init, paper_weight_init

Dtype = Any
PAPER_FIELD_FRACTION = 70 / 256


def receptive_field(n_layers: int) -> int:
  """Pixels of the input one patch logit sees: 4 for the last conv, +3 for
  the stride-1 one, then each stride-2 conv doubles it and adds 2."""
  field = 7
  for _ in range(n_layers):
    field = 2 * field + 2
  return field


def patch_layers(image_size: int) -> int:
  """The n_layers whose field is the largest within the paper's 27% of the
  image (at least 1)."""
  n = 1
  while receptive_field(n + 1) <= PAPER_FIELD_FRACTION * image_size:
    n += 1
  return n


def _batch_norm(train: bool, dtype: Dtype, param_dtype: Dtype):
  return layers.BatchNorm(use_running_average=not train, momentum=0.9,
                          epsilon=1e-5, scale_init=paper_scale_init,
                          dtype=dtype, param_dtype=param_dtype)


class UNetGenerator(nn.Module):
  """source [B, H, W, Cs] -> [B, H, W, out_channels] in [-1, 1]."""
  out_channels: int = 1
  features: int = 64
  max_features: int = 512
  dropout_layers: int = 3  # Innermost decoder layers with dropout 0.5.
  # Halvings; 0: down to 1x1 (the paper's; the authors' --netG unet_128
  # and unet_256 are 7 and 8 at their sizes). Fewer: a coarser bottleneck.
  num_downs: int = 0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, source: jax.Array, train: bool = True) -> jax.Array:
    kw = dict(kernel_init=paper_weight_init, dtype=self.dtype,
              param_dtype=self.param_dtype)
    _, height, width, _ = source.shape
    side = 1 << max(height - 1, width - 1, 1).bit_length()
    x = jnp.pad(source.astype(self.dtype),
                ((0, 0), (0, side - height), (0, side - width), (0, 0)))
    depth = side.bit_length() - 1  # Halvings down to 1x1.
    if self.num_downs > depth:
      raise ConfigError(f"--num_downs={self.num_downs}: a {height}x{width} "
                        f"image halves at most {depth} times.")
    depth = self.num_downs or depth
    widths = [min(self.features << i, self.max_features) for i in range(depth)]
    skips = []
    for i, width_i in enumerate(widths):
      x = nn.leaky_relu(x, 0.2) if i else x
      x = layers.Conv(width_i, (4, 4), (2, 2), use_bias=i == 0 or
                      i == depth - 1, **kw)(x)
      if 0 < i < depth - 1:  # Not on the first, nor the 1x1 bottleneck.
        x = _batch_norm(train, self.dtype, self.param_dtype)(x)
      skips.append(x)
    skips.pop()  # The bottleneck has no partner.
    for i, width_i in enumerate(reversed(widths[:-1])):
      x = layers.ConvTranspose(width_i, (4, 4), (2, 2), use_bias=False,
                               **kw)(nn.relu(x))
      x = _batch_norm(train, self.dtype, self.param_dtype)(x)
      if i < self.dropout_layers:
        x = layers.Dropout(0.5)(x, deterministic=not train)
      x = jnp.concatenate([x, skips.pop()], axis=-1)
    x = layers.ConvTranspose(self.out_channels, (4, 4), (2, 2),
                             **kw)(nn.relu(x))
    return jnp.tanh(x[:, :height, :width].astype(jnp.float32))


class PatchDiscriminator(nn.Module):
  """(source [B, H, W, Cs], image [B, H, W, C]) -> patch logits [B, h, w]
  (float32)."""
  n_layers: int = 1
  features: int = 64
  max_features: int = 512
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, source: Optional[jax.Array], image: jax.Array,
               train: bool = True) -> jax.Array:
    kw = dict(kernel_init=paper_weight_init, dtype=self.dtype,
              param_dtype=self.param_dtype)
    x = image if source is None else jnp.concatenate(
        [source.astype(image.dtype), image], axis=-1)
    x = x.astype(self.dtype)
    for i in range(self.n_layers + 1):
      stride = 2 if i < self.n_layers else 1
      width_i = min(self.features << i, self.max_features)
      x = layers.Conv(width_i, (4, 4), (stride, stride), use_bias=i == 0,
                      **kw)(x)
      if i:
        x = _batch_norm(train, self.dtype, self.param_dtype)(x)
      x = nn.leaky_relu(x, 0.2)
      self.sow(layers.FEATURES, f"block_{i}", x)
    x = layers.Conv(1, (4, 4), (1, 1), **kw)(x)
    return x[..., 0].astype(jnp.float32)


def create(image_shape: Tuple[int, int, int], features: int = 64,
           num_downs: int = 0, **kwargs) -> Tuple[nn.Module, nn.Module]:
  """pix2pix's (generator, discriminator) for images of `image_shape`."""
  generator = UNetGenerator(out_channels=image_shape[-1], features=features,
                            num_downs=num_downs, **kwargs)
  discriminator = PatchDiscriminator(n_layers=patch_layers(image_shape[0]),
                                     features=features, **kwargs)
  return generator, discriminator
