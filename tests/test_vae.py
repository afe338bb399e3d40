"""The VAE: likelihoods, KL, ELBO and IWAE against hand-computed values."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from conftest import make_digits
from gan_jax import likelihoods, models
from gan_jax.evaluator import EvalConfig, Evaluator
from gan_jax.families import vae
from gan_jax.family import DataSpec
from gan_jax.models.vae import MLPDecoder, MLPEncoder

SPEC = DataSpec((28, 28, 1), 10)


def _count(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def test_the_flax_example_network_has_its_parameter_count():
  state = vae.init(vae.VAEConfig(arch="mlp", latent_dim=20), SPEC,
                   jax.random.key(0))
  # 784-500-(20 + 20) and 20-500-784 dense layers with biases.
  assert _count(state.params["encoder"]) == 784 * 500 + 500 + 500 * 40 + 40
  assert _count(state.params["decoder"]) == 20 * 500 + 500 + 500 * 784 + 784


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_conv_pair_shapes(shape):
  likelihood = likelihoods.LIKELIHOODS["discretized_logistic"]
  encoder, decoder = models.create_vae(
      "conv_tiny", latent_dim=6, image_shape=shape,
      out_channels=shape[-1] * likelihood.num_params)
  x = jnp.zeros((2,) + shape)
  mean, log_var = encoder.apply(encoder.init(jax.random.key(0), x), x)
  assert mean.shape == log_var.shape == (2, 6)
  z = jnp.zeros((2, 6))
  out = decoder.apply(decoder.init(jax.random.key(1), z), z)
  assert out.shape == (2,) + shape[:2] + (2 * shape[-1],)
  assert out.dtype == jnp.float32


def test_gaussian_kl_is_the_closed_form():
  mean = jnp.array([[1.0, 0.0]])
  log_var = jnp.array([[0.0, np.log(2.0)]])
  # 0.5 (mu^2 + s^2 - 1 - log s^2) per dimension: 0.5 + 0.5 (1 - ln 2).
  np.testing.assert_allclose(vae.gaussian_kl(mean, log_var),
                             [0.5 + 0.5 * (1.0 - np.log(2.0))], rtol=1e-6)


def test_bernoulli_log_prob_by_hand():
  bernoulli = likelihoods.Bernoulli()
  logits = jnp.array([[0.0, np.log(3.0)]]).reshape(1, 1, 2, 1)
  targets = jnp.array([[1.0, 0.0]]).reshape(1, 1, 2, 1)
  # log s(0) + log(1 - s(ln 3)) = log 1/2 + log 1/4.
  np.testing.assert_allclose(bernoulli.log_prob(logits, targets),
                             [np.log(0.5) + np.log(0.25)], rtol=1e-6)
  np.testing.assert_allclose(bernoulli.mean(logits).ravel(), [0.0, 0.5],
                             atol=1e-6)


def test_bernoulli_binarisation_is_dynamic_and_keyed():
  bernoulli = likelihoods.Bernoulli()
  grey = jnp.zeros((2000, 1, 1, 1))  # Intensity 1/2.
  a = bernoulli.targets(grey, jax.random.key(0))
  assert set(np.unique(a)) == {0.0, 1.0}
  assert abs(float(a.mean()) - 0.5) < 0.05
  np.testing.assert_array_equal(a, bernoulli.targets(grey, jax.random.key(0)))
  assert not np.array_equal(a, bernoulli.targets(grey, jax.random.key(1)))
  binary = jnp.array([-1.0, 1.0]).reshape(2, 1, 1, 1)  # Already binary.
  np.testing.assert_array_equal(
      bernoulli.targets(binary, jax.random.key(3)).ravel(), [0.0, 1.0])
  assert bernoulli.describe_data(np.array([0, 255], np.uint8))[
      "binarization"].startswith("fixed")
  assert bernoulli.describe_data(np.array([0, 7], np.uint8))[
      "binarization"].startswith("dynamic")


def test_discretized_logistic_by_hand_and_sums_to_one():
  logistic = likelihoods.DiscretizedLogistic()
  levels = np.arange(256) * 2.0 / 255.0 - 1.0
  mu, log_s = 0.1, np.log(0.05)
  outputs = jnp.tile(jnp.array([mu, log_s], jnp.float32), (256, 1)).reshape(
      256, 1, 1, 2)
  log_p = np.asarray(logistic.log_prob(outputs,
                                       jnp.asarray(levels).reshape(256, 1, 1,
                                                                   1)))
  sigmoid = special.expit
  upper = sigmoid((levels + 1 / 255 - mu) / 0.05)
  lower = sigmoid((levels - 1 / 255 - mu) / 0.05)
  expected = np.where(levels < -0.999, upper,
                      np.where(levels > 0.999, 1.0 - lower, upper - lower))
  mass = expected > 1e-5  # Where the bins hold mass, to float32 precision.
  np.testing.assert_allclose(log_p[mass], np.log(expected[mass]), rtol=1e-4,
                             atol=1e-4)
  np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, atol=1e-4)
  np.testing.assert_allclose(logistic.mean(outputs).ravel()[0], mu, rtol=1e-6)


def _linear_vae(image_shape, latent_dim, seed=0):
  """A VAE of single dense layers (no hidden units), for hand computation."""
  config = vae.VAEConfig(
      latent_dim=latent_dim,
      encoder=MLPEncoder(latent_dim=latent_dim, hidden=()),
      decoder=MLPDecoder(image_shape=image_shape, out_channels=1, hidden=()))
  return vae.init(config, DataSpec(image_shape), jax.random.key(seed))


def _numpy_terms(state, targets, eps):
  """log p(x|z), log p(z), log q(z|x) in numpy for z = mu + s * eps [k, B, D]."""
  enc, dec = state.params["encoder"], state.params["decoder"]
  x = np.asarray(targets).reshape(len(targets), -1)
  head = enc["_GaussianHead_0"]["Dense_0"]
  out = (x * 2 - 1) @ np.asarray(head["kernel"]) + np.asarray(head["bias"])
  mean, log_var = np.split(out, 2, axis=-1)
  z = mean + np.exp(0.5 * log_var) * np.asarray(eps)
  dense = dec["Dense_0"]
  logits = z @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
  log_px = (x * logits - np.logaddexp(0, logits)).sum(-1)
  log_pz = -0.5 * (np.log(2 * np.pi) + z ** 2).sum(-1)
  log_qz = -0.5 * (np.log(2 * np.pi) + log_var + (z - mean) ** 2
                   / np.exp(log_var)).sum(-1)
  return mean, log_var, log_px, log_pz, log_qz


def test_elbo_terms_by_hand():
  state = _linear_vae((2, 2, 1), 3)
  targets = jnp.array([[0, 1, 1, 0], [1, 1, 0, 0]], jnp.float32).reshape(
      2, 2, 2, 1)
  key = jax.random.key(5)
  terms = vae.elbo_terms(state.spec, state.params, targets, key)
  eps = jax.random.normal(key, (2, 3))
  mean, log_var, log_px, _, _ = _numpy_terms(state, targets, eps[None])
  kl = 0.5 * (mean ** 2 + np.exp(log_var) - 1 - log_var).sum(-1)
  np.testing.assert_allclose(terms["recon"], -log_px[0], rtol=1e-5)
  np.testing.assert_allclose(terms["kl"], kl, rtol=1e-5)
  np.testing.assert_allclose(terms["elbo"], log_px[0] - kl, rtol=1e-5)


def test_iwae_bound_by_hand_and_independent_of_chunking():
  state = _linear_vae((2, 2, 1), 3)
  targets = jnp.array([[0, 1, 1, 0], [1, 1, 0, 0]], jnp.float32).reshape(
      2, 2, 2, 1)
  key, k = jax.random.key(9), 12
  eps = jnp.stack([jax.random.normal(jax.random.fold_in(key, i), (2, 3))
                   for i in range(k)])
  *_, log_px, log_pz, log_qz = _numpy_terms(state, targets, eps)
  expected = special.logsumexp(log_px + log_pz - log_qz, axis=0) - np.log(k)
  for max_batch in (2, 6, 10_000):  # Chunks of 1, 3 and 12 samples.
    bound = vae.iwae_bound(state.spec, state.params, targets, key, k,
                           max_decoder_batch=max_batch)
    np.testing.assert_allclose(bound, expected, rtol=1e-5)


def test_iwae_approaches_the_exact_log_likelihood():
  """A 1-pixel image and a 1-d latent: p(x) by quadrature over z."""
  state = _linear_vae((1, 1, 1), 1, seed=3)
  dense = state.params["decoder"]["Dense_0"]
  w, b = float(dense["kernel"][0, 0]), float(dense["bias"][0])
  z = np.linspace(-12, 12, 200_001)
  prior = np.exp(-0.5 * z ** 2) / np.sqrt(2 * np.pi)
  exact = np.log(np.trapezoid(prior * special.expit(w * z + b), z))
  image = jnp.ones((1, 1, 1, 1))  # Pixel on: target 1 whatever the key.
  iwae = float(vae.log_likelihood(state, image, jax.random.key(0), 5000)[0])
  assert abs(iwae - exact) < 0.01, (iwae, exact)
  elbos = [float(vae.elbo(state, image, jax.random.key(i))["elbo"][0])
           for i in range(200)]
  assert np.mean(elbos) < exact < iwae + 0.01


def test_training_lowers_the_negative_elbo_and_warms_up_beta():
  config = vae.VAEConfig(arch="mlp_tiny", latent_dim=4, kl_warmup_steps=4)
  state = vae.init(config, SPEC, jax.random.key(0))
  images = jnp.asarray(make_digits(16)[0][..., None] / 127.5 - 1.0)
  step = jax.jit(vae.train_step)
  losses, betas = [], []
  for _ in range(30):
    state, metrics = step(state, {"image": images})
    losses.append(float(metrics["recon"] + metrics["kl"]))
    betas.append(float(metrics["beta"]))
  assert losses[-1] < losses[0] - 50
  np.testing.assert_allclose(betas[:5], [0.25, 0.5, 0.75, 1.0, 1.0])


def test_iwae_training_objective():
  config = vae.VAEConfig(arch="mlp_tiny", latent_dim=4, train_samples=5,
                         likelihood="discretized_logistic")
  state = vae.init(config, SPEC, jax.random.key(0))
  images = jnp.asarray(make_digits(8)[0][..., None] / 127.5 - 1.0)
  state, metrics = jax.jit(vae.train_step)(state, {"image": images})
  assert np.isfinite(metrics["iwae"]) and metrics["loss"] == -metrics["iwae"]
  with pytest.raises(Exception, match="--beta"):
    dataclasses.replace(config, beta=0.5).validate()


def test_evaluation_records_of_elbo_and_nll(idx_dir):
  state = vae.init(vae.VAEConfig(arch="mlp_tiny", latent_dim=4), SPEC,
                   jax.random.key(0))
  config = EvalConfig(dataset="bars", data_dir=idx_dir, num_real=24,
                      metrics=("elbo", "nll"), nll_samples=16)
  records = Evaluator(config, vae.FAMILY).generated(state, step=3)
  elbo, nll = records
  assert elbo["metric"] == "elbo" and nll["metric"] == "nll"
  assert nll["num_importance_samples"] == 16 and nll["num_real"] == 24
  for record in records:
    assert record["likelihood"] == "bernoulli" and record["step"] == 3
    assert record["binarization"].startswith("fixed")  # The bars are 0/255.
    assert record["units"] == "nats per image"
    assert len(record["reference_sha256"]) == 64
  np.testing.assert_allclose(elbo["value"], -(elbo["recon"] + elbo["kl"]),
                             rtol=1e-5)
  # The same bound, computed directly on the same images and keys.
  images = make_digits(32, seed=4)[0][:24, ..., None]
  direct = []
  for i, start in enumerate(range(0, 24, 100)):
    chunk = np.concatenate([images[start:start + 100],
                            np.repeat(images[:1], 100 - 24, axis=0)])
    direct.append(vae.log_likelihood(
        state, jnp.asarray(chunk / 127.5 - 1.0, jnp.float32),
        jax.random.fold_in(jax.random.key(0), i), 16)[:24])
  np.testing.assert_allclose(nll["value"], -float(np.mean(direct)), rtol=1e-5)
  assert nll["value"] < -elbo["value"] + 1.0  # IWAE-16 >= ELBO, roughly.


def test_a_conditional_vae_bounds_each_image_given_its_class():
  config = vae.VAEConfig(arch="mlp_tiny", latent_dim=4, conditional=True)
  state = vae.FAMILY.init(config.validate(), DataSpec((28, 28, 1), 3),
                          jax.random.key(0))
  assert vae.FAMILY.get("classes")(state) == 3
  images = jnp.asarray(make_digits(6)[0][..., None] / 127.5 - 1.0,
                       jnp.float32)
  labels = jnp.array([0, 1, 2, 0, 1, 2], jnp.int32)
  key = jax.random.key(1)
  bound = vae.elbo(state, images, key, labels=labels)["elbo"]
  other = vae.elbo(state, images, key, labels=(labels + 1) % 3)["elbo"]
  assert bound.shape == (6,) and not np.allclose(bound, other)
  # The encoder sees the label (one-hot planes), the decoder too.
  z = vae.encode(state, images, labels=labels)
  assert not np.allclose(z, vae.encode(state, images, labels=labels[::-1]))
  assert not np.allclose(vae.decode(state, z, labels),
                         vae.decode(state, z, labels[::-1]))
  new, metrics = jax.jit(vae.train_step)(state, {"image": images,
                                                 "label": labels})
  assert int(new.step) == 1 and np.isfinite(float(metrics["loss"]))
  grid = jax.jit(vae.preview)(new, key, images, labels)
  assert grid["samples"].shape == (3, 2, 28, 28, 1)  # One row per class.
  with pytest.raises(Exception, match="add --conditional"):
    vae.VAEConfig(num_classes=3).validate()
