"""Training state: a pytree per player, and the pair of them.

`GANState` is everything a run needs to continue: both players' params,
optimizer states and BatchNorm statistics, G's EMA params if the run keeps
them, the step, and the base PRNG key.
Per-step randomness is derived as `fold_in(rng, step)` inside the step, so a
run restored from a checkpoint replays exactly what an uninterrupted run does.
"""

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state

from gan_jax import family, losses, models, regularizers
from gan_jax.models import conditioning
from gan_jax.regularizers import Regularizer

if TYPE_CHECKING:
  from gan_jax.families.gan import GANConfig  # pylint: disable=g-bad-import-order


@dataclasses.dataclass(frozen=True)
class Game:
  """The static rules both players share: networks, loss and schedule.

  Hashable, so it lives in the states' static (non-pytree) fields and jit
  treats it as part of the program rather than as data.
  """
  generator: nn.Module
  discriminator: nn.Module
  # A key of gan_jax.losses.LOSSES, or your own losses.GANLoss.
  loss: Union[str, losses.GANLoss] = "non_saturating"
  latent_dim: int = 100
  d_steps: int = 1  # Discriminator updates per generator update.
  ema_decay: float = 0.0  # Of G's EMA params; 0: no EMA.
  # Penalties on D, each with its interval (gan_jax.regularizers).
  d_regularizers: Tuple[Regularizer, ...] = ()
  # Caps the EMA's half-life at this fraction of G's steps so far; 0: off.
  # (Last: fields are only ever appended, for positional callers.)
  ema_rampup: float = 0.0
  # > 0: class-conditional networks; steps and sampling take labels [B].
  num_classes: int = 0
  # Transforms every image D sees, real or fake (DiffAugment): a policy of
  # gan_jax.augmentations ("color,translation,cutout") or your own
  # (key, images) -> images; "": none.
  augment: Union[str, Callable[[jax.Array, jax.Array], jax.Array]] = ""
  # ACGAN (Odena et al. 2017): the weight of the cross-entropy of D's
  # auxiliary classifier in both players' losses; 0: no auxiliary loss.
  class_loss_weight: float = 0.0
  # Frequencies [num_classes] at which G draws its own classes when asked
  # for none (conditioning on clusters, not labels: models.conditioning.
  # DrawnClasses); empty: classes are requested, as for labels.
  class_frequencies: Tuple[float, ...] = ()


class PlayerState(train_state.TrainState):
  """One player: step, params, optimizer state and BatchNorm statistics.

  `apply_fn` is the player's own `module.apply`; `game` names its opponent.
  """
  batch_stats: Any = struct.field(default_factory=dict)
  # The generator's exponential moving average of params (None: no EMA);
  # sampling and evaluation use it when present.
  ema_params: Any = None
  game: Game = struct.field(pytree_node=False, default=None)

  def variables(self, params=None):
    """The flax variables dict, optionally with other params."""
    return {"params": self.params if params is None else params,
            "batch_stats": self.batch_stats}


@struct.dataclass
class GANState:
  g: PlayerState
  d: PlayerState
  step: jax.Array  # int32 [], generator updates so far.
  rng: jax.Array  # uint32 [2], base key data; see `step_key`.

  @property
  def game(self) -> Game:
    return self.g.game


step_key = family.step_key  # fold_in(rng, step); kept here for 0.1's users.


def make_game(config: "GANConfig", image_shape: Tuple[int, int, int],
              num_classes: int = 0,
              class_frequencies: Tuple[float, ...] = ()) -> Game:
  """The networks (the config's own modules if it passes them), loss and
  schedule of `config` for images of `image_shape`; class-conditional
  networks of `num_classes` if > 0, whose G draws its own classes at
  `class_frequencies` [num_classes] if given (clusters)."""
  conditional = {"num_classes": num_classes} if num_classes else {}
  generator, discriminator = models.create(
      config.arch, image_shape=tuple(image_shape),
      dtype=jnp.dtype(config.dtype), param_dtype=jnp.float32, **conditional)
  generator = config.generator or generator
  if class_frequencies:
    generator = conditioning.DrawnClasses(generator, tuple(class_frequencies))
  discriminator = config.discriminator or discriminator
  if config.spectral_norm:
    discriminator = models.with_spectral_norm(discriminator)
  acgan = bool(num_classes) and config.class_head == "acgan"
  if acgan:
    discriminator = models.with_class_head(discriminator, "acgan")
  return Game(generator, discriminator, loss=config.loss,
              latent_dim=config.latent_dim, d_steps=config.d_steps,
              ema_decay=config.g_ema_decay, ema_rampup=config.g_ema_rampup,
              d_regularizers=config.all_d_regularizers(),
              num_classes=num_classes, augment=config.diffaugment,
              class_loss_weight=config.acgan_weight if acgan else 0.0,
              class_frequencies=tuple(class_frequencies))


def make_optimizer(config: "GANConfig", regularizers_of_player=(),
                   player: str = "d") -> optax.GradientTransformation:
  """Adam of `player` ("g" or "d", with its own lr and betas if set);
  lr and betas scaled for its lazy regularisers; lr decayed over
  config.lr_decay_steps G steps if set."""
  lr, b1, b2 = config.optimizer_settings(player)
  if config.lr_decay_steps:
    # The schedule counts the player's optimizer updates: D makes d_steps
    # per G step, plus one per lazy penalty that is due.
    updates = config.lr_decay_steps
    if player == "d":
      updates = round(updates * config.d_steps
                      / regularizers.lazy_scale(regularizers_of_player))
    lr = optax.cosine_decay_schedule(lr, updates)
  return regularizers.adam(lr, b1, b2, regularizers_of_player)


def create_state(config: "GANConfig", image_shape: Tuple[int, int, int],
                 rng: jax.Array | None = None, *, num_classes: int = 0,
                 class_frequencies: Tuple[float, ...] = ()) -> GANState:
  """Initialises both players for images of `image_shape` (H, W, C), with
  class-conditional networks if `num_classes` > 0 (see `make_game` for
  `class_frequencies`).

  `rng` defaults to jax.random.key(0), the key 0.1's default seed gave.
  """
  game = make_game(config, image_shape, num_classes, class_frequencies)
  if rng is None:
    rng = jax.random.key(0)
  g_key, d_key, run_key = jax.random.split(rng, 3)
  z = jnp.zeros((1, game.latent_dim), jnp.float32)
  images = jnp.zeros((1,) + tuple(image_shape), jnp.float32)
  labels = {"labels": jnp.zeros((1,), jnp.int32)} if num_classes else {}
  g_vars = game.generator.init(g_key, z, train=False, **labels)
  d_vars = game.discriminator.init(d_key, images, train=False, **labels)

  def player(name, module, variables, regularizers_of_player=()):
    return PlayerState.create(
        apply_fn=module.apply, params=variables["params"],
        tx=make_optimizer(config, regularizers_of_player, name),
        batch_stats=variables.get("batch_stats", {}), game=game)

  g = player("g", game.generator, g_vars)
  if game.ema_decay:
    # A copy: donating the state must not hand XLA one buffer twice.
    g = g.replace(ema_params=jax.tree.map(jnp.copy, g.params))
  return GANState(g=g,
                  d=player("d", game.discriminator, d_vars,
                           game.d_regularizers),
                  step=jnp.zeros((), jnp.int32),
                  rng=jax.random.key_data(run_key))
