import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.models import conditioning, dcgan, layers, resnet


def _count(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _init(arch, image_shape, batch=3, latent_dim=100, **kwargs):
  generator, discriminator = models.create(arch, image_shape=image_shape,
                                           **kwargs)

  # One compiled program: eager flax dispatches (and compiles) op by op.
  @jax.jit
  def init_and_apply():
    z = jnp.ones((batch, latent_dim))
    g_vars = generator.init(jax.random.key(0), z, train=False)
    images = generator.apply(g_vars, z, train=False)
    d_vars = discriminator.init(jax.random.key(1), images, train=False)
    logits = discriminator.apply(d_vars, images, train=False)
    return g_vars, d_vars, images, logits
  return init_and_apply()


@pytest.mark.parametrize("arch", ["dcgan", "mlp", "dcgan_tiny", "mlp_tiny",
                                  "resnet_tiny", "resnet_pyramid_small"])
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


def test_dcgan_draws_the_paper_initialisation():
  generator, discriminator = models.create("dcgan")
  g_vars = generator.init(jax.random.key(0), jnp.ones((1, 100)), train=False)
  d_vars = discriminator.init(jax.random.key(1), jnp.ones((1, 28, 28, 1)),
                              train=False)
  for name, leaf in jax.tree_util.tree_flatten_with_path(
      (g_vars["params"], d_vars["params"]))[0]:
    name, leaf = jax.tree_util.keystr(name), np.asarray(leaf)
    if name.endswith("['kernel']"):  # N(0, 0.02), not LeCun's 1/sqrt(fan_in).
      assert abs(leaf.std() - 0.02) < 0.002 and abs(leaf.mean()) < 0.002, name
    elif name.endswith("['scale']"):  # BatchNorm scales N(1, 0.02).
      assert abs(leaf.std() - 0.02) < 0.006 and abs(leaf.mean() - 1) < 0.01
    else:
      assert name.endswith("['bias']") and not leaf.any(), name


def _resnet_block_params(c_in, c_out, shortcut=True):
  """Two 3x3 convs and a 1x1 shortcut, all with biases."""
  return (9 * c_in * c_out + c_out + 9 * c_out * c_out + c_out
          + (c_in * c_out + c_out if shortcut else 0))


def _variable_shapes(arch, size, latent_dim=128):
  """(G's, D's) variables of `arch` for size x size x 3 images, as shapes
  only: no arrays are computed."""
  generator, discriminator = models.create(arch, image_shape=(size, size, 3))
  g_vars = jax.eval_shape(lambda: generator.init(
      jax.random.key(0), jnp.ones((1, latent_dim)), train=False))
  d_vars = jax.eval_shape(lambda: discriminator.init(
      jax.random.key(1), jnp.ones((1, size, size, 3)), train=False))
  return g_vars, d_vars


@pytest.mark.parametrize("arch,g_width,d_width,g_total,d_total", [
    ("resnet", 256, 128, 4_276_739, 1_053_825),
    ("resnet_small", 64, 64, 368_771, 264_769)])
def test_resnet_32_parameter_count(arch, g_width, d_width, g_total, d_total):
  """SNGAN's CIFAR-10 networks: about 4.3M (G) and 1.05M (D) params."""
  g_vars, d_vars = _variable_shapes(arch, size=32)
  bn = lambda c: 2 * c
  g, d = g_width, d_width
  g_expected = (128 * 16 * g + 16 * g  # Dense to 4x4xg.
                + 3 * (bn(g) + bn(g) + _resnet_block_params(g, g))
                + bn(g) + 9 * g * 3 + 3)  # Output conv.
  d_expected = (_resnet_block_params(3, d)  # Down to 16x16.
                + _resnet_block_params(d, d)  # Down to 8x8.
                + 2 * _resnet_block_params(d, d, shortcut=False)
                + d + 1)  # Dense logit.
  assert _count(g_vars["params"]) == g_expected == g_total
  assert _count(d_vars["params"]) == d_expected == d_total
  # D is spectrally normalised (u, sigma per weight) and has no BatchNorm.
  stats = [jax.tree_util.keystr(path) for path, _ in
           jax.tree_util.tree_flatten_with_path(d_vars["batch_stats"])[0]]
  assert sum(s.endswith("/u']") for s in stats) == 3 + 3 + 2 + 2 + 1
  assert not any("BatchNorm" in s for s in stats)


@pytest.mark.parametrize("arch,f,g_total,d_total", [
    ("resnet_pyramid", 64, 12_220_675, 9_578_689),
    ("resnet_pyramid_small", 16, 1_162_051, 599_857)])
def test_resnet_pyramid_64_parameter_count(arch, f, g_total, d_total):
  """Widths double at each halving: G 16f at 4x4 to f at 64x64; D f at 64x64
  to 4f at 8x8, then two plain blocks at 8f."""
  g_vars, d_vars = _variable_shapes(arch, size=64)
  bn = lambda c: 2 * c
  g_widths = [16 * f, 8 * f, 4 * f, 2 * f, f]
  g_expected = (128 * 16 * g_widths[0] + 16 * g_widths[0]
                + sum(bn(c_in) + bn(c_out) + _resnet_block_params(c_in, c_out)
                      for c_in, c_out in zip(g_widths, g_widths[1:]))
                + bn(f) + 9 * f * 3 + 3)
  d_expected = (_resnet_block_params(3, f) + _resnet_block_params(f, 2 * f)
                + _resnet_block_params(2 * f, 4 * f)
                + _resnet_block_params(4 * f, 8 * f)  # Plain: 1x1 shortcut.
                + _resnet_block_params(8 * f, 8 * f, shortcut=False)
                + 8 * f + 1)
  assert _count(g_vars["params"]) == g_expected == g_total
  assert _count(d_vars["params"]) == d_expected == d_total


def test_resnet_projection_head_adds_the_label_embedding_product():
  generator, _ = models.create("resnet_tiny", image_shape=(32, 32, 3))
  discriminator = resnet.ResNetDiscriminator(features=8, num_classes=10,
                                             spectral_norm=False)
  images = jax.random.uniform(jax.random.key(0), (4, 32, 32, 3), minval=-1)
  labels = jnp.array([0, 3, 3, 9])
  variables = discriminator.init(jax.random.key(1), images, train=False,
                                 labels=labels)
  logits, features = discriminator.apply(
      variables, images, train=False, labels=labels,
      capture_intermediates=lambda module, _: isinstance(module, nn.Dense))
  h = features["intermediates"]["Dense_0"]["__call__"][0]
  embedding = variables["params"]["ClassEmbedding_0"]["embedding"]
  # logits = dense(h) + <embed(y), h>, with h the pooled features.
  dense_input = _dense_input(discriminator, variables, images)
  np.testing.assert_allclose(
      logits, h[:, 0] + np.sum(np.asarray(embedding)[labels] * dense_input, 1),
      rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="pass labels"):
    discriminator.apply(variables, images, train=False)
  del generator


def test_dcgan_projection_head_and_generator_label_embedding():
  shape = (28, 28, 1)
  discriminator = dcgan.DCGANDiscriminator(image_shape=shape, features=8,
                                           batch_norm=False, num_classes=10)
  images = jax.random.uniform(jax.random.key(0), (4,) + shape, minval=-1)
  labels = jnp.array([0, 3, 3, 9])
  variables = discriminator.init(jax.random.key(1), images, train=False,
                                 labels=labels)
  logits, state = discriminator.apply(
      variables, images, train=False, labels=labels,
      capture_intermediates=lambda module, _: isinstance(
          module, (nn.Dense, layers.Conv)), mutable=["intermediates"])
  seen = state["intermediates"]
  # h: the last conv's activations, flattened (8 * 2 channels at 7x7).
  h = np.asarray(nn.leaky_relu(seen["Conv_1"]["__call__"][0], 0.2))
  h = h.reshape(4, -1)
  embedding = np.asarray(
      variables["params"]["ClassEmbedding_0"]["embedding"])
  assert embedding.shape == (10, 7 * 7 * 16)
  np.testing.assert_allclose(
      logits, seen["Dense_0"]["__call__"][0][:, 0]
      + np.sum(embedding[labels] * h, 1), rtol=1e-4, atol=1e-4)
  # G: a 50-d class embedding beside z; its first layer reads 100 + 50.
  generator = dcgan.DCGANGenerator(image_shape=shape, features=8,
                                   num_classes=10)
  z = jax.random.normal(jax.random.key(2), (4, 100))
  g_vars = generator.init(jax.random.key(3), z, train=False, labels=labels)
  assert g_vars["params"]["ClassEmbedding_0"]["embedding"].shape == (10, 50)
  assert g_vars["params"]["Dense_0"]["kernel"].shape == (150, 7 * 7 * 16)
  out = generator.apply(g_vars, z, train=False, labels=labels)
  other = generator.apply(g_vars, z, train=False, labels=labels + 1)
  assert out.shape == (4,) + shape and not np.allclose(out, other)
  with pytest.raises(ValueError, match="class-conditional"):
    generator.apply(g_vars, z, train=False)


@pytest.mark.parametrize("arch", ["dcgan_tiny", "mlp_tiny", "resnet_tiny"])
def test_conditional_networks_take_labels(arch):
  """Every registered pair conditions both players: same inputs, other
  labels, other outputs; unconditional ones are unchanged by the option."""
  generator, discriminator = models.create(arch, image_shape=(28, 28, 1),
                                           num_classes=10)
  z = jax.random.normal(jax.random.key(0), (4, 100))
  images = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1), minval=-1)
  labels = jnp.array([0, 1, 2, 3])
  rngs = {"params": jax.random.key(2), "dropout": jax.random.key(3)}
  for module, x in ((generator, z), (discriminator, images)):
    variables = module.init(rngs, x, train=False, labels=labels)
    # Trained weights: the conditional BatchNorm starts as the identity.
    variables = {**variables, "params": jax.tree.map(
        lambda v: v + 0.1 * jax.random.normal(jax.random.key(4), v.shape),
        variables["params"])}
    out = module.apply(variables, x, train=False, labels=labels)
    other = module.apply(variables, x, train=False, labels=labels[::-1])
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(other))
    assert not np.allclose(out, other), type(module).__name__
    # The same module without classes has no labels argument to miss.
    plain = module.clone(num_classes=0)
    plain.init(rngs, x, train=False)


def test_class_gain_bias_starts_as_the_identity():
  layer = conditioning.ClassGainBias(num_classes=3)
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 5))
  labels = jnp.array([2, 0])
  variables = layer.init(jax.random.key(1), x, labels)
  np.testing.assert_array_equal(layer.apply(variables, x, labels), x)
  gain = np.arange(15.0).reshape(3, 5) / 10
  bias = -np.arange(15.0).reshape(3, 5)
  out = layer.apply({"params": {"gain": {"embedding": gain},
                                "bias": {"embedding": bias}}}, x, labels)
  expected = (np.asarray(x) * (1 + gain[[2, 0]][:, None, None, :])
              + bias[[2, 0]][:, None, None, :])
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def _dense_input(discriminator, variables, images):
  """The pooled features h [B, C] that D's dense layer reads."""
  _, state = discriminator.apply(
      variables, images, train=False, labels=jnp.zeros(4, jnp.int32),
      capture_intermediates=lambda module, _: isinstance(
          module, resnet.DiscriminatorBlock), mutable=["intermediates"])
  blocks = state["intermediates"]
  last = sorted(k for k in blocks if k.startswith("DiscriminatorBlock"))[-1]
  h = np.asarray(blocks[last]["__call__"][0])
  return np.maximum(h, 0).sum(axis=(1, 2))
