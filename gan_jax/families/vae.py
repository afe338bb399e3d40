"""The VAE family (Kingma & Welling 2014): encoder, decoder, ELBO, IWAE.

    from gan_jax.families import vae
    state = vae.FAMILY.init(vae.VAEConfig(), DataSpec((28, 28, 1)), key)
    state, metrics = jax.jit(vae.train_step, donate_argnums=0)(state, batch)

q(z | x) is a diagonal Gaussian, sampled with the reparameterisation trick;
p(z) = N(0, I); p(x | z) is a pixel likelihood (gan_jax.likelihoods). The
loss per image is E_q[-log p(x | z)] + beta * KL(q(z | x) || p(z)) with the
KL in closed form, one sample of z per image (`train_samples=1`). With
`train_samples=k > 1` it is the IWAE bound of Burda et al. 2015 instead.
`kl_warmup_steps` ramps beta up linearly from 0.

Metrics of a step (float32, nats per image, means over the batch):
  elbo: -(recon + kl), the evidence lower bound with beta = 1;
  recon: E_q[-log p(x | z)] (one sample); kl: KL(q || p);
  loss: what is minimised; beta: the KL weight now; grad_norm.
  With train_samples > 1 also iwae: the k-sample bound.

The test-set negative log-likelihood is `-log_likelihood(state, images, key,
k)`: the IWAE bound log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q, with
k up to 5000 in chunks (scanned, jitted).
"""

import dataclasses
import math
from typing import Any, Dict, Mapping, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from gan_jax import likelihoods, models
from gan_jax.models import layers
from gan_jax.config import MAX_LATENT_DIM, Config, setting
from gan_jax.errors import ConfigError
from gan_jax.family import (DataSpec, Family, Preset, class_rows,
                            conditional_classes, step_key)
# The bounds, re-exported: vae.elbo_terms, vae.iwae_bound, ... as before.
from gan_jax.families.vae_bounds import (  # noqa: F401
    decoder_outputs, elbo_terms, encode_distribution, gaussian_kl,
    importance_log_weights, iwae_bound)

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class VAEConfig(Config):
  """The VAE's model: networks, likelihood, objective and optimizer."""

  arch: str = setting("mlp", "Encoder/decoder pair.",
                      choices=sorted(models.VAE_ARCHITECTURES), group="model")
  latent_dim: int = setting(20, "Size of z.", group="model")
  likelihood: Union[str, Any] = setting(
      "bernoulli", "p(x|z): bernoulli (binarised images) or "
      "discretized_logistic (8-bit grey or colour).",
      choices=sorted(likelihoods.LIKELIHOODS), group="model")
  dtype: str = setting("float32", "Compute dtype; params and losses stay "
                       "float32.", choices=("float32", "bfloat16", "float16"),
                       group="model")
  beta: float = setting(1.0, "Weight of the KL term (beta-VAE).",
                        group="optimisation")
  kl_warmup_steps: int = setting(0, "Steps over which beta ramps up from 0 "
                                 "(0: none).", group="optimisation")
  train_samples: int = setting(
      1, "Samples of z per image in training: 1 is the ELBO, k > 1 the IWAE "
      "bound.", group="optimisation")
  conditional: bool = setting(
      False, "A conditional VAE (Sohn et al. 2015): the encoder sees the "
      "label as one-hot planes, the decoder a class embedding beside z.",
      group="model")
  num_classes: int = setting(
      0, "Classes of a --conditional model (0: those of the training "
      "data's labels).", group="model")
  lr: float = setting(1e-3, "Adam learning rate.", group="optimisation")
  b1: float = setting(0.9, "Adam beta1.", group="optimisation")
  b2: float = setting(0.999, "Adam beta2.", group="optimisation")
  lr_decay_steps: int = setting(
      0, "Cosine decay of the learning rate to 0 over this many steps (0: "
      "constant).", group="optimisation")
  encoder: Optional[nn.Module] = setting(
      None, "A flax module to use as the encoder instead of arch's.",
      group="model", flag=False)
  decoder: Optional[nn.Module] = setting(
      None, "A flax module to use as the decoder instead of arch's.",
      group="model", flag=False)

  def validate(self) -> "VAEConfig":
    self.positive("lr", "latent_dim", "train_samples", "beta")
    self.at_most(MAX_LATENT_DIM, "latent_dim")
    self.in_unit_interval("b1", "b2")
    self.check_choices()
    self.non_negative("kl_warmup_steps", "lr_decay_steps", "num_classes")
    if self.num_classes and not self.conditional:
      raise ConfigError("--num_classes sets the classes of a conditional "
                        "model: add --conditional.")
    if self.train_samples > 1 and self.beta != 1.0:
      raise ConfigError("--train_samples > 1 trains the IWAE bound, which has "
                        "no KL weight: leave --beta at 1.")
    return self


@dataclasses.dataclass(frozen=True)
class VAESpec:
  """The static part of a VAEState: networks, likelihood, objective."""
  encoder: nn.Module
  decoder: nn.Module
  likelihood: Any  # gan_jax.likelihoods.Bernoulli, ...
  latent_dim: int
  beta: float
  kl_warmup_steps: int
  train_samples: int
  optimizer: optax.GradientTransformation
  num_classes: int = 0  # > 0: a CVAE; its networks take labels [B].


@struct.dataclass
class VAEState:
  step: Array  # int32 [], updates so far.
  params: Any  # {"encoder": ..., "decoder": ...}
  opt_state: Any
  rng: Array  # uint32 [2], base key data; per-step keys are fold_in(., step).
  spec: VAESpec = struct.field(pytree_node=False)


def make_optimizer(config: VAEConfig) -> optax.GradientTransformation:
  lr = config.lr
  if config.lr_decay_steps:
    lr = optax.cosine_decay_schedule(config.lr, config.lr_decay_steps)
  return optax.adam(lr, b1=config.b1, b2=config.b2)


def init(config: VAEConfig, data_spec: DataSpec, key: Array) -> VAEState:
  """Encoder, decoder and Adam state for images of `data_spec`."""
  likelihood = likelihoods.resolve(config.likelihood)
  shape = tuple(data_spec.image_shape)
  encoder, decoder = models.create_vae(
      config.arch, latent_dim=config.latent_dim, image_shape=shape,
      out_channels=shape[-1] * likelihood.num_params,
      dtype=jnp.dtype(config.dtype), param_dtype=jnp.float32)
  encoder, decoder = config.encoder or encoder, config.decoder or decoder
  num_classes = conditional_classes(config.conditional, config.num_classes,
                                    data_spec)
  labels = {}
  if num_classes:
    encoder = models.LabelledEncoder(encoder, num_classes)
    decoder = models.LabelledDecoder(decoder, num_classes)
    labels = {"labels": jnp.zeros((1,), jnp.int32)}
  enc_key, dec_key, run_key = jax.random.split(key, 3)
  params = {
      "encoder": encoder.init(enc_key, jnp.zeros((1,) + shape),
                              **labels)["params"],
      "decoder": decoder.init(dec_key, jnp.zeros((1, config.latent_dim)),
                              **labels)["params"],
  }
  optimizer = make_optimizer(config)
  spec = VAESpec(encoder, decoder, likelihood, config.latent_dim,
                 config.beta, config.kl_warmup_steps, config.train_samples,
                 optimizer, num_classes)
  return VAEState(step=jnp.zeros((), jnp.int32), params=params,
                  opt_state=optimizer.init(params),
                  rng=jax.random.key_data(run_key), spec=spec)


def kl_weight(spec: VAESpec, step: Array) -> Array:
  if not spec.kl_warmup_steps:
    return jnp.asarray(spec.beta, jnp.float32)
  ramp = jnp.minimum(1.0, (step + 1) / spec.kl_warmup_steps)
  return (spec.beta * ramp).astype(jnp.float32)


def _global_norm(tree) -> Array:
  return jnp.sqrt(sum(jnp.vdot(x.ravel(), x.ravel()).astype(jnp.float32)
                      for x in jax.tree.leaves(tree)))


def train_step(state: VAEState, batch: Dict[str, Array]
               ) -> "tuple[VAEState, Dict[str, Array]]":
  """One Adam update on the batch's negative ELBO (or IWAE bound).

  Args:
    state: the VAE's state.
    batch: {"image": float [B, H, W, C] in [-1, 1], "label": int [B]}; the
      labels are used by a CVAE only.

  Returns:
    (new state, metrics; see the module docstring).
  """
  spec = state.spec
  data_key, sample_key = jax.random.split(step_key(state.rng, state.step))
  targets = spec.likelihood.targets(batch["image"], data_key)
  beta = kl_weight(spec, state.step)
  labels = batch["label"] if spec.num_classes else None

  def loss_fn(params):
    terms = elbo_terms(spec, params, targets, sample_key, labels)
    metrics = {name: jnp.mean(value) for name, value in terms.items()}
    if spec.train_samples == 1:
      loss = metrics["recon"] + beta * metrics["kl"]
    else:
      bound = iwae_bound(spec, params, targets,
                         jax.random.fold_in(sample_key, 1), spec.train_samples,
                         labels=labels)
      metrics["iwae"] = jnp.mean(bound)
      loss = -metrics["iwae"]
    return loss, metrics

  (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  updates, opt_state = spec.optimizer.update(grads, state.opt_state,
                                             state.params)
  new_state = state.replace(step=state.step + 1,
                            params=optax.apply_updates(state.params, updates),
                            opt_state=opt_state)
  return new_state, {**metrics, "loss": loss, "beta": beta,
                     "grad_norm": _global_norm(grads)}


# --- Predictions (gan_jax.family) --------------------------------------------


def latents(state: VAEState, key: Array, num: int) -> Array:
  """z ~ p(z) = N(0, I): float32 [num, latent_dim]."""
  return jax.random.normal(key, (num, state.spec.latent_dim), jnp.float32)


def decode(state: VAEState, z: Array, labels: Optional[Array] = None
           ) -> Array:
  """The mean image of p(x | z): [B, H, W, C] in [-1, 1]; a CVAE draws
  `labels` [B] (default: every class in turn)."""
  spec = state.spec
  return spec.likelihood.mean(decoder_outputs(spec, state.params, z, labels))


def generate(state: VAEState, key: Array, num: int,
             labels: Optional[Array] = None) -> Array:
  return decode(state, latents(state, key, num), labels)


def encode(state: VAEState, images: Array, *,
           labels: Optional[Array] = None) -> Array:
  """The posterior mean of z for images [B, H, W, C] (binarised at 1/2 for a
  Bernoulli likelihood) of classes `labels` [B] if a CVAE: [B, latent_dim]."""
  spec = state.spec
  targets = spec.likelihood.fixed_targets(images)
  return encode_distribution(spec, state.params,
                             spec.likelihood.encoder_input(targets),
                             labels)[0]


def features(state: VAEState, images: Array) -> Mapping[str, Array]:
  """The encoder's hidden activations, {layer: [N, ...]} (what it sows in
  `layers.FEATURES`), and "mean", the posterior mean [N, latent_dim]."""
  spec = state.spec
  if spec.num_classes:
    raise ConfigError("A conditional VAE's encoder is given each image's "
                      "class, so its features cannot be probed for it; "
                      "probe an unconditional run.")
  inputs = spec.likelihood.encoder_input(spec.likelihood.fixed_targets(images))
  (mean, _), sown = spec.encoder.apply(
      {"params": state.params["encoder"]}, inputs, mutable=[layers.FEATURES])
  return {**{name: values[-1] for name, values in
             sown.get(layers.FEATURES, {}).items()}, "mean": mean}


def reconstruct(state: VAEState, images: Array, *,
                labels: Optional[Array] = None) -> Array:
  """decode(encode(images)): the mean image at the posterior mean."""
  return decode(state, encode(state, images, labels=labels), labels)


def preview(state: VAEState, key: Array, images: Array,
            labels: Optional[Array] = None) -> Mapping[str, Array]:
  """Samples (a CVAE's one row per class), and rows of (input |
  reconstruction) pairs [R, 2P, H, W, C]; a CVAE's need the images'
  `labels`."""
  n = images.shape[0]
  inputs = state.spec.likelihood.fixed_targets(images)
  shown = state.spec.likelihood.encoder_input(inputs)
  pairs = jnp.stack([shown, reconstruct(state, images, labels=labels)],
                    axis=1)
  per_row = math.ceil(math.sqrt(n))
  rows = math.ceil(n / per_row)
  pairs = jnp.pad(pairs, ((0, rows * per_row - n),) + ((0, 0),) * 4,
                  constant_values=-1.0)
  pairs = pairs.reshape((rows, 2 * per_row) + images.shape[1:])
  samples = class_rows(lambda num, classes: generate(state, key, num, classes),
                       n, state.spec.num_classes)
  return {"samples": samples, "reconstructions": pairs}


def elbo(state: VAEState, images: Array, key: Array, *,
         labels: Optional[Array] = None) -> Dict[str, Array]:
  """Per image {elbo, recon, kl}, float32 [B], on targets drawn with `key`
  (the same binarisation as log_likelihood with the same key); a CVAE's
  bound log p(x | y) for the images' `labels` [B]."""
  spec = state.spec
  data_key, sample_key = jax.random.split(key)
  return elbo_terms(spec, state.params, spec.likelihood.targets(images,
                                                                data_key),
                    sample_key, labels)


def log_likelihood(state: VAEState, images: Array, key: Array,
                   num_samples: int, *, labels: Optional[Array] = None
                   ) -> Array:
  """The IWAE bound on log p(x) (a CVAE's: log p(x | y) for `labels` [B])
  with `num_samples` samples: float32 [B]."""
  spec = state.spec
  data_key, sample_key = jax.random.split(key)
  return iwae_bound(spec, state.params, spec.likelihood.targets(images,
                                                                data_key),
                    sample_key, num_samples, labels=labels)


def describe_data(state: VAEState, images: np.ndarray) -> Dict[str, Any]:
  return state.spec.likelihood.describe_data(images)


def describe_metrics(m: Mapping[str, float]) -> str:
  line = (f"ELBO {m['elbo']:.2f} = -(recon {m['recon']:.2f} + KL "
          f"{m['kl']:.2f})")
  if "iwae" in m:
    line += f"  IWAE {m['iwae']:.2f}"
  if m.get("beta", 1.0) != 1.0:
    line += f"  beta {m['beta']:.3f}"
  return line


EPOCH_OF_MNIST_AT_128 = 469  # ceil(60000 / 128) steps.

PRESETS = {
    "flax_example": Preset(
        doc="""flax examples/vae's settings: MLP with 500 hidden units, 20
        latents, batch 128, Adam 1e-3, Bernoulli likelihood on binarised
        MNIST, 10 epochs. `python -m experiments.mnist_vae
        --preset=flax_example`. 32 s on a 2-core AMD EPYC; negative test
        ELBO 104.13 +- 0.44 over 5 seeds (README, "The VAE").""",
        run=dict(batch_size=128, num_steps=10 * EPOCH_OF_MNIST_AT_128),
        model=dict(arch="mlp", latent_dim=20, lr=1e-3,
                   likelihood="bernoulli")),
    "best_nll": Preset(
        doc="""The best test NLL within 30 minutes on 2 CPU cores: MLP 2x512,
        50 latents, Bernoulli on dynamically binarised MNIST, KL warm-up over
        10k steps, Adam 1e-3 with cosine decay, batch 128, 100k steps (213
        epochs). `python benchmarks/vae_likelihood.py --what=nll_curve
        --preset=best_nll --data_dir=...`; README, "The VAE", has its NLL
        against minutes on a 2-core AMD EPYC: 86.53 nats after 20
        minutes.""",
        run=dict(batch_size=128, num_steps=100_000, checkpoint_every=10_000,
                 keep_checkpoints=10, sample_every=10_000, log_every=1000),
        model=dict(arch="mlp2", latent_dim=50, likelihood="bernoulli",
                   kl_warmup_steps=10_000, lr=1e-3, lr_decay_steps=100_000)),
    "fashion": Preset(
        doc="""Fashion-MNIST for the comparison with the GAN: the
        convolutional pair, 32 latents, discretised logistic likelihood,
        Adam 1e-3, batch 64, 10k steps (the GAN's default budget).
        `python benchmarks/quality.py --family=vae --preset=fashion`: 4.4
        minutes on a 2-core AMD EPYC, FD 92.78 on the domain classifier's
        features (the DCGAN's: 22.73 since its paper initialisation);
        README, "The VAE against the GAN".""",
        run=dict(dataset="fashion_mnist", batch_size=64, num_steps=10_000),
        model=dict(arch="conv", latent_dim=32,
                   likelihood="discretized_logistic")),
    "tiny": Preset(
        doc="Test-sized networks: a few seconds a run; the samples mean "
        "nothing.",
        run=dict(batch_size=8, num_grid_samples=4),
        model=dict(arch="mlp_tiny", latent_dim=4)),
    "tiny_conditional": Preset(
        doc="The tiny preset as a conditional VAE (labels from the data): "
        "`python -m experiments.mnist_vae --preset=tiny_conditional`.",
        run=dict(batch_size=8, num_grid_samples=4),
        model=dict(arch="mlp_tiny", latent_dim=4, conditional=True)),
}

FAMILY = Family(
    name="vae",
    config=VAEConfig,
    init=init,
    train_step=train_step,
    predict={"preview": preview, "generate": generate, "latents": latents,
             "decode": decode, "encode": encode, "reconstruct": reconstruct,
             "elbo": elbo, "log_likelihood": log_likelihood,
             "describe_data": describe_data, "features": features,
             "classes": lambda state: state.spec.num_classes},
    describe_metrics=describe_metrics,
    eval_metrics=("fd", "score", "elbo"),
    run_defaults=dict(batch_size=128, num_steps=10 * EPOCH_OF_MNIST_AT_128),
    presets=PRESETS,
)
