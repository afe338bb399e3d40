import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import translation


def test_patch_layers_scale_the_papers_70_pixel_field():
  assert [translation.receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
  assert translation.patch_layers(256) == 3  # The paper's 70x70 PatchGAN.
  assert translation.patch_layers(128) == 2
  assert translation.patch_layers(64) == translation.patch_layers(28) == 1


@pytest.mark.parametrize("n_layers", [1, 2])
def test_a_patch_logit_sees_exactly_its_receptive_field(n_layers):
  discriminator = translation.PatchDiscriminator(n_layers=n_layers,
                                                 features=4)
  image = jax.random.normal(jax.random.key(0), (1, 48, 48, 1))
  variables = jax.jit(discriminator.init, static_argnames="train")(
      jax.random.key(1), None, image, train=False)
  centre = 48 // 2 ** n_layers // 2
  gradient = jax.jit(jax.grad(lambda x: discriminator.apply(
      variables, None, x, train=False)[0, centre, centre]))(image)
  rows, cols = np.nonzero(np.abs(np.asarray(gradient[0, ..., 0])) > 0)
  field = translation.receptive_field(n_layers)
  assert rows.max() - rows.min() + 1 == cols.max() - cols.min() + 1 == field


def test_unet_maps_sources_to_images_of_the_target_shape():
  # Grey sources to colour (colorize), at 28: padded to 32, cropped back.
  shape, source_channels = (28, 28, 3), 1
  generator, discriminator = translation.create(shape, features=4)
  source = jax.random.uniform(jax.random.key(0),
                              (2,) + shape[:2] + (source_channels,),
                              minval=-1)

  @jax.jit  # One compilation for all of it.
  def run(source):
    g_vars = generator.init(jax.random.key(1), source, train=False)
    apply = lambda s: generator.apply(g_vars, s, train=False)
    image = apply(source)
    gradient = jax.grad(lambda s: apply(s)[0, 0, 0, 0])(source)
    d_vars = discriminator.init(jax.random.key(3), source, image, train=False)
    return image, gradient, discriminator.apply(d_vars, source, image,
                                                train=False)

  image, gradient, logits = run(source)
  assert image.shape == (2,) + shape and image.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(image))) <= 1.0
  # The 1x1 bottleneck: every output pixel depends on every input pixel.
  assert np.all(np.abs(np.asarray(gradient[0, -4:, -4:])) > 0)
  assert logits.shape == (2, shape[0] // 2, shape[1] // 2)
