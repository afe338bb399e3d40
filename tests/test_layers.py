import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import layers


def _params_and_input(ref, shape, seed=0):
  x = jax.random.normal(jax.random.key(seed), shape)
  variables = ref.init(jax.random.key(seed + 1), x)
  # Non-zero biases, so they are checked too.
  variables = jax.tree.map(lambda a: a + 0.1, variables)
  return variables, x


def _assert_same_function(ref, ours, variables, x):
  np.testing.assert_allclose(ours.apply(variables, x), ref.apply(variables, x),
                             atol=1e-5, rtol=1e-5)
  loss = lambda m: lambda v, x: jnp.sum(jnp.sin(m.apply(v, x)))
  ref_grads = jax.grad(loss(ref), argnums=(0, 1))(variables, x)
  our_grads = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4,
                                                       rtol=1e-4),
               our_grads, ref_grads)


@pytest.mark.parametrize("size", [4, 7, 5])
@pytest.mark.parametrize("kernel,stride", [(4, 2), (3, 2), (5, 2), (3, 1),
                                           (4, 3)])
@pytest.mark.parametrize("features", [3, 24])  # One wide conv / per phase.
def test_conv_transpose_is_flax_conv_transpose(size, kernel, stride, features):
  ref = nn.ConvTranspose(features, (kernel, kernel), (stride, stride),
                         padding="SAME")
  ours = layers.ConvTranspose(features, (kernel, kernel), (stride, stride))
  variables, x = _params_and_input(ref, (2, size, size, 5))
  assert ours.apply(variables, x).shape == (2, size * stride, size * stride,
                                            features)
  _assert_same_function(ref, ours, variables, x)


@pytest.mark.parametrize("size", [28, 14, 7, 8])
@pytest.mark.parametrize("kernel,stride", [(4, 2), (2, 2), (3, 1)])
def test_strided_conv_is_flax_conv(size, kernel, stride):
  ref = nn.Conv(6, (kernel, kernel), (stride, stride), padding="SAME")
  ours = layers.Conv(6, (kernel, kernel), (stride, stride))
  variables, x = _params_and_input(ref, (2, size, size, 3))
  _assert_same_function(ref, ours, variables, x)


def test_rejects_unsupported_kernels():
  x = jnp.zeros((1, 4, 4, 1))
  with pytest.raises(ValueError, match="multiple of"):
    layers.Conv(2, (3, 3), (2, 2)).init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="smaller than strides"):
    layers.ConvTranspose(2, (1, 1), (2, 2)).init(jax.random.key(0), x)
