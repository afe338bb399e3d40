"""Class conditioning shared by the networks ("draw a 4").

* Generators concatenate a learned class embedding to z (Mirza & Osindero
  2014 concatenate the one-hot label; a learned embedding is its usual
  modern form), or, in the ResNet, scale and shift every BatchNorm per
  class (conditional BatchNorm: de Vries et al. 2017, Miyato & Koyama 2018).
* Discriminators add the projection <embed(y), h> of the label onto D's
  last features h to the logit (Miyato & Koyama 2018), or (class_head
  "acgan") keep an unconditional logit and classify h with an auxiliary
  head (Odena et al. 2017), whose class logits [B, K] D sows as
  intermediates["class_logits"] for the steps' classification loss.

* `DrawnClasses` makes a conditional generator draw its own classes from
  z at given frequencies: G conditioned on clusters rather than labels
  (gan_jax.clustering), which samples without being told a class.

Every function is called from inside a module's compact `__call__`, so the
embeddings it creates are that module's parameters.
"""

from typing import Any, Callable, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any


def check_labels(module: nn.Module, num_classes: int,
                 labels: Optional[Array]) -> None:
  """ValueError if a conditional module (num_classes > 0) got no labels."""
  if num_classes and labels is None:
    raise ValueError(f"{type(module).__name__} is class-conditional "
                     f"(num_classes={num_classes}): pass labels [B].")


class ClassEmbedding(nn.Module):
  """labels int [B] -> rows of a learned table [B, features].

  A one-hot matmul rather than a gather (nn.Embed): with the batch sharded
  over devices, it stays sharded the same way with no gather to resolve,
  and for tens of classes it costs nothing.
  """
  num_classes: int
  features: int
  embedding_init: Callable[..., Array] = nn.linear.default_embed_init
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, labels: Array) -> Array:
    table = self.param("embedding", self.embedding_init,
                       (self.num_classes, self.features), self.param_dtype)
    one_hot = jax.nn.one_hot(labels, self.num_classes, dtype=self.dtype)
    return one_hot @ table.astype(self.dtype)


def concat_label_embedding(z: Array, labels: Array, num_classes: int,
                           features: int, dtype: Dtype, param_dtype: Dtype
                           ) -> Array:
  """[z, embed(labels)]: [B, latent_dim] -> [B, latent_dim + features]."""
  embedded = ClassEmbedding(num_classes, features, dtype=dtype,
                            param_dtype=param_dtype)(labels)
  return jnp.concatenate([z.astype(dtype), embedded.astype(dtype)], axis=-1)


CLASS_HEADS = ("projection", "acgan")
CLASS_LOGITS = "class_logits"  # The name ACGAN's class logits are sown as.


def logit_head(h: Array, labels: Optional[Array], num_classes: int,
               wrap: Callable[[nn.Module], Callable[..., Array]],
               init: Callable[..., Array], dtype: Dtype,
               param_dtype: Dtype, class_head: str = "projection",
               owner: Optional[nn.Module] = None) -> Array:
  """D's logits from its last features h [B, F]: dense(h), plus the
  projection <embed(y), h> with num_classes > 0. float32 [B]. `wrap` adds
  spectral norm to both where D has it (the embedding as the authors'
  SNEmbedID); `init` draws the dense kernel and the class table. With
  class_head "acgan", `owner` (the D) sows the auxiliary classifier's
  float32 [B, K] logits instead of adding a projection."""
  if class_head not in CLASS_HEADS:
    raise ValueError(f"class_head={class_head!r}: choose one of "
                     f"{', '.join(CLASS_HEADS)}.")
  logits = wrap(nn.Dense(1, kernel_init=init, dtype=dtype,
                         param_dtype=param_dtype))(h)[:, 0]
  if num_classes and class_head == "acgan":
    classifier = wrap(nn.Dense(num_classes, kernel_init=init, dtype=dtype,
                               param_dtype=param_dtype))
    owner.sow("intermediates", CLASS_LOGITS,
              classifier(h).astype(jnp.float32))
  elif num_classes:
    embed = wrap(ClassEmbedding(num_classes, h.shape[-1],
                                embedding_init=init, dtype=dtype,
                                param_dtype=param_dtype))
    logits = logits + jnp.sum(embed(labels) * h, axis=-1)
  return logits.astype(jnp.float32)


class ClassGainBias(nn.Module):
  """x * (1 + gain[y]) + bias[y] per channel, both embeddings starting at 0:
  after a BatchNorm, the conditional BatchNorm of BigGAN and SNGAN's
  projection generator, which starts out as the unconditional one."""
  num_classes: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, labels: Array) -> Array:
    channels = x.shape[-1]
    embed = lambda name: ClassEmbedding(
        self.num_classes, channels, embedding_init=nn.initializers.zeros,
        dtype=self.dtype, param_dtype=self.param_dtype, name=name)(labels)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (channels,)
    gain = embed("gain").reshape(shape)
    bias = embed("bias").reshape(shape)
    return (x * (1 + gain) + bias).astype(self.dtype)


def classes_from_uniform_normal(u: Array, frequencies: Sequence[float]
                                ) -> Array:
  """Classes int32 [B] drawn at `frequencies` [K] (summing to 1) by the
  inverse CDF of the standard normal entries u [B]: class k where
  Phi(u) falls in [F_{k-1}, F_k)."""
  cumulative = jnp.cumsum(jnp.asarray(frequencies, jnp.float32))
  classes = jnp.searchsorted(cumulative, jax.scipy.stats.norm.cdf(
      u.astype(jnp.float32)), side="right")
  return jnp.minimum(classes, len(frequencies) - 1).astype(jnp.int32)


class DrawnClasses(nn.Module):
  """z [B, 1 + d] (and optionally labels [B]) -> generator(z[:, 1:],
  labels): a conditional `generator` that, given no labels, draws them
  from z[:, 0] at `frequencies` (`classes_from_uniform_normal`).

  The class is drawn from a coordinate the generator never sees, so its
  noise z[:, 1:] is N(0, I) whatever the class, as it is in training, where
  the steps pass the real batch's labels.
  """
  generator: nn.Module
  frequencies: Tuple[float, ...]

  @nn.compact
  def __call__(self, z: Array, train: bool = True,
               labels: Optional[Array] = None) -> Array:
    if labels is None:
      labels = classes_from_uniform_normal(z[:, 0], self.frequencies)
    return self.generator(z[:, 1:], train=train, labels=labels)
