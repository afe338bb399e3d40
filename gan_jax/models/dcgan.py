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

The initialisation is the paper's (section 4): every conv and dense weight
from N(0, 0.02), BatchNorm scales from N(1, 0.02), biases zero. It belongs to
the architecture, so it is a field of each module (`kernel_init`,
`scale_init`) rather than a global default. flax's defaults (LeCun normal,
scale 1) train markedly worse here: README, "The default against PyTorch".
"""

from typing import Any, Callable, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import conditioning, layers

Dtype = Any
Initializer = Callable[..., jax.Array]


def paper_weight_init(key, shape, dtype=jnp.float32) -> jax.Array:
  """N(0, 0.02), the DCGAN paper's conv and dense weights."""
  return 0.02 * jax.random.normal(key, shape, dtype)


def paper_scale_init(key, shape, dtype=jnp.float32) -> jax.Array:
  """N(1, 0.02), the DCGAN paper's BatchNorm scales."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def num_upsamplings(image_size: int) -> int:
  """Halvings from the image size down to the base map: 28 -> 2, 64 -> 4."""
  n = 0
  while image_size % 2 == 0 and image_size > 4:
    image_size //= 2
    n += 1
  return n


def _batch_norm(train: bool, fast: bool, scale_init: Initializer,
                dtype: Dtype, param_dtype: Dtype):
  # momentum=0.9 is PyTorch's default (its momentum=0.1), so the running
  # statistics used by eval-mode sampling settle within a few hundred steps.
  batch_norm = layers.BatchNorm if fast else nn.BatchNorm
  return batch_norm(use_running_average=not train, momentum=0.9,
                    epsilon=1e-5, scale_init=scale_init, dtype=dtype,
                    param_dtype=param_dtype)


class DCGANGenerator(nn.Module):
  """z [B, latent_dim] (and labels [B] with num_classes) -> images
  [B, H, W, C] in [-1, 1]."""
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  features: int = 64  # Channels of the last hidden layer.
  fast_layers: bool = True  # gan_jax.models.layers: flax's functions, faster.
  kernel_init: Initializer = paper_weight_init
  scale_init: Initializer = paper_scale_init
  # > 0: a class embedding of label_features is concatenated to z.
  num_classes: int = 0
  label_features: int = 50
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True,
               labels: Optional[jax.Array] = None) -> jax.Array:
    conditioning.check_labels(self, self.num_classes, labels)
    batch = z.shape[0]
    if self.num_classes:
      z = conditioning.concat_label_embedding(
          z, labels, self.num_classes, self.label_features, self.dtype,
          self.param_dtype)
    height, width, channels = self.image_shape
    n_up = num_upsamplings(height)
    base_h, base_w = height >> n_up, width >> n_up
    width_mult = 2 ** (n_up - 1)
    conv_t = layers.ConvTranspose if self.fast_layers else nn.ConvTranspose
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    bn_kw = dict(scale_init=self.scale_init, **kw)
    kw["kernel_init"] = self.kernel_init

    x = nn.Dense(base_h * base_w * self.features * width_mult, use_bias=False,
                 **kw)(z.astype(self.dtype))
    x = x.reshape(batch, base_h, base_w, self.features * width_mult)
    x = nn.relu(_batch_norm(train, self.fast_layers, **bn_kw)(x))
    for i in range(n_up - 1):
      x = conv_t(self.features * width_mult >> (i + 1), (4, 4), (2, 2),
                 use_bias=False, **kw)(x)
      x = nn.relu(_batch_norm(train, self.fast_layers, **bn_kw)(x))
    x = conv_t(channels, (4, 4), (2, 2), **kw)(x)
    return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
  """images [B, H, W, C] (and labels [B] with num_classes) -> logits [B]
  (float32). With num_classes, the projection head adds <embed(y), h>.

  With `spectral_norm`, every conv and dense weight is divided by its
  spectral norm (Miyato et al. 2018, their "standard CNN" use of it) and
  BatchNorm is left out, as there; see `layers.spectral_normalized`.
  """
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  features: int = 64  # Channels of the first layer.
  fast_layers: bool = True  # gan_jax.models.layers: flax's functions, faster.
  spectral_norm: bool = False
  # False: no BatchNorm, as WGAN-GP's critic (its penalty is per image).
  batch_norm: bool = True
  kernel_init: Initializer = paper_weight_init
  scale_init: Initializer = paper_scale_init
  num_classes: int = 0  # > 0: projection head for labels.
  # With num_classes: "projection", or "acgan" (an auxiliary classifier).
  class_head: str = "projection"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               labels: Optional[jax.Array] = None) -> jax.Array:
    conditioning.check_labels(self, self.num_classes, labels)
    conv = layers.Conv if self.fast_layers else nn.Conv
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    bn_kw = dict(scale_init=self.scale_init, **kw)
    kw["kernel_init"] = self.kernel_init
    wrap = layers.spectral_wrapper(self.spectral_norm, train)
    x = x.astype(self.dtype)
    for i in range(num_upsamplings(self.image_shape[0])):
      batch_norm = i > 0 and self.batch_norm and not self.spectral_norm
      x = wrap(conv(self.features << i, (4, 4), (2, 2),
                    use_bias=not batch_norm, **kw))(x)
      if batch_norm:
        x = _batch_norm(train, self.fast_layers, **bn_kw)(x)
      x = nn.leaky_relu(x, 0.2)
      self.sow(layers.FEATURES, f"block_{i}", x)
    return conditioning.logit_head(
        x.reshape(x.shape[0], -1), labels, self.num_classes, wrap,
        self.kernel_init, self.dtype, self.param_dtype, self.class_head, self)
