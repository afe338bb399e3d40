"""The update steps: the public API of gan_jax.

Pure functions of explicit state and PRNG keys, returning (new_state, metrics).
Nothing here is jitted, reads globals or touches the host, so you can jit,
shard, vmap or compose them in your own code:

    d_step = jax.jit(steps.d_step, donate_argnums=0)
    g_step = jax.jit(steps.g_step, donate_argnums=0,
                     static_argnames="batch_size")
    train_step = jax.jit(steps.train_step, donate_argnums=0)

    state = gan_jax.state.create_state(config, image_shape=(28, 28, 1))
    state, metrics = train_step(state, {"image": images})  # [B, 28, 28, 1]

Randomness: one key per call. `d_step` and `g_step` called with the same key
draw the same latents z, which is what `train_step` does for its last
discriminator update and the generator update (as in the PyTorch DCGAN
example), so it runs the generator forward pass once and reuses it for the
generator's gradient through `jax.vjp`.

Metrics (all float32 scalars):
  d_loss, g_loss: the two players' losses.
  d_real, d_fake: mean sigmoid(D) on real and generated images.
  d_acc_real, d_acc_fake: share of real images D calls real, and of generated
    images D calls fake. Both near 0.5 is the "fooled half the time" state.
  d_grad_norm, g_grad_norm: global L2 norm of each player's gradient.
"""

from typing import Any, Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

from gan_jax import augmentations, losses
from gan_jax.family import step_key
from gan_jax.models.conditioning import CLASS_LOGITS
from gan_jax.state import Game, GANState, PlayerState

# fold_in index of the augmentation's key within a D pass's key.
AUGMENT_STREAM = 7919

Array = jax.Array
Metrics = Dict[str, Array]


def _stream_keys(key: Array) -> Tuple[Array, Array, Array]:
  """Named streams of one step key: latents, D's dropout in each step."""
  z_key, d_step_key, g_step_key = jax.random.split(key, 3)
  return z_key, d_step_key, g_step_key


def global_norm(tree) -> Array:
  """L2 norm of all leaves, as dot products (XLA:CPU runs them faster)."""
  return jnp.sqrt(sum(jnp.vdot(leaf.ravel(), leaf.ravel()).astype(jnp.float32)
                      for leaf in jax.tree.leaves(tree)))


def sample_latents(key: Array, batch_size: int, latent_dim: int,
                   like: Array | None = None) -> Array:
  """z ~ N(0, I), float32 [batch_size, latent_dim].

  If `like` (e.g. the real batch) is sharded over its batch axis on an
  explicit-sharding mesh, z is sharded the same way, so the generator runs
  data-parallel too. The values do not depend on the sharding.
  """
  shape = (batch_size, latent_dim)
  sharding = None if like is None else jax.typeof(like).sharding
  spec = getattr(sharding, "spec", None)
  if not spec or spec[0] is None:
    return jax.random.normal(key, shape, jnp.float32)
  return jax.random.normal(key, shape, jnp.float32, out_sharding=NamedSharding(
      sharding.mesh, PartitionSpec(spec[0], None)))


def labels_kwarg(labels: Array | None) -> Dict[str, Array]:
  """The networks' keyword for labels [B]: none for unconditional games, so
  your own unconditional modules need no `labels` argument."""
  return {} if labels is None else {"labels": labels}


def _generate_train_mode(g_state: PlayerState, g_params, z: Array,
                         labels: Array | None = None):
  """G(z) with batch statistics; returns (images, updated batch_stats)."""
  images, updates = g_state.apply_fn(
      g_state.variables(g_params), z, train=True, mutable=["batch_stats"],
      **labels_kwarg(labels))
  return images, updates.get("batch_stats", g_state.batch_stats)


def _generate_with_vjp(g_state: PlayerState, z: Array,
                       labels: Array | None = None):
  """G(z) in train mode, its VJP w.r.t. G's params, and new batch_stats."""
  return jax.vjp(
      lambda params: _generate_train_mode(g_state, params, z, labels),
      g_state.params, has_aux=True)


def _discriminate(game: Game, variables, images: Array, key: Array,
                  labels: Array | None = None):
  """Train-mode D(augment(images)); returns (logits [B] float32, new
  batch_stats, class logits [B, K] of an ACGAN head or None). The
  augmentation (if any) draws from its own stream of `key`, so D's dropout
  is the same with and without it."""
  if game.augment:
    images = augmentations.resolve(game.augment)(
        jax.random.fold_in(key, AUGMENT_STREAM), images)
  logits, updates = game.discriminator.apply(
      variables, images, train=True, mutable=["batch_stats", "intermediates"],
      rngs={"dropout": key}, **labels_kwarg(labels))
  class_logits = updates.get("intermediates", {}).get(CLASS_LOGITS)
  return (logits, updates.get("batch_stats", {}),
          None if class_logits is None else class_logits[-1])


def class_loss(game: Game, class_logits: Array | None,
               labels: Array | None) -> Array:
  """ACGAN's auxiliary loss: game.class_loss_weight x mean cross-entropy of
  D's class logits [B, K] for `labels` [B] (float32; 0 without a head)."""
  if not game.class_loss_weight or class_logits is None:
    return jnp.zeros((), jnp.float32)
  return game.class_loss_weight * jnp.mean(
      optax.softmax_cross_entropy_with_integer_labels(
          class_logits.astype(jnp.float32), labels))


def _penalty(regularizer, d_state: PlayerState, params, real_images: Array,
             fake_images: Array, key: Array,
             labels: Array | None = None) -> Array:
  """A regulariser's unweighted penalty on D with `params` (train mode; the
  running statistics of its passes are dropped). Real and fake images share
  `labels`, so interpolates between them keep their class too."""
  d_key, penalty_key = jax.random.split(key)
  variables = {"params": params, "batch_stats": d_state.batch_stats}
  discriminate = lambda images: _discriminate(d_state.game, variables, images,
                                              d_key, labels)[0]
  return regularizer.penalty(discriminate, real_images, fake_images,
                             penalty_key).astype(jnp.float32)


def _lazy_regularization(d_state: PlayerState, step: Array, real_images,
                         fake_images, key: Array, labels: Array | None = None):
  """The separate updates of D's lazy regularisers due at D step `step`.

  Each runs where `step` divides by its interval c, with its loss times c
  (StyleGAN2); `step` (D's count of main updates) is left as it is.
  """
  metrics = {}
  for i, regularizer in enumerate(d_state.game.d_regularizers):
    if regularizer.interval == 1:
      continue
    reg_key = jax.random.fold_in(key, i)

    def update(state, regularizer=regularizer, reg_key=reg_key):
      def loss_fn(params):
        return _penalty(regularizer, state, params, real_images, fake_images,
                        reg_key, labels)
      penalty, grads = jax.value_and_grad(loss_fn)(state.params)
      grads = jax.tree.map(
          lambda g: g * (regularizer.weight * regularizer.interval), grads)
      updates, opt_state = state.tx.update(grads, state.opt_state,
                                           state.params)
      return state.replace(params=optax.apply_updates(state.params, updates),
                           opt_state=opt_state), penalty

    def skip(state):
      return state, jnp.zeros((), jnp.float32)

    d_state, metrics[regularizer.name] = jax.lax.cond(
        step % regularizer.interval == 0, update, skip, d_state)
  return d_state, metrics


def _update_discriminator(d_state: PlayerState, real_images: Array,
                          fake_images: Array, key: Array,
                          labels: Array | None = None):
  """One optimizer step of D on real images and (constant) fakes, both of
  class `labels` if conditional, then the separate updates of its lazy
  regularisers that are due."""
  game = d_state.game
  gan_loss = losses.resolve(game.loss)
  real_key, fake_key = jax.random.split(key)
  fake_images = jax.lax.stop_gradient(fake_images)
  eager = [r for r in game.d_regularizers if r.interval == 1]

  def loss_fn(params):
    # Separate real and fake batches, so BatchNorm never mixes them (DCGAN);
    # both passes update the running statistics, as in PyTorch.
    real_logits, batch_stats, real_classes = _discriminate(
        game, {"params": params, "batch_stats": d_state.batch_stats},
        real_images, real_key, labels)
    fake_logits, batch_stats, fake_classes = _discriminate(
        game, {"params": params, "batch_stats": batch_stats},
        fake_images, fake_key, labels)
    loss = gan_loss.d_loss(real_logits, fake_logits)
    # ACGAN: D classifies real and generated images alike (Odena et al.).
    terms = {}
    if game.class_loss_weight:
      terms["d_class_loss"] = (class_loss(game, real_classes, labels)
                               + class_loss(game, fake_classes, labels))
      terms["d_class_acc_real"] = jnp.mean(
          (jnp.argmax(real_classes, -1) == labels).astype(jnp.float32))
      loss = loss + terms["d_class_loss"]
    for i, regularizer in enumerate(eager):
      terms[regularizer.name] = _penalty(
          regularizer, d_state, params, real_images, fake_images,
          jax.random.fold_in(key, 1000 + i), labels)
      loss = loss + regularizer.weight * terms[regularizer.name]
    return loss, (real_logits, fake_logits, batch_stats, terms)

  (loss, (real_logits, fake_logits, batch_stats, terms)), grads = (
      jax.value_and_grad(loss_fn, has_aux=True)(d_state.params))
  new_state = d_state.apply_gradients(grads=grads, batch_stats=batch_stats)
  if len(eager) < len(game.d_regularizers):
    new_state, lazy_terms = _lazy_regularization(
        new_state, d_state.step, real_images, fake_images,
        jax.random.fold_in(key, 2000), labels)
    terms.update(lazy_terms)
  metrics = {**terms,
      "d_loss": loss,
      "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
      "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
      "d_acc_real": jnp.mean((real_logits > 0).astype(jnp.float32)),
      "d_acc_fake": jnp.mean((fake_logits < 0).astype(jnp.float32)),
      "d_grad_norm": global_norm(grads),
  }
  return new_state, metrics


def _update_generator(g_state: PlayerState, d_variables, fake_images: Array,
                      pullback: Callable[[Array], Any], g_batch_stats,
                      key: Array, real_images: Array | None = None,
                      labels: Array | None = None):
  """One optimizer step of G, given its forward pass `fake_images` (of class
  `labels` if conditional) and VJP.

  D runs in train mode (batch statistics, dropout, one power iteration of
  spectral norm) as in its own step; none of its statistics are kept. A loss
  with `g_uses_real` also gets D's logits on `real_images` (no gradient).
  """
  game = g_state.game
  gan_loss = losses.resolve(game.loss)
  if gan_loss.g_uses_real:
    if real_images is None:
      raise ValueError("This loss's generator term needs the real batch: "
                       "pass g_step(..., real_images=...).")
    real_logits = jax.lax.stop_gradient(_discriminate(
        game, d_variables, real_images, jax.random.fold_in(key, 1),
        labels)[0])
    g_loss = lambda logits: gan_loss.g_loss(logits, real_logits)
  else:
    g_loss = gan_loss.g_loss

  def loss_of_images(images):
    logits, _, class_logits = _discriminate(game, d_variables, images, key,
                                            labels)
    adversarial = g_loss(logits)
    # ACGAN: G also makes D classify its images as the classes asked for.
    classes = class_loss(game, class_logits, labels)
    return adversarial + classes, (adversarial, classes)

  (_, (loss, classes)), image_grads = jax.value_and_grad(
      loss_of_images, has_aux=True)(fake_images)
  (grads,) = pullback(image_grads.astype(fake_images.dtype))
  new_state = g_state.apply_gradients(grads=grads, batch_stats=g_batch_stats)
  if game.ema_decay:
    decay = ema_decay_at(game, new_state.step)
    new_state = new_state.replace(ema_params=optax.incremental_update(
        new_state.params, g_state.ema_params, step_size=1.0 - decay))
  metrics = {"g_loss": loss, "g_grad_norm": global_norm(grads)}
  if game.class_loss_weight:
    metrics["g_class_loss"] = classes
  return new_state, metrics


def ema_decay_at(game: Game, num_updates: Array) -> Array:
  """The decay of G's EMA at its `num_updates`-th update (int32 []).

  game.ema_decay, or with game.ema_rampup = r the StyleGAN2-ADA ramp: a
  half-life of at most r * num_updates steps, i.e. min(ema_decay,
  0.5 ** (1 / (r * num_updates))).
  """
  decay = jnp.asarray(game.ema_decay, jnp.float32)
  if not game.ema_rampup:
    return decay
  half_life = game.ema_rampup * num_updates.astype(jnp.float32)
  return jnp.minimum(decay, 0.5 ** (1.0 / jnp.maximum(half_life, 1e-8)))


def _checked_labels(game: Game, labels: Array | None, batch_size: int
                    ) -> Array | None:
  """`labels` for a conditional game (ValueError if missing or misshapen);
  None for an unconditional one, which ignores them."""
  if not game.num_classes:
    return None
  if labels is None or labels.shape != (batch_size,):
    got = None if labels is None else labels.shape
    raise ValueError(f"A conditional game (num_classes={game.num_classes}) "
                     f"needs labels of shape ({batch_size},), got {got}.")
  return labels


def d_step(d_state: PlayerState, g_params, real_images: Array,
           key: Array, *, labels: Array | None = None
           ) -> Tuple[PlayerState, Metrics]:
  """One discriminator update against the generator `g_params`.

  Args:
    d_state: the discriminator's state (its `game` names the generator).
    g_params: the generator's params (its BatchNorm runs in train mode).
    real_images: float [B, H, W, C] in [-1, 1].
    key: PRNG key; draws B latents and D's dropout.
    labels: int32 [B], the real images' classes, needed by conditional
      games (game.num_classes > 0); the fakes are drawn for the same ones.

  Returns:
    (new d_state, metrics: d_loss, d_real, d_fake, d_acc_*, d_grad_norm).
  """
  game = d_state.game
  z_key, d_key, _ = _stream_keys(key)
  z = sample_latents(z_key, real_images.shape[0], game.latent_dim,
                     like=real_images)
  # Train-mode G; its running statistics are updated by its own step only.
  labels = _checked_labels(game, labels, real_images.shape[0])
  fake_images, _ = game.generator.apply(
      {"params": g_params}, z, train=True, mutable=["batch_stats"],
      **labels_kwarg(labels))
  return _update_discriminator(d_state, real_images, fake_images, d_key,
                               labels)


def g_step(g_state: PlayerState, d_params, key: Array, *, batch_size: int,
           d_batch_stats=None, real_images: Array | None = None,
           labels: Array | None = None) -> Tuple[PlayerState, Metrics]:
  """One generator update against the discriminator `d_params`.

  Args:
    g_state: the generator's state (its `game` names the discriminator).
    d_params: the discriminator's params (it runs in train mode; its
      statistics are not updated by the generator's step).
    key: PRNG key; the same key as a `d_step` draws the same latents.
    batch_size: number of latents B (static under jit).
    d_batch_stats: the discriminator's `batch_stats`; needed when it has
      spectral norm (its u vectors live there).
    real_images: float [B, H, W, C]; needed by losses with `g_uses_real`
      (relativistic ones).
    labels: int32 [B], the classes to draw, needed by conditional games
      (and, with `real_images`, those images' classes).

  Returns:
    (new g_state, metrics: g_loss, g_grad_norm).
  """
  z_key, _, g_key = _stream_keys(key)
  z = sample_latents(z_key, batch_size, g_state.game.latent_dim)
  labels = _checked_labels(g_state.game, labels, batch_size)
  fake_images, pullback, batch_stats = _generate_with_vjp(g_state, z, labels)
  d_variables = {"params": d_params, "batch_stats": d_batch_stats or {}}
  return _update_generator(g_state, d_variables, fake_images, pullback,
                           batch_stats, g_key, real_images, labels)


def train_step(state: GANState, batch: Dict[str, Array]
               ) -> Tuple[GANState, Metrics]:
  """`game.d_steps` discriminator updates, then one generator update.

  Args:
    state: both players, the step and the base key.
    batch: {"image": float [B, H, W, C] in [-1, 1]}, or [d_steps, B, H, W, C]
      to give each discriminator update its own real batch; and, for a
      conditional game, {"label": int32 [B] (or [d_steps, B])}: the fakes
      of each update are drawn for the classes of its real batch, so both
      sides show D the same classes. Unconditional games ignore "label".

  Returns:
    (new state, metrics of the last D update and of the G update).
  """
  game = state.game
  images = batch["image"]
  real_batches = images if images.ndim == 5 else [images] * game.d_steps
  if len(real_batches) != game.d_steps:
    raise ValueError(f"batch['image'] has {len(real_batches)} real batches "
                     f"for d_steps={game.d_steps}.")
  key = step_key(state.rng, state.step)
  label_batches = [None] * game.d_steps
  if game.num_classes:
    labels = batch["label"]
    label_batches = labels if labels.ndim == 2 else [labels] * game.d_steps
  d_state = state.d
  for i in range(game.d_steps - 1):
    d_state, _ = d_step(d_state, state.g.params, real_batches[i],
                        jax.random.fold_in(key, i), labels=label_batches[i])

  # Last D step and the G step share z, so G's forward pass runs once.
  z_key, d_key, g_key = _stream_keys(
      jax.random.fold_in(key, game.d_steps - 1))
  z = sample_latents(z_key, real_batches[-1].shape[0], game.latent_dim,
                     like=real_batches[-1])
  fake_images, pullback, g_batch_stats = _generate_with_vjp(
      state.g, z, label_batches[-1])
  d_state, d_metrics = _update_discriminator(
      d_state, real_batches[-1], fake_images, d_key, label_batches[-1])
  g_state, g_metrics = _update_generator(
      state.g, d_state.variables(), fake_images, pullback, g_batch_stats,
      g_key, real_batches[-1], label_batches[-1])
  new_state = state.replace(g=g_state, d=d_state, step=state.step + 1)
  return new_state, {**d_metrics, **g_metrics}
