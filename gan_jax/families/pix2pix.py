"""The pix2pix family (Isola et al. 2017): paired image-to-image translation.

    from gan_jax.families import pix2pix
    state = pix2pix.FAMILY.init(pix2pix.Pix2PixConfig(task="denoise"),
                                DataSpec((28, 28, 1)), key)
    state, metrics = jax.jit(pix2pix.train_step, donate_argnums=0)(state, batch)

Each step makes its (source, target) pairs from the batch's real images
(gan_jax.pairs): with a corruption task the targets are the images and the
sources them corrupted with the task's seeded corruption
(gan_jax.corruptions) and a key folded from the step, so a resumed run sees
the same pairs; with task "aligned" each image holds source | target side
by side (pix2pix's own datasets, and users' paired folders). G is a U-Net,
D a PatchGAN that sees (source, image) (gan_jax.models.translation).

One step, as the authors' code does it: G translates the sources once
(train mode: batch statistics, dropout); D takes an Adam step on
[BCE(D(s, t), 1) + BCE(D(s, G(s)), 0)] / 2, the paper's halved objective;
then G takes one on BCE(D'(s, G(s)), 1) + l1_weight * |G(s) - t|_1 through
the updated D', reusing the translation by its VJP. `adversarial=False` is
the paper's L1-only ablation: no D step, G on the L1 term alone.

Metrics (float32, batch means): d_loss, d_real, d_fake (D's mean
probabilities), g_adv, g_l1 (mean absolute error in [-1, 1] units), g_loss.
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from gan_jax import data, pairs as pairs_lib, sampling
from gan_jax.config import Config, setting
from gan_jax.family import DataSpec, Family, HeldOutPairs, Preset, step_key
from gan_jax.models import translation
from gan_jax.pairs import Pairing
from gan_jax.state import PlayerState

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Pix2PixConfig(Config):
  """pix2pix's model: task, networks, objective and optimizer."""

  task: Union[str, Any] = setting(
      "denoise", "Which corruption makes the sources from the real images; "
      "aligned: each image is source | target side by side (your own "
      "pairs).", choices=sorted(pairs_lib.PAIRINGS), group="model")
  features: int = setting(64, "Channels of the U-Net's and PatchGAN's first "
                          "layer (the paper's 64).", group="model")
  num_downs: int = setting(0, "U-Net halvings; 0: down to 1x1 (the "
                           "paper's).", group="model")
  l1_weight: float = setting(100.0, "Weight of the L1 term (the paper's "
                             "lambda).", group="optimisation")
  adversarial: bool = setting(
      True, "Train against the PatchGAN; --noadversarial is the paper's "
      "L1-only ablation.", group="optimisation")
  lr: float = setting(2e-4, "Adam learning rate of both players.",
                      group="optimisation")
  b1: float = setting(0.5, "Adam beta1.", group="optimisation")
  b2: float = setting(0.999, "Adam beta2.", group="optimisation")
  dtype: str = setting("float32", "Compute dtype; params and losses stay "
                       "float32.", choices=("float32", "bfloat16"),
                       group="model")

  def validate(self) -> "Pix2PixConfig":
    self.positive("lr", "features")
    self.non_negative("num_downs", "l1_weight")
    self.in_unit_interval("b1", "b2")
    self.check_choices()
    return self


@dataclasses.dataclass(frozen=True)
class Pix2PixSpec:
  """The static part of the state: networks, task, objective."""
  generator: Any
  discriminator: Any
  pairing: Pairing
  l1_weight: float
  adversarial: bool


@struct.dataclass
class Pix2PixState:
  g: PlayerState
  d: PlayerState
  step: Array  # int32 [], updates so far.
  rng: Array  # uint32 [2]; per-step keys are fold_in(., step).
  spec: Pix2PixSpec = struct.field(pytree_node=False)


def init(config: Pix2PixConfig, data_spec: DataSpec,
         key: Array) -> Pix2PixState:
  """U-Net, PatchGAN and their Adam states for images of `data_spec`."""
  pairing = pairs_lib.get(config.task)
  source_shape, target_shape = pairing.shapes(tuple(data_spec.image_shape))
  generator, discriminator = translation.create(
      target_shape, features=config.features, num_downs=config.num_downs,
      dtype=jnp.dtype(config.dtype))
  g_key, d_key, run_key = jax.random.split(key, 3)
  source = jnp.zeros((1,) + source_shape)
  image = jnp.zeros((1,) + target_shape)
  optimizer = optax.adam(config.lr, b1=config.b1, b2=config.b2)

  def player(module, variables):
    return PlayerState.create(apply_fn=module.apply,
                              params=variables["params"], tx=optimizer,
                              batch_stats=variables.get("batch_stats", {}))

  spec = Pix2PixSpec(generator, discriminator, pairing, config.l1_weight,
                     config.adversarial)
  return Pix2PixState(
      g=player(generator, generator.init(g_key, source, train=False)),
      d=player(discriminator, discriminator.init(d_key, source, image,
                                                 train=False)),
      step=jnp.zeros((), jnp.int32), rng=jax.random.key_data(run_key),
      spec=spec)


def _bce(logits: Array, real: bool) -> Array:
  """Mean binary cross-entropy of logits against all-real or all-fake."""
  logits = logits.astype(jnp.float32)
  return jnp.mean(jax.nn.softplus(-logits if real else logits))


def _discriminate(d: PlayerState, params, source: Array, image: Array,
                  key: Array):
  """Train-mode D(source, image): (patch logits, updated batch_stats)."""
  logits, updates = d.apply_fn({"params": params, "batch_stats":
                                d.batch_stats}, source, image, train=True,
                               mutable=["batch_stats"], rngs={"dropout": key})
  return logits, updates["batch_stats"]


def _update(player: PlayerState, grads, batch_stats) -> PlayerState:
  return player.apply_gradients(grads=grads).replace(batch_stats=batch_stats)


def train_step(state: Pix2PixState, batch: Dict[str, Array]
               ) -> "tuple[Pix2PixState, Dict[str, Array]]":
  """One D and one G update on the pairs made from the batch's images.

  Args:
    state: the pix2pix state.
    batch: {"image": float [B, H, W, C] in [-1, 1], ...}: the targets (or
      source | target side by side, task "aligned").

  Returns:
    (new state, metrics; see the module docstring).
  """
  spec, g, d = state.spec, state.g, state.d
  key = step_key(state.rng, state.step)
  task_key, g_key, d_key = jax.random.split(key, 3)
  source, target = spec.pairing.split(task_key,
                                      batch["image"].astype(jnp.float32))

  def translate(params):
    output, updates = g.apply_fn(
        {"params": params, "batch_stats": g.batch_stats}, source, train=True,
        mutable=["batch_stats"], rngs={"dropout": g_key})
    return output, updates["batch_stats"]

  output, g_vjp, g_stats = jax.vjp(translate, g.params, has_aux=True)
  metrics = {}
  if spec.adversarial:
    fake = jax.lax.stop_gradient(output)

    def d_loss_fn(params):
      real_logits, stats = _discriminate(d, params, source, target, d_key)
      fake_logits, stats = _discriminate(d.replace(batch_stats=stats),
                                         params, source, fake, d_key)
      loss = 0.5 * (_bce(real_logits, True) + _bce(fake_logits, False))
      return loss, (stats, real_logits, fake_logits)

    (d_loss, (d_stats, real_logits, fake_logits)), d_grads = (
        jax.value_and_grad(d_loss_fn, has_aux=True)(d.params))
    d = _update(d, d_grads, d_stats)
    metrics.update(
        d_loss=d_loss,
        d_real=jnp.mean(jax.nn.sigmoid(real_logits.astype(jnp.float32))),
        d_fake=jnp.mean(jax.nn.sigmoid(fake_logits.astype(jnp.float32))))

  def g_loss_fn(output):
    l1 = jnp.mean(jnp.abs(output - target))
    adversarial = jnp.zeros((), jnp.float32)
    if spec.adversarial:  # Through the updated D; its statistics unkept.
      adversarial = _bce(_discriminate(d, d.params, source, output,
                                       d_key)[0], True)
    return adversarial + spec.l1_weight * l1, (adversarial, l1)

  (g_loss, (g_adv, g_l1)), output_grad = jax.value_and_grad(
      g_loss_fn, has_aux=True)(output)
  g = _update(g, g_vjp(output_grad)[0], g_stats)
  metrics.update(g_loss=g_loss, g_adv=g_adv, g_l1=g_l1)
  return (state.replace(g=g, d=d, step=state.step + 1),
          {k: v.astype(jnp.float32) for k, v in metrics.items()})


# --- Predictions (gan_jax.family) --------------------------------------------


def translate(state: Pix2PixState, sources: Array) -> Array:
  """G(sources) in eval mode (running statistics, no dropout): images
  [N, H, W, C] in [-1, 1]."""
  return state.g.apply_fn(state.g.variables(), sources, train=False)


def preview(state: Pix2PixState, key: Array, images: Array,
            labels: Optional[Array] = None) -> Mapping[str, Array]:
  """Rows of source | output | target ([N, 3, H, W, C]) of the pairs made
  from real images with `key`; grey sources are shown in the targets'
  channels."""
  del labels
  source, target = state.spec.pairing.split(key, images)
  output = translate(state, source)
  shown = jnp.broadcast_to(source, target.shape)
  return {"translations": jnp.stack([shown, output, target], axis=1)}


def pairs(state: Pix2PixState, images, labels, seed: int) -> HeldOutPairs:
  """Held-out pairs of real images uint8 [N, H, W, C] (host side): example
  i's source made with fold_in(key(seed), i); its target is its truth."""
  sources, targets = state.spec.pairing.held_out(
      data.to_model_range(np.asarray(images)), seed)
  targets = sampling.to_uint8(targets)
  return HeldOutPairs(sources=np.asarray(sources, np.float32),
                      targets=targets, target_labels=np.asarray(labels),
                      truth=targets)


def describe_metrics(m: Mapping[str, float]) -> str:
  line = f"g_loss {m['g_loss']:.3f} (L1 {m['g_l1']:.4f}, adv {m['g_adv']:.3f})"
  if "d_loss" in m:
    line += (f"  d_loss {m['d_loss']:.3f}  D(s, t) {m['d_real']:.2f}  "
             f"D(s, G(s)) {m['d_fake']:.2f}")
  return line


PRESETS = {
    "tiny": Preset(
        doc="Test-sized networks (8 channels): seconds a run; the "
        "translations mean nothing.",
        run=dict(batch_size=8, num_grid_samples=4),
        model=dict(features=8, num_downs=2)),
}

FAMILY = Family(
    name="pix2pix",
    config=Pix2PixConfig,
    init=init,
    train_step=train_step,
    predict={"preview": preview, "translate": translate, "pairs": pairs},
    describe_metrics=describe_metrics,
    eval_metrics=(),
    run_defaults=dict(batch_size=64, num_steps=5000),
    presets=PRESETS,
)
