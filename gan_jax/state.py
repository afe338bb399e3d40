"""Training state: a pytree per player, and the pair of them.

`GANState` is everything a run needs to continue: both players' params,
optimizer states and BatchNorm statistics, G's EMA params if the run keeps
them, the step, and the base PRNG key.
Per-step randomness is derived as `fold_in(rng, step)` inside the step, so a
run restored from a checkpoint replays exactly what an uninterrupted run does.
"""

import dataclasses
from typing import Any, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state

from gan_jax import models
from gan_jax.config import GANConfig


@dataclasses.dataclass(frozen=True)
class Game:
  """The static rules both players share: networks, loss and schedule.

  Hashable, so it lives in the states' static (non-pytree) fields and jit
  treats it as part of the program rather than as data.
  """
  generator: nn.Module
  discriminator: nn.Module
  loss: str = "non_saturating"  # A key of gan_jax.losses.LOSSES.
  latent_dim: int = 100
  d_steps: int = 1  # Discriminator updates per generator update.
  ema_decay: float = 0.0  # Of G's EMA params; 0: no EMA.


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


def step_key(rng: jax.Array, step: jax.Array) -> jax.Array:
  """The PRNG key of one training step: fold_in(rng, step)."""
  return jax.random.fold_in(jax.random.wrap_key_data(rng), step)


def make_game(config: GANConfig, image_shape: Tuple[int, int, int]) -> Game:
  generator, discriminator = models.create(
      config.arch, image_shape=tuple(image_shape),
      dtype=jnp.dtype(config.dtype), param_dtype=jnp.float32)
  return Game(generator, discriminator, loss=config.loss,
              latent_dim=config.latent_dim, d_steps=config.d_steps,
              ema_decay=config.g_ema_decay)


def make_optimizer(config: GANConfig) -> optax.GradientTransformation:
  return optax.adam(config.lr, b1=config.b1, b2=config.b2)


def create_state(config: GANConfig, image_shape: Tuple[int, int, int],
                 rng: jax.Array | None = None) -> GANState:
  """Initialises both players for images of `image_shape` (H, W, C)."""
  game = make_game(config, image_shape)
  if rng is None:
    rng = jax.random.key(config.seed)
  g_key, d_key, run_key = jax.random.split(rng, 3)
  z = jnp.zeros((1, game.latent_dim), jnp.float32)
  images = jnp.zeros((1,) + tuple(image_shape), jnp.float32)
  g_vars = game.generator.init(g_key, z, train=False)
  d_vars = game.discriminator.init(d_key, images, train=False)

  def player(module, variables):
    return PlayerState.create(
        apply_fn=module.apply, params=variables["params"],
        tx=make_optimizer(config), batch_stats=variables.get("batch_stats", {}),
        game=game)

  g = player(game.generator, g_vars)
  if game.ema_decay:
    # A copy: donating the state must not hand XLA one buffer twice.
    g = g.replace(ema_params=jax.tree.map(jnp.copy, g.params))
  return GANState(g=g,
                  d=player(game.discriminator, d_vars),
                  step=jnp.zeros((), jnp.int32),
                  rng=jax.random.key_data(run_key))
