"""The GAN family: two players, a loss of logits, optional regularisers.

    from gan_jax.families import gan
    state = gan.FAMILY.init(gan.GANConfig(), DataSpec((28, 28, 1)), key)
    state, metrics = jax.jit(gan.FAMILY.train_step)(state, batch)

The state is `gan_jax.state.GANState` and the step is
`gan_jax.steps.train_step`, as in release 0.1 (papers import them from
there). This module adds what the shared loop and the evaluators ask of a
family: the model config, init, and the named predictions.

Your own parts go in the config, not in a registry:

    GANConfig(loss=losses.GANLoss(my_d_loss, my_g_loss),
              generator=MyGenerator(), discriminator=MyDiscriminator(),
              d_regularizers=(regularizers.r1(gamma=1.0, interval=16),))
"""

import dataclasses
import time
from typing import Mapping, Optional, Tuple, Union

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import (augmentations, clustering, losses, models,
                     regularizers, steps)
from gan_jax.config import MAX_LATENT_DIM, Config, setting
from gan_jax.errors import ConfigError
from gan_jax.family import (DataSpec, Family, class_rows,
                            conditional_classes)
from gan_jax.families.gan_presets import PRESETS
from gan_jax.models import layers
from gan_jax.models.conditioning import CLASS_HEADS
from gan_jax.regularizers import Regularizer
from gan_jax.state import GANState, PlayerState, create_state

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class GANConfig(Config):
  """The GAN's model: networks, loss, regularisers and optimizers."""

  arch: str = setting("dcgan", "Generator/discriminator pair.",
                      choices=sorted(models.ARCHITECTURES), group="model")
  latent_dim: int = setting(100, "Size of z.", group="model")
  dtype: str = setting("float32", "Compute dtype; params and losses stay "
                       "float32.", choices=("float32", "bfloat16", "float16"),
                       group="model")
  loss: Union[str, losses.GANLoss] = setting(
      "non_saturating", "Adversarial loss (in code: your own "
      "losses.GANLoss).", choices=sorted(losses.LOSSES), group="model")
  penalty: str = setting(
      "none", "Gradient penalty on D: r1 or r2 (Mescheder et al. 2018, "
      "gamma/2 E||grad D||^2 on real or generated images), or wgan_gp "
      "(Gulrajani et al. 2017).", choices=("none",) + tuple(sorted(
          regularizers.REGULARIZERS)), group="model")
  penalty_weight: float = setting(
      10.0, "gamma of r1/r2, lambda of wgan_gp.", group="model")
  penalty_interval: int = setting(
      1, "Apply the penalty every this many D steps, its loss times the "
      "interval, D's Adam lr and betas scaled by c/(c+1) (lazy, StyleGAN2).",
      group="model")
  conditional: bool = setting(
      False, "Class-conditional G and D (\"draw a 4\"): G gets a class "
      "embedding beside z (conditional BatchNorm in the ResNet), D a "
      "projection head (Miyato & Koyama 2018).", group="model")
  num_classes: int = setting(
      0, "Classes of a --conditional model (0: those of the training "
      "data's labels).", group="model")
  class_head: str = setting(
      "projection", "How a --conditional D uses labels: a projection "
      "(Miyato & Koyama 2018), or acgan: an unconditional logit plus an "
      "auxiliary classifier (Odena et al. 2017).",
      choices=CLASS_HEADS, group="model")
  acgan_weight: float = setting(
      1.0, "Weight of the auxiliary classifier's cross-entropy in both "
      "players' losses (--class_head=acgan).", group="model")
  clusters: int = setting(
      0, "Condition G and D on this many clusters of the training images "
      "instead of labels (k-means of the pixels, once before training; "
      "gan_jax.clustering): no labels are read, and G draws its cluster "
      "from z at the clusters' frequencies, so it samples unconditionally. "
      "0: off.", group="model")
  diffaugment: str = setting(
      "", "DiffAugment (Zhao et al. 2020) for small datasets: transforms of "
      "every image D sees, real and fake, e.g. color,translation,cutout; "
      "empty: none.", group="model")
  spectral_norm: bool = setting(
      False, "Spectral normalisation of D's weights (Miyato et al. 2018); "
      "the DCGAN D then drops its BatchNorm.", group="model")
  lr: float = setting(2e-4, "Adam learning rate of both players (see g_lr, "
                      "d_lr).", group="optimisation")
  b1: float = setting(0.5, "Adam beta1 of both players.", group="optimisation")
  b2: float = setting(0.999, "Adam beta2 of both players.",
                      group="optimisation")
  # Per-player settings (TTUR, Heusel et al. 2017); None: the shared value.
  g_lr: Optional[float] = setting(None, "G's learning rate (default: lr).",
                                  group="optimisation")
  d_lr: Optional[float] = setting(None, "D's learning rate (default: lr).",
                                  group="optimisation")
  g_b1: Optional[float] = setting(None, "G's beta1 (default: b1).",
                                  group="optimisation")
  d_b1: Optional[float] = setting(None, "D's beta1 (default: b1).",
                                  group="optimisation")
  g_b2: Optional[float] = setting(None, "G's beta2 (default: b2).",
                                  group="optimisation")
  d_b2: Optional[float] = setting(None, "D's beta2 (default: b2).",
                                  group="optimisation")
  lr_decay_steps: int = setting(
      0, "Cosine decay of both players' learning rates to 0 over this many "
      "G steps (0: constant).", group="optimisation")
  d_steps: int = setting(1, "Discriminator updates per generator update, "
                         "each on its own real batch.", group="optimisation")
  g_ema_decay: float = setting(
      0.0, "Keep an exponential moving average of G's params with this decay "
      "(e.g. 0.999) and sample from it; 0: none.", group="optimisation")
  g_ema_rampup: float = setting(
      0.0, "Ramp the EMA up as StyleGAN2-ADA does: its half-life is at most "
      "this fraction of the G steps so far (their 0.05), so early samples do "
      "not average in the initialisation; 0: the fixed decay from step 0.",
      group="optimisation")
  # Your own parts, passed in code (no flags).
  generator: Optional[nn.Module] = setting(
      None, "A flax module to use as G instead of arch's.", group="model",
      flag=False)
  discriminator: Optional[nn.Module] = setting(
      None, "A flax module to use as D instead of arch's.", group="model",
      flag=False)
  d_regularizers: Tuple[Regularizer, ...] = setting(
      (), "Penalties on D (gan_jax.regularizers).", group="model", flag=False)

  def optimizer_settings(self, player: str) -> Tuple[float, float, float]:
    """(lr, b1, b2) of player "g" or "d": its own, else the shared ones."""
    own = lambda name: getattr(self, f"{player}_{name}")
    return tuple(getattr(self, name) if own(name) is None else own(name)
                 for name in ("lr", "b1", "b2"))

  def all_d_regularizers(self) -> Tuple[Regularizer, ...]:
    """d_regularizers, then the flag-chosen penalty if any."""
    if self.penalty == "none":
      return tuple(self.d_regularizers)
    chosen = regularizers.REGULARIZERS[self.penalty](self.penalty_weight,
                                                     self.penalty_interval)
    return tuple(self.d_regularizers) + (chosen,)

  def validate(self) -> "GANConfig":
    """Raises ConfigError naming the offending field (= flag) and the fix."""
    self.positive("lr", "latent_dim", "d_steps", "penalty_interval",
                  *[name for name in ("g_lr", "d_lr")
                    if getattr(self, name) is not None])
    self.at_most(MAX_LATENT_DIM, "latent_dim")
    self.in_unit_interval("b1", "b2", "g_ema_decay", *[
        name for name in ("g_b1", "d_b1", "g_b2", "d_b2")
        if getattr(self, name) is not None])
    self.non_negative("lr_decay_steps", "g_ema_rampup", "penalty_weight",
                      "num_classes", "acgan_weight", "clusters")
    if self.clusters and self.conditional:
      raise ConfigError("--clusters conditions on clusters instead of "
                        "labels: drop --conditional (or --clusters).")
    if self.clusters == 1:
      raise ConfigError("--clusters=1 is one cluster, i.e. unconditional: "
                        "use 0, or 2 or more clusters.")
    if self.class_head != "projection" and not (self.conditional
                                                or self.clusters):
      raise ConfigError(f"--class_head={self.class_head} is the head of a "
                        "conditional D: add --conditional (or --clusters).")
    if self.num_classes and not self.conditional:
      raise ConfigError("--num_classes sets the classes of a conditional "
                        "model: add --conditional.")
    if self.g_ema_rampup and not self.g_ema_decay:
      raise ConfigError("--g_ema_rampup ramps an EMA up: set --g_ema_decay "
                        "too (e.g. 0.995).")
    self.check_choices()
    try:
      augmentations.resolve(self.diffaugment)
    except ValueError as e:
      raise ConfigError(f"--diffaugment={self.diffaugment!r}: {e}") from e
    if not isinstance(self.loss, (str, losses.GANLoss)):
      raise ConfigError("loss must name one of gan_jax.losses.LOSSES or be a "
                        f"losses.GANLoss, got {type(self.loss).__name__}.")
    for name in ("generator", "discriminator"):
      if not isinstance(getattr(self, name), (type(None), nn.Module)):
        raise ConfigError(f"{name} must be a flax.linen.Module instance.")
    return self


def num_classes_of(config: GANConfig, data_spec: DataSpec) -> int:
  """The classes of a --conditional model (0 if unconditional): --num_classes
  or the data's. ConfigError if the data has no labels or more classes."""
  return conditional_classes(config.conditional, config.num_classes,
                             data_spec)


def prepare_data(config: GANConfig, images, labels):
  """With --clusters, the training images' cluster ids replace their
  labels (host side, once): images uint8 [N, H, W, C] -> (images, ids)."""
  if not config.clusters:
    return images, labels
  if config.clusters > len(images):
    raise ConfigError(f"--clusters={config.clusters} is more than the "
                      f"{len(images)} training images.")
  started = time.perf_counter()
  ids = clustering.cluster_images(images, config.clusters)
  logging.info("k-means: %d images into %d clusters in %.1f s; sizes %s.",
               len(images), config.clusters, time.perf_counter() - started,
               np.bincount(ids, minlength=config.clusters).tolist())
  return images, ids


def init(config: GANConfig, data_spec: DataSpec, key: Array) -> GANState:
  """Both players for `data_spec`'s images (`state.create_state`). With
  --clusters, its labels are cluster ids (`prepare_data`), whose training
  frequencies G draws from."""
  if not config.clusters:
    return create_state(config, data_spec.image_shape, rng=key,
                        num_classes=num_classes_of(config, data_spec))
  if not sum(data_spec.label_counts) or (
      len(data_spec.label_counts) > config.clusters):
    raise ConfigError(
        f"--clusters={config.clusters} needs the data's cluster sizes, "
        f"[{config.clusters}] or fewer, in DataSpec.label_counts; got "
        f"{list(data_spec.label_counts)}.")
  counts = np.zeros(config.clusters)
  counts[:len(data_spec.label_counts)] = data_spec.label_counts
  return create_state(config, data_spec.image_shape, rng=key,
                      num_classes=config.clusters,
                      class_frequencies=tuple(counts / counts.sum()))


def requestable_classes(game) -> int:
  """Classes a caller may ask G for: a conditional game's; 0 for an
  unconditional one, and for one on clusters, whose G draws its own."""
  return 0 if game.class_frequencies else game.num_classes


# BigGAN's standing statistics for an EMA generator: batch statistics of the
# EMA weights averaged over STANDING_STATS_BATCHES batches of
# STANDING_STATS_BATCH fixed latents, so sampling stays a deterministic
# function of the state. A channel's statistics vary mostly between latents,
# not between the positions of one image, so they need thousands of latents
# to settle: from one batch of 512, they cost 1.3 FD on Fashion-MNIST
# (README, "The generator EMA").
STANDING_STATS_BATCH = 512
STANDING_STATS_BATCHES = 8


def standing_batch_stats(apply_fn, params, batch_stats, z: Array,
                         labels: Optional[Array] = None):
  """BatchNorm statistics of the generator with `params`: those of each
  batch of latents z [K, B, latent_dim], averaged over the K batches.

  The running averages of a generator are those of the live weights; the
  EMA weights need their own (Brock et al. 2019 call these "standing
  statistics"). Every running average is updated as m * old + (1 - m) *
  new, so one train-mode pass from zeros gives a = (1 - m) new and one from
  ones gives b = m + (1 - m) new; new = a / (1 - (b - a)), for any momentum
  m. Statistics that are not running averages (u of a spectral norm) keep
  the live ones. A conditional generator runs on `labels` [B].
  """
  def updated(fill):
    def one_batch(z_batch):
      _, updates = apply_fn(
          {"params": params,
           "batch_stats": jax.tree.map(lambda x: jnp.full_like(x, fill),
                                       batch_stats)},
          z_batch, train=True, mutable=["batch_stats"],
          **steps.labels_kwarg(labels))
      return updates["batch_stats"]
    return jax.lax.map(one_batch, z)

  from_zeros, from_ones = updated(0.0), updated(1.0)

  def solve(path, live, a, b):
    if jax.tree_util.keystr(path[-1:]) not in ("['mean']", "['var']"):
      return live
    return jnp.mean(a / (1.0 - (b - a)), axis=0)

  return jax.tree_util.tree_map_with_path(solve, batch_stats, from_zeros,
                                          from_ones)


def balanced_labels(num: int, num_classes: int) -> Optional[Array]:
  """0, 1, ..., C-1, 0, 1, ...: int32 [num] (None if unconditional)."""
  if not num_classes:
    return None
  return jnp.arange(num, dtype=jnp.int32) % num_classes


def ema_batch_stats(g_state: PlayerState):
  """The EMA weights' standing BatchNorm statistics, over
  STANDING_STATS_BATCHES batches of STANDING_STATS_BATCH fixed latents (and
  balanced classes)."""
  game = g_state.game
  standing = jax.random.normal(
      jax.random.key(0),
      (STANDING_STATS_BATCHES, STANDING_STATS_BATCH, game.latent_dim),
      jnp.float32)
  return standing_batch_stats(
      g_state.apply_fn, g_state.ema_params, g_state.batch_stats, standing,
      balanced_labels(STANDING_STATS_BATCH, requestable_classes(game)))


def ema_as_live(g_state: PlayerState) -> PlayerState:
  """G's EMA weights, with their own BatchNorm statistics, as its live
  weights (and no EMA): a generator that samples like the EMA."""
  if g_state.ema_params is None:
    return g_state
  batch_stats = (ema_batch_stats(g_state) if g_state.batch_stats
                 else g_state.batch_stats)
  return g_state.replace(params=g_state.ema_params, batch_stats=batch_stats,
                         ema_params=None)


def sampler(state: GANState) -> GANState:
  """The state whose live generator is the one sampling uses (the EMA with
  its standing statistics, if kept): computed once before many batches."""
  return state.replace(g=ema_as_live(state.g))


def generate_images(g_state: PlayerState, z: Array,
                    labels: Optional[Array] = None) -> Array:
  """Eval-mode G(z) (running BatchNorm statistics): [B, H, W, C] in [-1, 1].

  A conditional generator draws classes `labels` int32 [B] (default: every
  class in turn, `balanced_labels`). With G's EMA params (g_ema_decay),
  the BatchNorm statistics are those of the EMA weights (`ema_batch_stats`),
  not the live generator's.
  """
  g_state = ema_as_live(g_state)
  num_classes = requestable_classes(g_state.game)
  if labels is None:
    labels = balanced_labels(z.shape[0], num_classes)
  labels = labels if num_classes else None
  return g_state.apply_fn(g_state.variables(), z, train=False,
                          **steps.labels_kwarg(labels))


def latents(state: GANState, key: Array, num: int) -> Array:
  """z ~ N(0, I), float32 [num, latent_dim]."""
  return steps.sample_latents(key, num, state.game.latent_dim)


def decode(state: GANState, z: Array, labels: Optional[Array] = None
           ) -> Array:
  """G(z) [N, H, W, C]; a conditional G draws `labels` (default: balanced)."""
  return generate_images(state.g, z, labels)


def generate(state: GANState, key: Array, num: int,
             labels: Optional[Array] = None) -> Array:
  """`num` samples [N, H, W, C]; a conditional G draws `labels` int32 [N]
  (default: every class in turn)."""
  return decode(state, latents(state, key, num), labels)


def preview(state: GANState, key: Array, images: Array,
            labels: Optional[Array] = None) -> Mapping[str, Array]:
  """Samples for the grid from latents of `key`: as many as `images`, or for
  a conditional G one row per class ([classes, columns, H, W, C]). The
  images' `labels` are not needed."""
  del labels
  return {"samples": class_rows(
      lambda n, classes: generate(state, key, n, classes),
      images.shape[0], requestable_classes(state.game))}


def features(state: GANState, images: Array) -> Mapping[str, Array]:
  """D's hidden activations in eval mode, {layer: [N, ...]}: what it sows in
  `layers.FEATURES` (a D of your own sows its own). The layers before a
  conditional D's class head do not see the labels, so none are needed."""
  num = images.shape[0]
  labels = jnp.zeros((num,), jnp.int32) if state.game.num_classes else None
  _, sown = state.game.discriminator.apply(
      state.d.variables(), images, train=False, mutable=[layers.FEATURES],
      **steps.labels_kwarg(labels))
  return {name: values[-1] for name, values in
          sown.get(layers.FEATURES, {}).items()}


def describe_metrics(m: Mapping[str, float]) -> str:
  line = (f"d_loss {m['d_loss']:.3f}  g_loss {m['g_loss']:.3f}  D(x) "
          f"{m['d_real']:.2f}  D(G(z)) {m['d_fake']:.2f}  acc real/fake "
          f"{m['d_acc_real']:.2f}/{m['d_acc_fake']:.2f}")
  known = {"d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake",
           "d_grad_norm", "g_grad_norm"}
  extra = "  ".join(f"{k} {v:.4g}" for k, v in sorted(m.items())
                    if k not in known)
  return f"{line}  {extra}" if extra else line


def live_generator(state: GANState) -> GANState:
  """The state sampling from G's live weights and running statistics, even
  if it keeps an EMA (to compare the two at equal steps)."""
  return state.replace(g=state.g.replace(ema_params=None))


FAMILY = Family(
    name="gan",
    config=GANConfig,
    init=init,
    train_step=steps.train_step,
    predict={"preview": preview, "generate": generate, "latents": latents,
             "decode": decode, "features": features, "sampler": sampler,
             "classes": lambda state: requestable_classes(state.game)},
    batches_per_step=lambda config: config.d_steps,
    prepare_data=prepare_data,
    describe_metrics=describe_metrics,
    eval_metrics=("fd", "score"),
    presets=PRESETS,
    views={"live": live_generator},
)
