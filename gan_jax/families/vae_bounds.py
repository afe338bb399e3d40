"""The VAE's bounds on log p(x) (or a CVAE's log p(x | y)) as pure
functions of its spec and params: the ELBO's terms and the IWAE bound
(Burda et al. 2015), with the networks' passes they need.

    terms = elbo_terms(spec, params, targets, key)      # {elbo, recon, kl} [B]
    bound = iwae_bound(spec, params, targets, key, k)   # [B]

`spec` is a `vae.VAESpec`: its encoder, decoder, likelihood, latent size and
classes.
"""

from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
VAESpec = Any  # gan_jax.families.vae.VAESpec (which imports this module).
LOG_2PI = float(np.log(2.0 * np.pi))


def _labels(spec: VAESpec, labels: Optional[Array], batch: int):
  """The networks' labels keyword: none for a VAE; for a CVAE `labels`
  [B] (every class in turn where none are given)."""
  if not spec.num_classes:
    return {}
  if labels is None:
    labels = jnp.arange(batch, dtype=jnp.int32) % spec.num_classes
  return {"labels": labels}


def encode_distribution(spec: VAESpec, params, inputs: Array,
                        labels: Optional[Array] = None):
  """q(z | x[, y]): (mean, log_var), float32 [B, latent_dim]."""
  return spec.encoder.apply({"params": params["encoder"]}, inputs,
                            **_labels(spec, labels, inputs.shape[0]))


def decoder_outputs(spec: VAESpec, params, z: Array,
                    labels: Optional[Array] = None) -> Array:
  """Parameters of p(x | z[, y]), float32 [B, H, W, C * num_params]."""
  return spec.decoder.apply({"params": params["decoder"]}, z,
                            **_labels(spec, labels, z.shape[0]))


def gaussian_kl(mean: Array, log_var: Array) -> Array:
  """KL(N(mean, exp(log_var)) || N(0, I)) per row: float32 [B]."""
  return 0.5 * jnp.sum(mean ** 2 + jnp.exp(log_var) - 1.0 - log_var, axis=-1)


def _diag_normal_log_pdf(z: Array, mean: Array, log_var: Array) -> Array:
  return -0.5 * jnp.sum(LOG_2PI + log_var + (z - mean) ** 2
                        * jnp.exp(-log_var), axis=-1)


def importance_log_weights(spec: VAESpec, params, targets: Array,
                           mean: Array, log_var: Array, eps: Array,
                           labels: Optional[Array] = None) -> Array:
  """log p(x, z) - log q(z | x) at z = mean + std * eps: [k, B].

  `eps` is [k, B, latent_dim]; the k samples of all B images run through the
  decoder as one batch of k * B.
  """
  k, b, latent_dim = eps.shape
  z = mean + jnp.exp(0.5 * log_var) * eps
  tiled_labels = None if labels is None else jnp.tile(labels, k)
  outputs = decoder_outputs(spec, params, z.reshape(k * b, latent_dim),
                            tiled_labels)
  tiled = jnp.broadcast_to(targets, (k,) + targets.shape).reshape(
      (k * b,) + targets.shape[1:])
  log_px_z = spec.likelihood.log_prob(outputs, tiled).reshape(k, b)
  log_pz = _diag_normal_log_pdf(z, 0.0, jnp.zeros_like(z))
  return log_px_z + log_pz - _diag_normal_log_pdf(z, mean, log_var)


def iwae_bound(spec: VAESpec, params, targets: Array, key: Array,
               num_samples: int, max_decoder_batch: int = 8192,
               labels: Optional[Array] = None) -> Array:
  """log (1/k) sum_i w_i, w_i = p(x, z_i) / q(z_i | x): float32 [B].

  Sample i's noise comes from fold_in(key, i), so the result does not
  depend on how the k samples are chunked (at most `max_decoder_batch`
  decoder inputs at a time, scanned).
  """
  b = targets.shape[0]
  mean, log_var = encode_distribution(
      spec, params, spec.likelihood.encoder_input(targets), labels)
  chunk = max(c for c in range(1, num_samples + 1)
              if num_samples % c == 0 and c * b <= max(max_decoder_batch, b))
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(
      jnp.arange(num_samples)).reshape(num_samples // chunk, chunk)

  def body(total, chunk_keys):
    eps = jax.vmap(lambda k: jax.random.normal(k, (b, spec.latent_dim)))(
        chunk_keys)
    log_w = importance_log_weights(spec, params, targets, mean, log_var, eps,
                                   labels)
    return jnp.logaddexp(total, jax.nn.logsumexp(log_w, axis=0)), None

  total, _ = jax.lax.scan(body, jnp.full((b,), -jnp.inf, jnp.float32), keys)
  return total - np.log(num_samples)


def elbo_terms(spec: VAESpec, params, targets: Array, key: Array,
               labels: Optional[Array] = None) -> Dict[str, Array]:
  """Per image: recon = -log p(x | z) at one z ~ q, kl (closed form), and
  elbo = -(recon + kl). Each float32 [B], nats. A CVAE's are of x given
  its `labels` [B]."""
  mean, log_var = encode_distribution(
      spec, params, spec.likelihood.encoder_input(targets), labels)
  z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
  recon = -spec.likelihood.log_prob(decoder_outputs(spec, params, z, labels),
                                    targets)
  kl = gaussian_kl(mean, log_var)
  return {"elbo": -(recon + kl), "recon": recon, "kl": kl}
