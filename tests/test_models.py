import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.models import dcgan


def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _init(arch, image_shape, batch=3, latent_dim=100, **kwargs):
  generator, discriminator = models.create(arch, image_shape=image_shape,
                                           **kwargs)
  z = jnp.ones((batch, latent_dim))
  g_vars = generator.init(jax.random.key(0), z, train=False)
  images = generator.apply(g_vars, z, train=False)
  d_vars = discriminator.init(jax.random.key(1), images, train=False)
  logits = discriminator.apply(d_vars, images, train=False)
  return g_vars, d_vars, images, logits


@pytest.mark.parametrize("arch", ["dcgan", "mlp", "dcgan_tiny", "mlp_tiny"])
@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3),
                                         (64, 64, 3)])
def test_shapes(arch, image_shape):
  _, _, images, logits = _init(arch, image_shape)
  assert images.shape == (3,) + image_shape
  assert logits.shape == (3,) and logits.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(images))) <= 1.0


def test_dcgan_28_parameter_count():
  g_vars, d_vars, _, _ = _init("dcgan", (28, 28, 1))
  # G: dense 100->7*7*128 (no bias) + BN(128) + convT 4x4 128->64 (no bias)
  #    + BN(64) + convT 4x4 64->1 with bias.
  g_expected = 100 * 6272 + 2 * 128 + 16 * 128 * 64 + 2 * 64 + 16 * 64 + 1
  # D: conv 4x4 1->64 with bias + conv 4x4 64->128 (no bias) + BN(128)
  #    + dense 7*7*128 -> 1 with bias.
  d_expected = 16 * 64 + 64 + 16 * 64 * 128 + 2 * 128 + 6272 + 1
  assert _count(g_vars["params"]) == g_expected == 759_681
  assert _count(d_vars["params"]) == d_expected == 138_689
  assert _count(g_vars["batch_stats"]) == 2 * (128 + 64)
  assert _count(d_vars["batch_stats"]) == 2 * 128


def test_mlp_parameter_count():
  g_vars, d_vars, _, _ = _init("mlp", (28, 28, 1))
  assert _count(g_vars["params"]) == (100 * 1200 + 1200 + 1200 * 1200 + 1200
                                      + 1200 * 784 + 784)
  assert _count(d_vars["params"]) == (784 * 1200 + 1200 + 240 * 1200 + 1200
                                      + 240 + 1)
  assert "batch_stats" not in g_vars


@pytest.mark.parametrize("size,expected", [(28, 2), (32, 3), (64, 4),
                                           (128, 5)])
def test_dcgan_depth_follows_image_size(size, expected):
  assert dcgan.num_upsamplings(size) == expected


def test_batchnorm_train_vs_eval():
  generator, _ = models.create("dcgan_tiny", image_shape=(28, 28, 1))
  z = jax.random.normal(jax.random.key(0), (8, 100))
  variables = generator.init(jax.random.key(1), z, train=False)
  train_out, updates = generator.apply(variables, z, train=True,
                                       mutable=["batch_stats"])
  eval_out = generator.apply(variables, z, train=False)
  assert not np.allclose(train_out, eval_out)
  # Train mode moves the running statistics; eval mode reads them only.
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                       updates["batch_stats"], variables["batch_stats"])
  assert max(jax.tree.leaves(moved)) > 0
  # Train mode normalises each batch by its own statistics: per-example
  # outputs depend on the rest of the batch.
  half, _ = generator.apply(variables, z[:4], train=True,
                            mutable=["batch_stats"])
  assert not np.allclose(half, train_out[:4], atol=1e-4)


def test_fast_layers_compute_the_reference_network():
  z = jax.random.normal(jax.random.key(0), (4, 100))
  slow, fast = (dcgan.DCGANGenerator(fast_layers=False),
                dcgan.DCGANGenerator())
  variables = slow.init(jax.random.key(1), z, train=False)
  np.testing.assert_allclose(fast.apply(variables, z, train=False),
                             slow.apply(variables, z, train=False), atol=1e-5)
  images = jax.random.uniform(jax.random.key(2), (4, 28, 28, 1), minval=-1)
  slow, fast = (dcgan.DCGANDiscriminator(fast_layers=False),
                dcgan.DCGANDiscriminator())
  variables = slow.init(jax.random.key(3), images, train=False)
  np.testing.assert_allclose(fast.apply(variables, images, train=False),
                             slow.apply(variables, images, train=False),
                             atol=1e-4)


def test_bfloat16_compute_keeps_float32_params_and_logits():
  g_vars, d_vars, images, logits = _init("dcgan_tiny", (28, 28, 1),
                                         dtype=jnp.bfloat16)
  assert images.dtype == jnp.bfloat16
  assert logits.dtype == jnp.float32
  for leaf in jax.tree.leaves((g_vars["params"], d_vars["params"])):
    assert leaf.dtype == jnp.float32


def test_unknown_arch_names_the_flag():
  with pytest.raises(ValueError, match="--arch='nope'"):
    models.create("nope")
