import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import convolution, layers


def _params_and_input(ref, shape, seed=0):
  x = jax.random.normal(jax.random.key(seed), shape)
  variables = ref.init(jax.random.key(seed + 1), x)
  # Non-zero biases, so they are checked too.
  variables = jax.tree.map(lambda a: a + 0.1, variables)
  return variables, x


def _assert_same_function(ref, ours, variables, x):
  loss = lambda m: lambda v, x: jnp.sum(jnp.sin(m.apply(v, x)))

  @jax.jit  # One program per test: op-by-op dispatch compiles every op.
  def outputs_and_grads(variables, x):
    return ((ours.apply(variables, x), ref.apply(variables, x)),
            jax.grad(loss(ours), argnums=(0, 1))(variables, x),
            jax.grad(loss(ref), argnums=(0, 1))(variables, x))

  (our_y, ref_y), our_grads, ref_grads = outputs_and_grads(variables, x)
  np.testing.assert_allclose(our_y, ref_y, atol=1e-5, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4,
                                                       rtol=1e-4),
               our_grads, ref_grads)


# Sizes 1 and 2: phase kernels exceed the map (the matmul-over-patches path).
@pytest.mark.parametrize("size", [1, 2, 4, 7])
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


# 1, 2, 4: the window exceeds the map or the input gradient's (patch path).
@pytest.mark.parametrize("size", [28, 7, 8, 4, 2, 1])
@pytest.mark.parametrize("kernel,stride", [(4, 2), (2, 2), (3, 1), (3, 2)])
@pytest.mark.parametrize("channels", [3, 24])  # Space-to-depth / strided.
def test_strided_conv_is_flax_conv(size, kernel, stride, channels):
  ref = nn.Conv(6, (kernel, kernel), (stride, stride), padding="SAME")
  ours = layers.Conv(6, (kernel, kernel), (stride, stride))
  variables, x = _params_and_input(ref, (2, size, size, channels))
  _assert_same_function(ref, ours, variables, x)


# Space-to-depth / strided / few input channels (the input gradient is a
# matmul to its taps).
@pytest.mark.parametrize("channels,features", [(3, 6), (24, 6), (1, 16)])
@pytest.mark.parametrize("size", [8, 4, 2])  # 4, 2: patch-matmul paths.
def test_conv_second_derivatives_are_flax_convs(channels, features, size):
  """A gradient penalty's double backward (R1: E||grad_x D(x)||^2 by the
  kernel and bias), and its gradient by the input, match flax's."""
  ref = nn.Conv(features, (4, 4), (2, 2), padding="SAME")
  ours = layers.Conv(features, (4, 4), (2, 2))
  variables, x = _params_and_input(ref, (2, size, size, channels))

  def penalty(module):
    def of(v, x):
      d = lambda x: jnp.sum(jnp.sin(module.apply(v, x)))
      return jnp.sum(jnp.square(jax.grad(d)(x)))
    return of

  ref_grads = jax.grad(penalty(ref), argnums=(0, 1))(variables, x)
  our_grads = jax.grad(penalty(ours), argnums=(0, 1))(variables, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4,
                                                       rtol=1e-4),
               our_grads, ref_grads)


# Few outputs for many inputs: the forward pass, kernel gradient or input
# gradient is a matmul to every tap's outputs (`conv_as_tap_matmul`).
@pytest.mark.parametrize("ref,ours,channels", [
    (nn.ConvTranspose(1, (4, 4), (2, 2), padding="SAME"),  # Its phases.
     layers.ConvTranspose(1, (4, 4), (2, 2)), 40),
    (nn.Conv(16, (4, 4), (2, 2), padding="SAME"),  # Space-to-depth.
     layers.Conv(16, (4, 4), (2, 2)), 1),
    (nn.Conv(16, (3, 3), (1, 1), padding="SAME"),
     layers.Conv(16, (3, 3), (1, 1)), 1),
    (nn.Conv(2, (3, 3), (1, 1), padding="SAME"),
     layers.Conv(2, (3, 3), (1, 1)), 24)])
def test_few_channel_convs_are_flax_convs(ref, ours, channels):
  kernel = jax.eval_shape(ref.init, jax.random.key(0),
                          jnp.zeros((1, 8, 8, channels)))["params"]["kernel"]
  assert (convolution.few_outputs(kernel.shape)
          or convolution.few_outputs(kernel.shape[:2] + kernel.shape[:1:-1]))
  variables, x = _params_and_input(ref, (2, 7, 7, channels))
  _assert_same_function(ref, ours, variables, x)


@pytest.mark.parametrize("size,kernel,stride,pads", [
    (2, 4, 2, ((1, 1), (1, 1))),     # Window exceeds the map.
    (5, 3, 2, ((2, 0), (0, 2))),     # Asymmetric; some taps read padding.
    (3, 2, 1, ((-1, 1), (1, -1))),   # Negative padding crops.
    (1, 2, 4, ((3, 3), (3, 3))),     # Every row's taps read padding only.
])
@pytest.mark.parametrize("conv", [convolution.conv_as_matmul,
                                  convolution.conv_as_tap_matmul])
def test_conv_rewrites_are_xla_conv(size, kernel, stride, pads, conv):
  x = jax.random.normal(jax.random.key(0), (2, size, size + 1, 3))
  k = jax.random.normal(jax.random.key(1), (kernel, kernel, 3, 4))
  xla = lambda x, k: jax.lax.conv_general_dilated(
      x, k, (stride, stride), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))
  ours = lambda x, k: conv(x, k, pads, (stride, stride))
  want, got = xla(x, k), ours(x, k)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
  dy = jax.random.normal(jax.random.key(2), want.shape)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4,
                                                       rtol=1e-4),
               jax.vjp(ours, x, k)[1](dy), jax.vjp(xla, x, k)[1](dy))


@pytest.mark.parametrize("size,kernel,stride,pads", [
    ((14, 14), 4, 2, ((1, 1), (1, 1))),  # The DCGAN discriminator's layer.
    ((7, 9), 4, 2, ((1, 2), (1, 2))),    # Odd sizes: unequal phases.
    ((8, 8), 3, 3, ((0, 1), (2, 0))),    # Stride 3, asymmetric padding.
    ((9, 6), 2, 3, ((0, 0), (0, 0))),    # Kernel < stride: a phase no tap
                                         # reaches has a zero gradient.
    ((2, 2), 4, 2, ((1, 1), (1, 1))),    # Phase windows exceed the map.
])
def test_strided_input_gradient_is_xla_input_gradient(size, kernel, stride,
                                                      pads):
  x = jax.random.normal(jax.random.key(0), (2,) + size + (5,))
  k = jax.random.normal(jax.random.key(1), (kernel, kernel, 5, 6))
  xla = lambda x: convolution.xla_conv(x, k, pads, (stride, stride))
  y, vjp = jax.vjp(xla, x)
  dy = jax.random.normal(jax.random.key(2), y.shape)
  got = convolution.strided_input_gradient(dy, k, pads, (stride, stride),
                                           size)
  np.testing.assert_allclose(got, vjp(dy)[0], atol=1e-5, rtol=1e-5)


def test_rejects_unsupported_kernels():
  x = jnp.zeros((1, 4, 4, 1))
  with pytest.raises(ValueError, match="smaller than strides"):
    layers.ConvTranspose(2, (1, 1), (2, 2)).init(jax.random.key(0), x)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_batch_norm_is_flax_batch_norm(train, dtype):
  x = jax.random.normal(jax.random.key(0), (16, 7, 7, 12)) * 3.0 + 1.0
  kwargs = dict(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                dtype=dtype)
  ref, ours = nn.BatchNorm(**kwargs), layers.BatchNorm(**kwargs)
  variables = jax.tree.map(lambda a: a + 0.3, ref.init(jax.random.key(1), x))
  weights = jnp.arange(x.size).reshape(x.shape) / x.size

  def loss(module):
    def fn(variables, x):
      y, updates = module.apply(variables, x, mutable=["batch_stats"])
      assert y.dtype == dtype
      return jnp.sum(jnp.sin(y.astype(jnp.float32)) * weights), updates
    return fn

  tol = dict(rtol=2e-2, atol=2e-2) if dtype == jnp.bfloat16 else dict(
      rtol=1e-4, atol=1e-4)
  (ref_loss, ref_updates), ref_grads = jax.value_and_grad(
      loss(ref), argnums=(0, 1), has_aux=True)(variables, x)
  (our_loss, our_updates), our_grads = jax.value_and_grad(
      loss(ours), argnums=(0, 1), has_aux=True)(variables, x)
  np.testing.assert_allclose(our_loss, ref_loss, **tol)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **tol),
               (our_updates, our_grads), (ref_updates, ref_grads))
  if train:  # Running averages moved, exactly as flax moves them.
    assert not np.allclose(our_updates["batch_stats"]["mean"],
                           variables["batch_stats"]["mean"])


def test_elu_is_jax_elu_with_its_gradients():
  x = jnp.linspace(-6.0, 3.0, 101)
  np.testing.assert_allclose(layers.elu(x), jax.nn.elu(x), rtol=1e-6,
                             atol=1e-7)
  for order in (jax.grad, lambda f: jax.grad(jax.grad(f))):
    ours = jax.vmap(order(lambda v: layers.elu(v)))(x)
    theirs = jax.vmap(order(jax.nn.elu))(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
  assert layers.elu(jnp.ones(3, jnp.bfloat16)).dtype == jnp.bfloat16
