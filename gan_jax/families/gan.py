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
from typing import Mapping, Optional, Tuple, Union

import flax.linen as nn
import jax

from gan_jax import losses, models, steps
from gan_jax.config import MAX_LATENT_DIM, Config, setting
from gan_jax.errors import ConfigError
from gan_jax.family import DataSpec, Family, Preset
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
  lr: float = setting(2e-4, "Adam learning rate of both players.",
                      group="optimisation")
  b1: float = setting(0.5, "Adam beta1 of both players.", group="optimisation")
  b2: float = setting(0.999, "Adam beta2 of both players.",
                      group="optimisation")
  d_steps: int = setting(1, "Discriminator updates per generator update, "
                         "each on its own real batch.", group="optimisation")
  g_ema_decay: float = setting(
      0.0, "Keep an exponential moving average of G's params with this decay "
      "(e.g. 0.999) and sample from it; 0: none.", group="optimisation")
  # Your own parts, passed in code (no flags).
  generator: Optional[nn.Module] = setting(
      None, "A flax module to use as G instead of arch's.", group="model",
      flag=False)
  discriminator: Optional[nn.Module] = setting(
      None, "A flax module to use as D instead of arch's.", group="model",
      flag=False)
  d_regularizers: Tuple[Regularizer, ...] = setting(
      (), "Penalties on D (gan_jax.regularizers).", group="model", flag=False)

  def validate(self) -> "GANConfig":
    """Raises ConfigError naming the offending field (= flag) and the fix."""
    self.positive("lr", "latent_dim", "d_steps")
    self.at_most(MAX_LATENT_DIM, "latent_dim")
    self.in_unit_interval("b1", "b2", "g_ema_decay")
    self.check_choices()
    if not isinstance(self.loss, (str, losses.GANLoss)):
      raise ConfigError("loss must name one of gan_jax.losses.LOSSES or be a "
                        f"losses.GANLoss, got {type(self.loss).__name__}.")
    for name in ("generator", "discriminator"):
      if not isinstance(getattr(self, name), (type(None), nn.Module)):
        raise ConfigError(f"{name} must be a flax.linen.Module instance.")
    return self


def init(config: GANConfig, data_spec: DataSpec, key: Array) -> GANState:
  """Both players for `data_spec`'s images (`state.create_state`)."""
  return create_state(config, data_spec.image_shape, rng=key)


def generate_images(g_state: PlayerState, z: Array) -> Array:
  """Eval-mode G(z) (running BatchNorm statistics): [B, H, W, C] in [-1, 1].

  Uses G's EMA params when the run keeps them (g_ema_decay).
  """
  return g_state.apply_fn(g_state.variables(g_state.ema_params), z,
                          train=False)


def latents(state: GANState, key: Array, num: int) -> Array:
  """z ~ N(0, I), float32 [num, latent_dim]."""
  return steps.sample_latents(key, num, state.game.latent_dim)


def decode(state: GANState, z: Array) -> Array:
  return generate_images(state.g, z)


def generate(state: GANState, key: Array, num: int) -> Array:
  return decode(state, latents(state, key, num))


def preview(state: GANState, key: Array, images: Array) -> Mapping[str, Array]:
  """Samples for the grid: as many as `images`, from latents of `key`."""
  return {"samples": generate(state, key, images.shape[0])}


def describe_metrics(m: Mapping[str, float]) -> str:
  line = (f"d_loss {m['d_loss']:.3f}  g_loss {m['g_loss']:.3f}  D(x) "
          f"{m['d_real']:.2f}  D(G(z)) {m['d_fake']:.2f}  acc real/fake "
          f"{m['d_acc_real']:.2f}/{m['d_acc_fake']:.2f}")
  known = {"d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake",
           "d_grad_norm", "g_grad_norm"}
  extra = "  ".join(f"{k} {v:.4g}" for k, v in sorted(m.items())
                    if k not in known)
  return f"{line}  {extra}" if extra else line


PRESETS = {
    "dcgan_mnist": Preset(
        doc="""The default: DCGAN, non-saturating loss, Adam 2e-4/0.5, batch
        64, 10k steps. `python -m experiments.mnist_gan --preset=dcgan_mnist`.
        About 12 minutes on a 2-core Xeon (14 on an AMD EPYC); FD 36.05
        (36.30 on the EPYC) on real Fashion-MNIST
        (README, "Quality benchmark")."""),
    "tiny": Preset(
        doc="Test-sized networks: a few seconds a run, for tests and smoke "
        "runs; the samples mean nothing.",
        run=dict(batch_size=8, num_grid_samples=4),
        model=dict(arch="dcgan_tiny", latent_dim=8)),
}

FAMILY = Family(
    name="gan",
    config=GANConfig,
    init=init,
    train_step=steps.train_step,
    predict={"preview": preview, "generate": generate, "latents": latents,
             "decode": decode},
    batches_per_step=lambda config: config.d_steps,
    describe_metrics=describe_metrics,
    eval_metrics=("fd", "score"),
    presets=PRESETS,
)
