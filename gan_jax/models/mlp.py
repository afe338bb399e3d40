"""Fully connected GAN after Goodfellow et al. 2014 (the MNIST networks).

The generator is a ReLU MLP with a tanh output; the discriminator uses maxout
units with dropout, as in the paper's released code.
"""

from typing import Any, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models import conditioning, layers

Dtype = Any


class Maxout(nn.Module):
  """Dense layer to `features * pieces` units, max over each group of pieces."""
  features: int
  pieces: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = nn.Dense(self.features * self.pieces, dtype=self.dtype,
                 param_dtype=self.param_dtype)(x)
    return y.reshape(x.shape[:-1] + (self.features, self.pieces)).max(-1)


class MLPGenerator(nn.Module):
  """z [B, latent_dim] (and labels [B] with num_classes) -> images
  [B, H, W, C] in [-1, 1]."""
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  hidden: Sequence[int] = (1200, 1200)
  # > 0: a class embedding of label_features is concatenated to z.
  num_classes: int = 0
  label_features: int = 50
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True,
               labels: Optional[jax.Array] = None) -> jax.Array:
    del train  # No batch statistics or dropout in this generator.
    conditioning.check_labels(self, self.num_classes, labels)
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = z.astype(self.dtype)
    if self.num_classes:
      x = conditioning.concat_label_embedding(
          x, labels, self.num_classes, self.label_features, self.dtype,
          self.param_dtype)
    for width in self.hidden:
      x = nn.relu(nn.Dense(width, **kw)(x))
    x = nn.Dense(int(np.prod(self.image_shape)), **kw)(x)
    return jnp.tanh(x).reshape((z.shape[0],) + tuple(self.image_shape))


class MLPDiscriminator(nn.Module):
  """images [B, H, W, C] (and labels [B] with num_classes) -> logits [B]
  (float32). Needs a 'dropout' rng. With num_classes, the projection head
  adds <embed(y), h>."""
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  hidden: Sequence[int] = (240, 240)
  pieces: int = 5
  dropout_rate: float = 0.5
  num_classes: int = 0  # > 0: projection head for labels.
  # With num_classes: "projection", or "acgan" (an auxiliary classifier).
  class_head: str = "projection"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               labels: Optional[jax.Array] = None) -> jax.Array:
    conditioning.check_labels(self, self.num_classes, labels)
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = x.reshape(x.shape[0], -1).astype(self.dtype)
    for i, width in enumerate(self.hidden):
      x = layers.Dropout(self.dropout_rate)(x, deterministic=not train)
      x = Maxout(width, self.pieces, **kw)(x)
      self.sow(layers.FEATURES, f"hidden_{i}", x)
    x = layers.Dropout(self.dropout_rate)(x, deterministic=not train)
    return conditioning.logit_head(
        x, labels, self.num_classes, lambda layer: layer,
        nn.initializers.lecun_normal(), self.dtype, self.param_dtype,
        self.class_head, self)
