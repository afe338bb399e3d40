"""The CycleGAN family (Zhu et al. 2017): unpaired translation A <-> B.

    from gan_jax.families import cyclegan
    state = cyclegan.FAMILY.init(cyclegan.CycleGANConfig(task="colorize"),
                                 DataSpec((64, 64, 3), 2), key)
    state, metrics = jax.jit(cyclegan.train_step, donate_argnums=0)(
        state, {"image": images})          # [2, B, H, W, C]: A's, then B's

The two domains (`prepare_data`, once, on the host):
  * task "labels": label 0 is domain A, label 1 is domain B (TFDS
    cycle_gan/horse2zebra and its siblings, `--split=trainA+trainB`; or a
    folder with two class folders);
  * a corruption task of gan_jax.corruptions (colorize, denoise, ...): the
    data is split into two disjoint halves by a seeded permutation; A's half
    is corrupted (colorize: greyed, kept in the images' channels), B's is
    left as it is. The model never sees an image in both domains, and the
    evaluation scores A's translations against their held-back originals.
Each step draws one batch from each domain (`batches_by_label`).

One step, as the authors' code: both generators on the LSGAN loss
(D(fake) -> 1) + cycle_weight * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)
+ identity_weight * cycle_weight * (|G_AB(b) - b| + |G_BA(a) - a|), one Adam
over both; then both discriminators, each on [(D(real) - 1)^2 + D(pool
fake)^2] / 2, where the fakes pass through a history pool of `pool_size`
images per D (gan_jax.image_pool), kept in the state.

Networks: pix2pix's U-Net (without dropout, as the authors' CycleGAN) and
PatchGAN (gan_jax.models.translation); the authors' default generator is a
ResNet of 9 blocks at 256 pixels, and their code offers this U-Net.

Metrics (float32, batch means): g_loss, g_adv, cycle (the L1 of both round
trips, [-1, 1] units), identity, d_loss, d_a_real, d_b_real (D's mean
outputs on real images; LSGAN's target 1), d_a_fake, d_b_fake (target 0).
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from gan_jax import corruptions, data, image_pool, sampling
from gan_jax.config import Config, setting
from gan_jax.errors import ConfigError
from gan_jax.family import DataSpec, Family, HeldOutPairs, Preset, step_key
from gan_jax.image_pool import ImagePool
from gan_jax.models import translation
from gan_jax.state import PlayerState

Array = jax.Array
LABELS = "labels"


@dataclasses.dataclass(frozen=True)
class CycleGANConfig(Config):
  """CycleGAN's model: domains, networks, objective and optimizer."""

  task: Union[str, Any] = setting(
      "colorize", "How the two domains are made: labels (label 0 is A, 1 is "
      "B: TFDS cycle_gan/*), or a corruption of one half of the data "
      "(colorize: greyed half -> colour half).",
      choices=sorted([LABELS, *corruptions.TASKS]), group="model")
  features: int = setting(64, "Channels of the networks' first layer (the "
                          "paper's 64).", group="model")
  num_downs: int = setting(0, "U-Net halvings; 0: down to 1x1 (the "
                           "paper's).", group="model")
  cycle_weight: float = setting(10.0, "Weight of the cycle-consistency L1 "
                                "(the paper's lambda).", group="optimisation")
  identity_weight: float = setting(
      0.5, "Identity loss, as a fraction of cycle_weight (the authors' "
      "lambda_identity); 0: none.", group="optimisation")
  pool_size: int = setting(50, "Fakes each discriminator's history pool "
                           "holds (0: no pool).", group="optimisation")
  split_seed: int = setting(0, "Seed of the halves a corruption task splits "
                            "the data into.", group="model")
  lr: float = setting(2e-4, "Adam learning rate of both pairs of players.",
                      group="optimisation")
  b1: float = setting(0.5, "Adam beta1.", group="optimisation")
  b2: float = setting(0.999, "Adam beta2.", group="optimisation")
  dtype: str = setting("float32", "Compute dtype; params, pools and losses "
                       "stay float32.", choices=("float32", "bfloat16"),
                       group="model")

  def validate(self) -> "CycleGANConfig":
    self.positive("lr", "features")
    self.non_negative("num_downs", "cycle_weight", "identity_weight",
                      "pool_size")
    self.in_unit_interval("b1", "b2")
    self.check_choices()
    return self


@dataclasses.dataclass(frozen=True)
class CycleGANSpec:
  """The static part of the state: networks and objective."""
  generator: Any  # G_AB and G_BA share the architecture.
  discriminator: Any  # So do D_A and D_B.
  task: Any  # LABELS, or the corruption that made domain A.
  split_seed: int
  cycle_weight: float
  identity_weight: float


@struct.dataclass
class CycleGANState:
  g: PlayerState  # params {"ab": G_AB's, "ba": G_BA's}; one Adam.
  d: PlayerState  # params {"a": D_A's, "b": D_B's}; one Adam.
  pools: Dict[str, ImagePool]  # {"a": fakes of A for D_A, "b": for D_B}
  step: Array  # int32 [], updates so far.
  rng: Array  # uint32 [2]; per-step keys are fold_in(., step).
  spec: CycleGANSpec = struct.field(pytree_node=False)


# --- The domains --------------------------------------------------------------


def domains(task, split_seed: int, images: np.ndarray, labels: np.ndarray
            ) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray,
                       np.ndarray]:
  """(A float [M, H, W, C] in [-1, 1], A's originals uint8 or None, B uint8
  [K, H, W, C], B's labels [K]) from real images uint8 [N, H, W, C]."""
  images, labels = np.asarray(images), np.asarray(labels)
  if task == LABELS:
    present = sorted(set(np.unique(labels).tolist()))
    if present != [0, 1]:
      raise ConfigError(
          f"--task=labels reads label 0 as domain A and 1 as domain B, but "
          f"the data's labels are {present[:10]}: use a two-domain dataset "
          "(TFDS cycle_gan/horse2zebra with --split=trainA+trainB, or a "
          "folder of two class folders), or a corruption --task.")
    b = images[labels == 1]
    return (data.to_model_range(images[labels == 0]), None, b,
            np.full(len(b), -1, np.int32))
  if len(images) < 2:
    raise ConfigError(f"--task={task} splits the data in two halves: it "
                      f"needs at least 2 images, got {len(images)}.")
  order = np.random.default_rng(split_seed).permutation(len(images))
  a, b = order[:len(order) // 2], order[len(order) // 2:]
  corrupted = corruptions.corrupt_split(task, data.to_model_range(images[a]),
                                        split_seed)
  sources = np.broadcast_to(corrupted, images[a].shape).astype(np.float32)
  return sources, images[a], images[b], labels[b]


def prepare_data(config: CycleGANConfig, images: np.ndarray,
                 labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """The training data: domain A's images labelled 0, B's labelled 1,
  interleaved (a0, b0, a1, b1, ...) so that the loop's preview grid, of the
  first images, shows both domains."""
  a, _, b, _ = domains(config.task, config.split_seed, images, labels)
  order = np.argsort(np.concatenate([np.arange(len(a)), np.arange(len(b))]),
                     kind="stable")
  return (np.concatenate([sampling.to_uint8(a), b])[order],
          np.repeat(np.int32([0, 1]), [len(a), len(b)])[order])


def pairs(state: CycleGANState, images, labels, seed: int) -> HeldOutPairs:
  """A's images of a real split to translate, B's as the target domain, and
  A's originals as truth where A was made by a corruption."""
  del seed  # The halves are the run's own (split_seed).
  spec = state.spec
  sources, truth, targets, target_labels = domains(
      spec.task, spec.split_seed, images, labels)
  return HeldOutPairs(sources=sources, targets=targets,
                      target_labels=target_labels, truth=truth)


# --- Init and step ------------------------------------------------------------


def init(config: CycleGANConfig, data_spec: DataSpec,
         key: Array) -> CycleGANState:
  """Two U-Nets, two PatchGANs, their Adam states and empty pools."""
  shape = tuple(data_spec.image_shape)
  generator, discriminator = translation.create(
      shape, features=config.features, num_downs=config.num_downs,
      dtype=jnp.dtype(config.dtype))
  generator = generator.clone(dropout_layers=0)
  keys = dict(zip(("ab", "ba", "a", "b", "run"), jax.random.split(key, 5)))
  image = jnp.zeros((1,) + shape)
  g_vars = {k: generator.init(keys[k], image, train=False)
            for k in ("ab", "ba")}
  d_vars = {k: discriminator.init(keys[k], None, image, train=False)
            for k in ("a", "b")}
  optimizer = optax.adam(config.lr, b1=config.b1, b2=config.b2)

  def player(module, variables):
    return PlayerState.create(
        apply_fn=module.apply, tx=optimizer,
        params={k: v["params"] for k, v in variables.items()},
        batch_stats={k: v.get("batch_stats", {}) for k, v in
                     variables.items()})

  task = config.task if config.task == LABELS else corruptions.get(
      config.task)
  spec = CycleGANSpec(generator, discriminator, task, config.split_seed,
                      config.cycle_weight, config.identity_weight)
  return CycleGANState(
      g=player(generator, g_vars), d=player(discriminator, d_vars),
      pools={k: ImagePool.create(config.pool_size, shape) for k in "ab"},
      step=jnp.zeros((), jnp.int32), rng=jax.random.key_data(keys["run"]),
      spec=spec)


def _least_squares(outputs: Array, target: float) -> Array:
  return jnp.mean(jnp.square(outputs.astype(jnp.float32) - target))


def _l1(x: Array, y: Array) -> Array:
  return jnp.mean(jnp.abs(x - y))


def train_step(state: CycleGANState, batch: Dict[str, Array]
               ) -> "tuple[CycleGANState, Dict[str, Array]]":
  """One update of both generators, then of both discriminators.

  Args:
    state: the CycleGAN state.
    batch: {"image": float [2, B, H, W, C] in [-1, 1]: a batch of domain A,
      then one of B, ...}.

  Returns:
    (new state, metrics; see the module docstring).
  """
  spec, g, d = state.spec, state.g, state.d
  pool_a_key, pool_b_key = jax.random.split(step_key(state.rng, state.step))
  real_a = batch["image"][0].astype(jnp.float32)
  real_b = batch["image"][1].astype(jnp.float32)

  def generate(params, stats, direction, images):
    """Train-mode G_direction(images); its BatchNorm statistics threaded."""
    out, updates = g.apply_fn(
        {"params": params[direction], "batch_stats": stats[direction]},
        images, train=True, mutable=["batch_stats"])
    return out, {**stats, direction: updates["batch_stats"]}

  def discriminate(params, stats, domain, images):
    """Train-mode D_domain(images): (patch outputs, updated statistics)."""
    out, updates = d.apply_fn(
        {"params": params[domain], "batch_stats": stats[domain]}, None,
        images, train=True, mutable=["batch_stats"])
    return out, {**stats, domain: updates["batch_stats"]}

  def g_loss_fn(params):
    stats = g.batch_stats
    fake_b, stats = generate(params, stats, "ab", real_a)
    rec_a, stats = generate(params, stats, "ba", fake_b)
    fake_a, stats = generate(params, stats, "ba", real_b)
    rec_b, stats = generate(params, stats, "ab", fake_a)
    # Through the discriminators as they are; their statistics unkept.
    adversarial = (
        _least_squares(discriminate(d.params, d.batch_stats, "b", fake_b)[0],
                       1.0)
        + _least_squares(discriminate(d.params, d.batch_stats, "a",
                                      fake_a)[0], 1.0))
    cycle = _l1(rec_a, real_a) + _l1(rec_b, real_b)
    identity = jnp.zeros((), jnp.float32)
    if spec.identity_weight:
      same_b, stats = generate(params, stats, "ab", real_b)
      same_a, stats = generate(params, stats, "ba", real_a)
      identity = _l1(same_b, real_b) + _l1(same_a, real_a)
    loss = (adversarial + spec.cycle_weight * cycle
            + spec.identity_weight * spec.cycle_weight * identity)
    return loss, (stats, fake_a, fake_b, adversarial, cycle, identity)

  (g_loss, (g_stats, fake_a, fake_b, g_adv, cycle, identity)), g_grads = (
      jax.value_and_grad(g_loss_fn, has_aux=True)(g.params))
  g = g.apply_gradients(grads=g_grads).replace(batch_stats=g_stats)

  pool_a, shown_a = image_pool.query(state.pools["a"], pool_a_key,
                                     jax.lax.stop_gradient(fake_a))
  pool_b, shown_b = image_pool.query(state.pools["b"], pool_b_key,
                                     jax.lax.stop_gradient(fake_b))

  def d_loss_fn(params):
    stats = d.batch_stats
    outputs = {}
    for domain, real, fake in (("a", real_a, shown_a), ("b", real_b, shown_b)):
      outputs[domain, "real"], stats = discriminate(params, stats, domain,
                                                    real)
      outputs[domain, "fake"], stats = discriminate(params, stats, domain,
                                                    fake)
    loss = sum(0.5 * (_least_squares(outputs[domain, "real"], 1.0)
                      + _least_squares(outputs[domain, "fake"], 0.0))
               for domain in "ab")
    return loss, (stats, outputs)

  (d_loss, (d_stats, outputs)), d_grads = jax.value_and_grad(
      d_loss_fn, has_aux=True)(d.params)
  d = d.apply_gradients(grads=d_grads).replace(batch_stats=d_stats)
  metrics = dict(g_loss=g_loss, g_adv=g_adv, cycle=cycle, identity=identity,
                 d_loss=d_loss)
  for (domain, kind), value in outputs.items():
    metrics[f"d_{domain}_{kind}"] = jnp.mean(value.astype(jnp.float32))
  return (state.replace(g=g, d=d, pools={"a": pool_a, "b": pool_b},
                        step=state.step + 1),
          {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()})


# --- Predictions (gan_jax.family) --------------------------------------------


def _apply(state: CycleGANState, direction: str, images: Array) -> Array:
  g = state.g
  return g.apply_fn({"params": g.params[direction],
                     "batch_stats": g.batch_stats[direction]}, images,
                    train=False)


def translate(state: CycleGANState, sources: Array) -> Array:
  """G_AB(sources) in eval mode: images [N, H, W, C] in [-1, 1]."""
  return _apply(state, "ab", sources)


def reconstruct(state: CycleGANState, sources: Array) -> Array:
  """The round trip G_BA(G_AB(sources)): [N, H, W, C] in [-1, 1]."""
  return _apply(state, "ba", translate(state, sources))


def preview(state: CycleGANState, key: Array, images: Array,
            labels: Optional[Array] = None) -> Mapping[str, Array]:
  """Rows x | G_AB(x) | G_BA(G_AB(x)) | G_BA(x) | G_AB(G_BA(x)) of training
  images [N, H, W, C] of either domain: the first three columns read an A
  image forward, the last two a B image backward."""
  del key, labels
  forward = translate(state, images)
  backward = _apply(state, "ba", images)
  columns = [images, forward, _apply(state, "ba", forward), backward,
             translate(state, backward)]
  return {"translations": jnp.stack(columns, axis=1)}


def describe_metrics(m: Mapping[str, float]) -> str:
  return (f"g_loss {m['g_loss']:.3f} (adv {m['g_adv']:.3f}, cycle "
          f"{m['cycle']:.4f}, identity {m['identity']:.4f})  d_loss "
          f"{m['d_loss']:.3f}  D_A real/fake {m['d_a_real']:.2f}/"
          f"{m['d_a_fake']:.2f}  D_B {m['d_b_real']:.2f}/{m['d_b_fake']:.2f}")


PRESETS = {
    "tiny": Preset(
        doc="Test-sized networks (4 channels), the unpaired denoising of two "
        "halves of a grey dataset: seconds a run; the translations mean "
        "nothing.",
        run=dict(batch_size=8, num_grid_samples=4),
        model=dict(features=4, num_downs=2, task="denoise", pool_size=4)),
}

FAMILY = Family(
    name="cyclegan",
    config=CycleGANConfig,
    init=init,
    train_step=train_step,
    predict={"preview": preview, "translate": translate,
             "reconstruct": reconstruct, "pairs": pairs},
    batches_per_step=lambda model_config: 2,
    batches_by_label=True,
    prepare_data=prepare_data,
    describe_metrics=describe_metrics,
    eval_metrics=(),
    run_defaults=dict(batch_size=16, num_steps=5000),
    presets=PRESETS,
)
