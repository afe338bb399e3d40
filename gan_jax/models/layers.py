"""Flax layers rewritten for XLA:CPU speed, computing the same functions.

`ConvTranspose`, `Conv` and `BatchNorm` have the class names, parameters and
statistics of `flax.linen.ConvTranspose` / `Conv` (with `padding="SAME"`) /
`BatchNorm`, so checkpoints are interchangeable, and compute the same function
(tests/test_layers.py checks values and gradients against flax). Only the
arithmetic differs:

* A transposed convolution with stride s is s*s small stride-1 convolutions,
  one per output phase, interleaved by depth-to-space ("sub-pixel"
  convolution, Shi et al. 2016). XLA:CPU's native conv-transpose gradient is
  about 10x slower.
* A convolution with stride s over an input of few channels is a stride-1
  convolution over the space-to-depth input; a wider one keeps XLA's strided
  convolution but takes its input gradient as one stride-1 convolution per
  input phase, 3x faster than XLA's own at the DCGAN discriminator's
  layer (`convolution.strided_input_gradient`).
* A convolution's input gradient has a hand-written derivative by the kernel
  (`convolution.conv2d`), so gradient penalties' double backward avoids XLA:CPU's slow
  base-dilated convolution over the batch.
* Where a convolution's window is larger than the map it slides over (the
  forward pass, or XLA's input or kernel gradient, near a U-Net's 1x1
  bottleneck), it is one matmul over input patches instead: XLA:CPU's
  convolution is 10-100x slower there.
* BatchNorm's per-channel sums (forward and backward) and a bias's
  gradient are matmuls with a ones vector, which XLA:CPU runs faster than
  reductions.
* `elu` computes its gradient from its output (exp(x) = elu(x) + 1 below
  zero), so the backward pass does not evaluate exp again; in a whole VAE
  step XLA:CPU otherwise spends more on ELU's exps than on a convolution.

Kernels are rearranged inside the forward pass, so gradients flow to the
original kernel layout.
"""

import functools
from typing import Any, Callable, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models.convolution import (conv2d, depth_to_space, few_outputs,
                                        space_to_depth, tap_index,
                                        tap_products, window_sums)

# The collection every discriminator and encoder sows its hidden layers'
# activations into, by layer name (e.g. "block_0"), for linear probes
# (gan_jax.probe). Sowing costs nothing unless the collection is mutable.
FEATURES = "features"

Array = jax.Array
Dtype = Any




def _column_sums(rows: Array) -> Array:
  """[M, C] -> [C] as a ones-vector matmul; XLA:CPU reduces ~5x slower."""
  return jnp.ones((1, rows.shape[0]), rows.dtype) @ rows


@jax.custom_vjp
def add_bias(y: Array, bias: Array) -> Array:
  """y [..., C] + bias [C], whose bias gradient is a matmul
  (`_column_sums`): in a profile of the DCGAN step at batch 256, XLA:CPU's
  reductions for it took 3-4 ms each (a whole-step A/B is within noise)."""
  return y + bias


def _add_bias_fwd(y, bias):
  return y + bias, None


def _add_bias_bwd(_, dy):
  rows = dy.reshape(-1, dy.shape[-1]).astype(jnp.float32)
  return dy, _column_sums(rows)[0].astype(dy.dtype)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


def _conv_transpose_phases(kernel_size: int, stride: int):
  """How a 1-D transposed conv (padding="SAME") splits into output phases.

  Output o = stride * m + r (phase r) is a stride-1 correlation of the input:
  y[s*m + r] = sum_j x[m + offset_r + j] * k_r[j]. Returns, for each phase r,
  (offset_r, taps_r) where taps_r lists the transposed kernel's tap for each j
  (in order). Derived from `jax.lax.conv_transpose`'s SAME padding: the output
  correlates the stride-dilated input padded by pad_a on the left.
  """
  k, s = kernel_size, stride
  pad_a = k - 1 if s > k - 1 else int(np.ceil((k + s - 2) / 2))
  phases = []
  for r in range(s):
    # Dilated index o + t - pad_a holds a real input when it divides by s.
    taps = [t for t in range(k) if (r + t - pad_a) % s == 0]
    phases.append(((r + taps[0] - pad_a) // s, taps))
  return phases


def _phase_kernel(kernel, taps_h, taps_w):
  """The stride-1 kernel [len(taps_h), len(taps_w), C_in, C_out] of a phase."""
  return kernel[tap_index(taps_h)][:, tap_index(taps_w)]


def _phases_by_tap_matmul(x, kernel, phases_h, phases_w):
  """Every phase's output from one matmul of x to all kh * kw taps' outputs
  (C_in -> kh * kw * C_out), each phase summing its taps' shifted windows
  (`convolution.window_sums`): the transposed convolution's own formula,
  each input pixel spreading x @ kernel over its output window. For few
  output channels, where XLA:CPU runs the phase convolutions slowly."""
  kw = kernel.shape[1]
  h, w = x.shape[1:3]
  z = tap_products(x, kernel)
  # Phase (r, q)'s output m reads x[m + offset + j] times tap taps[j].
  groups = tuple(
      tuple((tap_h * kw + tap_w, (off_h + i, off_w + j))
            for i, tap_h in enumerate(taps_h)
            for j, tap_w in enumerate(taps_w))
      for off_h, taps_h in phases_h for off_w, taps_w in phases_w)
  outputs = window_sums(z, groups, (1, 1), (h, w))
  return [list(outputs[r * len(phases_w):(r + 1) * len(phases_w)])
          for r in range(len(phases_h))]


class ConvTranspose(nn.Module):
  """`nn.ConvTranspose(features, kernel_size, strides, padding="SAME")`.

  Input [B, H, W, C_in] -> output [B, H * s_h, W * s_w, features], computed as
  s_h * s_w stride-1 convs (one per output phase) interleaved by depth-to-space.
  With few outputs per tap (kh * kw * features <= C_in: an image's 1 or 3
  channels) every phase comes from one matmul to all the taps' outputs
  (`convolution.conv_as_tap_matmul`'s idea); for other layers with few
  output channels the phases run as one wider conv, which XLA's CPU backend
  runs faster than several thin ones.
  """
  features: int
  kernel_size: Tuple[int, int] = (4, 4)
  strides: Tuple[int, int] = (2, 2)
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros
  min_features_per_phase_conv: int = 16

  @nn.compact
  def __call__(self, x: Array) -> Array:
    (kh, kw), (sh, sw) = self.kernel_size, self.strides
    if kh < sh or kw < sw:
      raise ValueError(f"kernel {self.kernel_size} smaller than strides "
                       f"{self.strides} leaves output pixels unconnected.")
    kernel = self.param("kernel", self.kernel_init,
                        (kh, kw, x.shape[-1], self.features), self.param_dtype)
    kernel = kernel.astype(self.dtype)
    x = x.astype(self.dtype)
    phases_h = _conv_transpose_phases(kh, sh)
    phases_w = _conv_transpose_phases(kw, sw)
    if few_outputs(kernel.shape):
      phase_outputs = _phases_by_tap_matmul(x, kernel, phases_h, phases_w)
    elif self.features >= self.min_features_per_phase_conv:
      phase_outputs = [[
          conv2d(x, _phase_kernel(kernel, taps_h, taps_w), (1, 1),
                 ((-off_h, off_h + len(taps_h) - 1),
                  (-off_w, off_w + len(taps_w) - 1)))
          for off_w, taps_w in phases_w] for off_h, taps_h in phases_h]
    else:
      phase_outputs = self._phases_as_one_conv(x, kernel, phases_h, phases_w)
    y = depth_to_space(phase_outputs)
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,),
                        self.param_dtype)
      y = add_bias(y, bias.astype(self.dtype))
    return y

  def _phases_as_one_conv(self, x, kernel, phases_h, phases_w):
    """All phases from one conv over the union of their input windows."""

    def embed(phases, size):  # [phase, window position, tap] 0/1 matrix.
      low = min(off for off, _ in phases)
      high = max(off + len(taps) - 1 for off, taps in phases)
      select = np.zeros((len(phases), high - low + 1, size), np.float32)
      for r, (off, taps) in enumerate(phases):
        for j, t in enumerate(taps):
          select[r, off - low + j, t] = 1.0
      return select, (-low, high)

    select_h, pad_h = embed(phases_h, kernel.shape[0])
    select_w, pad_w = embed(phases_w, kernel.shape[1])
    wide_kernel = jnp.einsum(
        "ajt,bku,tuio->jkiabo", select_h.astype(kernel.dtype),
        select_w.astype(kernel.dtype), kernel)
    sh, sw = len(phases_h), len(phases_w)
    wide_kernel = wide_kernel.reshape(wide_kernel.shape[:3] +
                                      (sh * sw * self.features,))
    y = conv2d(x, wide_kernel, (1, 1), (pad_h, pad_w))
    y = y.reshape(y.shape[:3] + (sh, sw, self.features))
    return [[y[:, :, :, rh, rw] for rw in range(sw)] for rh in range(sh)]


class Conv(nn.Module):
  """`nn.Conv(features, kernel_size, strides, padding="SAME")`.

  Input [B, H, W, C_in] -> [B, ceil(H / s_h), ceil(W / s_w), features]. For
  inputs of few channels (the discriminator's first layer) this runs as a
  stride-1 conv over the space-to-depth input, which has s_h * s_w times the
  channels and so better fills XLA:CPU's kernels (a kernel that is not a
  multiple of the strides is zero-padded to one). Wider inputs use the
  strided conv directly, which measured faster there, and take their input
  gradient by input phases (`convolution.strided_input_gradient`).
  """
  features: int
  kernel_size: Tuple[int, int] = (4, 4)
  strides: Tuple[int, int] = (2, 2)
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros
  max_channels_for_space_to_depth: int = 16

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kh, kw = self.kernel_size
    c = x.shape[-1]
    kernel = self.param("kernel", self.kernel_init, (kh, kw, c, self.features),
                        self.param_dtype).astype(self.dtype)
    x = x.astype(self.dtype)
    if c <= self.max_channels_for_space_to_depth:
      y = self._space_to_depth_conv(x, kernel)
    else:
      y = conv2d(x, kernel, tuple(self.strides), "SAME")
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,),
                        self.param_dtype)
      y = add_bias(y, bias.astype(self.dtype))
    return y

  def _space_to_depth_conv(self, x: Array, kernel: Array) -> Array:
    pads = jax.lax.padtype_to_pads(x.shape[1:3], self.kernel_size,
                                   self.strides, "SAME")
    x, kernel = space_to_depth(x, kernel, pads, self.strides)
    return conv2d(x, kernel, (1, 1), "VALID")


def spectral_normalized(layer: nn.Module, train: bool) -> Callable[..., Array]:
  """`layer` with each weight matrix divided by its largest singular value.

  flax's `nn.SpectralNorm`: sigma comes from one power iteration started at
  the stored vector u (a kernel [..., C_out] is read as a matrix
  [-1, C_out]); biases and other vectors are left alone. u and sigma live
  in the `batch_stats` collection, never in params, so no optimizer or
  EMA touches them. A train-mode call keeps its iterated u (when the caller
  keeps `batch_stats`); an eval-mode call iterates from the stored u without
  keeping it, so its output is a fixed function of the variables.
  """
  return functools.partial(nn.SpectralNorm(layer), update_stats=train)


def spectral_wrapper(enabled: bool, train: bool
                     ) -> Callable[[nn.Module], Callable[..., Array]]:
  """layer -> `spectral_normalized(layer, train)` if `enabled`, else layer."""
  if not enabled:
    return lambda layer: layer
  return lambda layer: spectral_normalized(layer, train)


@jax.custom_vjp
def elu(x: Array) -> Array:
  """`jax.nn.elu` (alpha = 1), with its gradient computed from its output."""
  return jnp.where(x > 0, x, jnp.expm1(jnp.minimum(x, 0)))


def _elu_fwd(x):
  y = elu(x)
  return y, y


def _elu_bwd(y, cotangent):
  # d elu / dx = 1 above zero, exp(x) = y + 1 below.
  return (cotangent * jnp.where(y > 0, 1, y + 1).astype(cotangent.dtype),)


elu.defvjp(_elu_fwd, _elu_bwd)


@jax.custom_vjp
def _normalize_with_batch_stats(x2d, scale, bias, epsilon):
  """Batch-statistics normalisation of [M, C] rows; returns (y, mean, var)."""
  (y, mean, var), _ = _normalize_fwd(x2d, scale, bias, epsilon)
  return y, mean, var


# Each sum is its own matmul: concatenating the two operands first (one
# matmul) copies the activations, and measured 2-4x slower for the layer's
# forward and backward passes (27.4 against 6.6 ms at [256, 14, 14, 64]).
def _normalize_fwd(x2d, scale, bias, epsilon):
  m = x2d.shape[0]
  mean = _column_sums(x2d)[0] / m
  var = jnp.maximum(_column_sums(x2d * x2d)[0] / m - mean * mean,
                    0.0)  # flax's "fast variance".
  inv_std = jax.lax.rsqrt(var + epsilon)
  y = (x2d - mean) * (inv_std * scale) + bias
  return (y, mean, var), (x2d, mean, inv_std, scale)


def _normalize_bwd(residuals, cotangents):
  # The statistics outputs only feed running averages: no gradient flows back
  # through them (as in flax, where they are never part of a loss). x_hat is
  # recomputed from the input, which is held anyway, rather than kept as a
  # second activation-sized residual.
  x2d, mean, inv_std, scale = residuals
  dy = cotangents[0]
  x_hat = (x2d - mean) * inv_std
  d_bias = _column_sums(dy)[0]
  d_scale = _column_sums(dy * x_hat)[0]
  m = dy.shape[0]
  dx = (scale * inv_std) * (dy - (d_bias + x_hat * d_scale) / m)
  return dx, d_scale, d_bias, None


_normalize_with_batch_stats.defvjp(_normalize_fwd, _normalize_bwd)


class BatchNorm(nn.Module):
  """`nn.BatchNorm` over the last axis, with matmul-based reductions.

  Same parameters (`scale`, `bias`), statistics (`batch_stats/mean`, `var`),
  fast variance and update rule as flax's layer (tests/test_layers.py checks
  values, gradients and running averages), but the per-channel sums of the
  forward and backward passes run as matmuls, and the backward pass is the
  closed form. Statistics are computed in float32 whatever `dtype` is.
  """
  use_running_average: bool = False
  momentum: float = 0.99
  epsilon: float = 1e-5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  scale_init: Any = nn.initializers.ones

  @nn.compact
  def __call__(self, x: Array) -> Array:
    features = x.shape[-1]
    scale = self.param("scale", self.scale_init, (features,),
                       self.param_dtype)
    bias = self.param("bias", nn.initializers.zeros, (features,),
                      self.param_dtype)
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,),
                            jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, (features,),
                           jnp.float32)
    rows = x.reshape(-1, features).astype(jnp.float32)
    scale, bias = scale.astype(jnp.float32), bias.astype(jnp.float32)
    if self.use_running_average:
      y = (rows - ra_mean.value) * jax.lax.rsqrt(ra_var.value + self.epsilon)
      y = y * scale + bias
    else:
      y, mean, var = _normalize_with_batch_stats(rows, scale, bias,
                                                 self.epsilon)
      if not self.is_initializing():
        ra_mean.value = (self.momentum * ra_mean.value
                         + (1 - self.momentum) * mean)
        ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    return y.reshape(x.shape).astype(self.dtype)


class Dropout(nn.Module):
  """Inverted dropout whose mask is sharded like its input.

  flax's nn.Dropout draws an unsharded mask, which explicit-sharding meshes
  reject next to a batch-sharded input.
  """
  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    if deterministic or self.rate == 0.0:
      return x
    keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - self.rate,
                                x.shape, out_sharding=jax.typeof(x).sharding)
    return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x))
