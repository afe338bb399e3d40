"""Convolution for XLA:CPU: `conv2d` computes `lax.conv_general_dilated`
(NHWC/HWIO) and its gradients, choosing per pass how.

* Its input gradient has a hand-written derivative by the kernel, so
  gradient penalties' double backward avoids XLA:CPU's slow base-dilated
  convolution over the batch.
* Where a pass's window is larger than the map it slides over (the forward
  pass, or XLA's input or kernel gradient, near a U-Net's 1x1 bottleneck),
  it is one matmul over input patches (`conv_as_matmul`): XLA:CPU's
  convolution is 10-100x slower there (benchmarks/conv_paths.py).
* Where a pass has few output channels (a generator's RGB or grey output,
  the input gradient of a discriminator's first layer), it is one matmul
  from the input channels to every tap's outputs, then a sum of shifted
  slices (`conv_as_tap_matmul`): XLA:CPU's convolution runs 2-4x slower
  there (benchmarks/conv_paths.py).
* A strided convolution's input gradient is one stride-1 convolution of
  the output gradient per input phase, interleaved
  (`strided_input_gradient`): 1.4-32x faster than XLA:CPU's own, up to
  1.8x than a stride-1 convolution over space-to-depth blocks
  (benchmarks/conv_paths.py).
"""

import functools
from typing import Callable, Tuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def _explicit_padding(size: Tuple[int, int], window: Tuple[int, int],
                      strides: Tuple[int, int], padding
                      ) -> Tuple[Tuple[int, int], ...]:
  """(low, high) pairs for "SAME", "VALID" or given pairs (may be < 0)."""
  if isinstance(padding, str):
    return tuple(jax.lax.padtype_to_pads(size, window, strides, padding))
  return tuple(tuple(p) for p in padding)


def _window_exceeds(window, size) -> bool:
  """Whether a window is larger than the map it slides over in some spatial
  dim. XLA:CPU's convolution is 10-100x slower there than the same product
  as a matmul over patches: 134 against 1.2 ms for a 4x4 conv of a 2x2 map
  (512 channels, batch 64), 228 against 16 ms for the input gradient of a
  4x4/2 conv of a 4x4 map (benchmarks/conv_paths.py). U-Nets meet it in
  the forward pass, the input gradient and the kernel gradient (whose
  window is the output gradient) near their bottleneck."""
  return any(w > n for w, n in zip(window, size))


def _tap_sees_input(tap: int, outputs: int, stride: int, low: int,
                    size: int) -> bool:
  """Whether kernel tap `tap` reads a real (not padded) input at some output
  position: padded index tap + stride * o lies in [low, low + size)."""
  return any(low <= tap + stride * o < low + size for o in range(outputs))


def tap_index(taps):
  """Evenly spaced taps as a static slice, whose gradient is a pad (an index
  array's is a scatter-add, ~20x slower on XLA:CPU for a 512x512 kernel);
  others as an index array."""
  step = taps[1] - taps[0] if len(taps) > 1 else 1
  if list(taps) == list(range(taps[0], taps[-1] + 1, step)):
    return slice(taps[0], taps[-1] + 1, step)
  return np.asarray(taps)


def conv_as_matmul(x: Array, kernel: Array, pads, strides) -> Array:
  """The convolution as one matmul over input patches (im2col): [B, H, W,
  C_in] -> [B, H', W', C_out]. Kernel taps that only ever read padding are
  dropped (most of them when the window exceeds the map). Differentiates
  into slices, pads and matmuls only."""
  kh, kw, _, c_out = kernel.shape
  (low_h, high_h), (low_w, high_w) = pads
  sh, sw = strides
  _, h, w, _ = x.shape
  out_h = (h + low_h + high_h - kh) // sh + 1
  out_w = (w + low_w + high_w - kw) // sw + 1
  rows = [i for i in range(kh) if _tap_sees_input(i, out_h, sh, low_h, h)]
  cols = [j for j in range(kw) if _tap_sees_input(j, out_w, sw, low_w, w)]
  if not rows or not cols:  # Every output reads padding only.
    return jnp.zeros((x.shape[0], out_h, out_w, c_out), x.dtype)
  x = jax.lax.pad(x, jnp.zeros((), x.dtype),
                  ((0, 0, 0), (low_h, high_h, 0), (low_w, high_w, 0),
                   (0, 0, 0)))
  patches = jnp.concatenate(
      [x[:, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw]
       for i in rows for j in cols], axis=-1)
  taps = kernel[tap_index(rows)][:, tap_index(cols)]
  return patches @ taps.reshape(-1, c_out)


def _spans(strides, size) -> Tuple[int, int]:
  """Rows and columns a strided window of `size` outputs covers."""
  return tuple(s * (n - 1) + 1 for s, n in zip(strides, size))


def _padded_for(a: Array, starts, spans):
  """`a` [B, H, W, ...] zero-padded so that every window (start, span)
  lies inside it; returns it and the padding added before row and column
  0."""
  low = [max(0, *(-start[d] for start in starts)) for d in (0, 1)]
  high = [max(0, *(start[d] + spans[d] - a.shape[1 + d] for start in starts))
          for d in (0, 1)]
  config = [(0, 0, 0), (low[0], high[0], 0), (low[1], high[1], 0)]
  config += [(0, 0, 0)] * (a.ndim - 3)
  return jax.lax.pad(a, jnp.zeros((), a.dtype), config), low


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def window_sums(z: Array, groups, strides, size) -> Tuple[Array, ...]:
  """Sums of strided windows of tap outputs: z [B, H, W, T, C] (tap t's
  products at every input position) -> one [B, size_h, size_w, C] per group,
  out[m, n] = sum over the group's (t, (a, b)) of z[a + s_h * m, b + s_w * n,
  t], zero outside z. Its gradient stacks each tap's window of its group's
  cotangent (autodiff's sum of full-size pads is 7x slower on XLA:CPU)."""
  spans = _spans(strides, size)
  z, low = _padded_for(z, [start for group in groups for _, start in group],
                       spans)
  return tuple(
      sum(z[:, low[0] + a:low[0] + a + spans[0]:strides[0],
            low[1] + b:low[1] + b + spans[1]:strides[1], t]
          for t, (a, b) in group)
      for group in groups)


def _window_sums_fwd(z, groups, strides, size):
  return window_sums(z, groups, strides, size), z.shape


def _window_sums_bwd(groups, strides, size, z_shape, dys):
  b, h, w, num_taps, c = z_shape
  spans = _spans(strides, size)
  dz = [None] * num_taps
  for group, dy in zip(groups, dys):
    # dz[a + s * m, t] = dy[m]: dy dilated by the strides, then tap t's
    # (h, w) window of it starting at -a.
    dy = jax.lax.pad(dy, jnp.zeros((), dy.dtype), (
        (0, 0, 0), (0, 0, strides[0] - 1), (0, 0, strides[1] - 1), (0, 0, 0)))
    starts = [(-a, -b_) for _, (a, b_) in group]
    dy, low = _padded_for(dy, starts, (h, w))
    for t, (a, b_) in group:
      window = dy[:, low[0] - a:low[0] - a + h, low[1] - b_:low[1] - b_ + w]
      dz[t] = window if dz[t] is None else dz[t] + window
  zeros = jnp.zeros((b, h, w, c), dys[0].dtype)
  return (jnp.stack([zeros if d is None else d for d in dz], axis=3),)


window_sums.defvjp(_window_sums_fwd, _window_sums_bwd)


def tap_products(x: Array, kernel: Array) -> Array:
  """x [B, H, W, C_in] times every tap of kernel [kh, kw, C_in, C_out], in
  one matmul: [B, H, W, kh * kw, C_out], tap index i * kw + j."""
  kh, kw, c_in, c_out = kernel.shape
  taps = kernel.transpose(2, 0, 1, 3).reshape(c_in, kh * kw * c_out)
  return (x @ taps).reshape(x.shape[:3] + (kh * kw, c_out))


def conv_as_tap_matmul(x: Array, kernel: Array, pads, strides) -> Array:
  """The convolution as one matmul from C_in to every tap's outputs, then a
  sum of each tap's shifted (strided) window (`window_sums`): [B, H, W,
  C_in] -> [B, H', W', C_out]. The matmul's output has kh * kw * C_out
  channels, so this is for few output channels, where XLA:CPU's
  convolution fills its kernels poorly: a 3x3 conv of [256, 14, 14, 64] to
  4 channels takes 7.4 against 21 ms forward, 13 against 26 ms for its
  kernel gradient."""
  kh, kw = kernel.shape[:2]
  h, w = x.shape[1:3]
  z = tap_products(x, kernel)
  (low_h, high_h), (low_w, high_w) = pads
  size = ((h + low_h + high_h - kh) // strides[0] + 1,
          (w + low_w + high_w - kw) // strides[1] + 1)
  # Output m reads padded rows s * m + i, i.e. x's rows s * m + i - low.
  group = tuple((i * kw + j, (i - low_h, j - low_w))
                for i in range(kh) for j in range(kw))
  return window_sums(z, (group,), tuple(strides), size)[0]


def xla_conv(x: Array, kernel: Array, pads, strides) -> Array:
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=strides, padding=pads,
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def few_outputs(kernel_shape) -> bool:
  """Whether the taps' outputs (kh * kw * C_out) fit in C_in channels: where
  `conv_as_tap_matmul` beats XLA:CPU (benchmarks/conv_paths.py: 2-4x at
  16-48 taps' outputs from 64 channels, 0.84x at 108 from 64)."""
  kh, kw, c_in, c_out = kernel_shape
  return kh * kw * c_out <= c_in


def conv_path(window, size, kernel_shape=None) -> Callable[..., Array]:
  """The convolution for a pass whose window slides over a map of `size`:
  a matmul over patches where the window exceeds it; a matmul to the taps'
  outputs where a convolution of `kernel_shape` has few outputs; else
  XLA's."""
  if _window_exceeds(window, size):
    return conv_as_matmul
  if kernel_shape is not None and few_outputs(kernel_shape):
    return conv_as_tap_matmul
  return xla_conv


def convolve(x: Array, kernel: Array, padding, strides=(1, 1)) -> Array:
  """NHWC/HWIO convolution; `padding` is "SAME", "VALID" or (low, high)
  pairs. A matmul over patches where the kernel exceeds the map, a matmul
  to the taps' outputs where they are few (`conv_path`)."""
  pads = _explicit_padding(x.shape[1:3], kernel.shape[:2], strides, padding)
  return conv_path(kernel.shape[:2], x.shape[1:3], kernel.shape)(
      x, kernel, pads, strides)


def space_to_depth(x: Array, kernel: Array, pads, strides
                   ) -> Tuple[Array, Array]:
  """A strided convolution's operands as a stride-1, unpadded one's: x's
  s_h x s_w blocks become channels [B, H', W', s_h * s_w * C_in], and the
  kernel, zero-padded to a multiple of the strides, is cut the same way.
  Convolving the two ("VALID", stride 1) gives `xla_conv(x, kernel, pads,
  strides)`."""
  kh, kw, c_in, c_out = kernel.shape
  (sh, sw), (_, h, w, _) = strides, x.shape
  blocks_kh, blocks_kw = -(-kh // sh), -(-kw // sw)
  out_h = (h + sum(pads[0]) - kh) // sh + 1
  out_w = (w + sum(pads[1]) - kw) // sw + 1
  # Exactly the blocks the outputs read; the high padding may be negative.
  rows, cols = sh * (out_h - 1 + blocks_kh), sw * (out_w - 1 + blocks_kw)
  (low_h, _), (low_w, _) = pads
  x = jax.lax.pad(x, jnp.zeros((), x.dtype),
                  ((0, 0, 0), (low_h, rows - h - low_h, 0),
                   (low_w, cols - w - low_w, 0), (0, 0, 0)))
  b = x.shape[0]
  # One split per reshape, which explicitly sharded arrays require.
  x = x.reshape(b, rows // sh, sh, cols, c_in)
  x = x.reshape(b, rows // sh, sh, cols // sw, sw, c_in)
  x = x.transpose(0, 1, 3, 2, 4, 5).reshape(b, rows // sh, cols // sw,
                                            sh * sw * c_in)
  kernel = jnp.pad(kernel, ((0, blocks_kh * sh - kh), (0, blocks_kw * sw - kw),
                            (0, 0), (0, 0)))
  kernel = kernel.reshape(blocks_kh, sh, blocks_kw, sw, c_in, c_out)
  kernel = kernel.transpose(0, 2, 1, 3, 4, 5).reshape(
      blocks_kh, blocks_kw, sh * sw * c_in, c_out)
  return x, kernel


def _input_phases(size: int, outputs: int, kernel_size: int, stride: int,
                  low: int):
  """How one spatial dim of a strided convolution's input gradient splits
  into input phases: input row s * q + r (phase r, q < ceil(size / s))
  receives dy[q + d] times kernel tap r + low - s * d, for every d whose tap
  exists. Returns, per phase r, (taps in increasing order, the dy padding
  (low, high) of their stride-1 correlation, which reads them reversed)."""
  rows = -(-size // stride)
  phases = []
  for r in range(stride):
    taps = [t for t in range(kernel_size) if (r + low - t) % stride == 0]
    if not taps:
      phases.append(((), None))
      continue
    # Reversed taps read dy[q + d] for d from (r + low - taps[-1]) / s up.
    first, last = ((r + low - t) // stride for t in (taps[-1], taps[0]))
    phases.append((tuple(taps), (-first, rows - 1 + last - (outputs - 1))))
  return phases


def strided_input_gradient(dy: Array, kernel: Array, pads, strides,
                           size: Tuple[int, int]) -> Array:
  """The input gradient of `xla_conv(x, kernel, pads, strides)` for x of
  spatial `size`, given dy [B, H', W', C_out] -> [B, *size, C_in]: one
  stride-1 convolution of dy per input phase, interleaved by depth-to-space
  (a transposed convolution's sub-pixel form). XLA:CPU's own, a
  convolution over the stride-dilated dy, took 65 ms for the DCGAN
  discriminator's 64 -> 128 channel 4x4/2 layer at batch 256, stride-1
  convolution over space-to-depth blocks (which also cover the padded
  border) 28 ms, this 22 ms; 29 against 45 ms (blocks) for the 256 -> 512
  one at 8x8, batch 64 (benchmarks/conv_paths.py)."""
  phases_h, phases_w = (
      _input_phases(n, m, k, s, low) for n, m, k, s, (low, _) in zip(
          size, dy.shape[1:3], kernel.shape[:2], strides, pads))
  rows, cols = (-(-n // s) for n, s in zip(size, strides))  # Per phase.
  transposed = kernel.transpose(0, 1, 3, 2)
  phase_rows = []
  for taps_h, pad_h in phases_h:
    row = []
    for taps_w, pad_w in phases_w:
      if not taps_h or not taps_w:  # No tap reaches these input pixels.
        row.append(jnp.zeros((dy.shape[0], rows, cols, kernel.shape[2]),
                             dy.dtype))
        continue
      sub = transposed[tap_index(taps_h)][:, tap_index(taps_w)][::-1, ::-1]
      conv = conv_path(sub.shape[:2], dy.shape[1:3], sub.shape)
      row.append(conv(dy, sub, (pad_h, pad_w), (1, 1)))
    phase_rows.append(row)
  return depth_to_space(phase_rows)[:, :size[0], :size[1]]


def depth_to_space(phase_outputs) -> Array:
  """Interleaves phases: phase_outputs[r][q] [B, H, W, C] -> y [B, H * s_h,
  W * s_w, C] with y[:, r::s_h, q::s_w] = phase (r, q). Stacked and
  reshaped, one merge per reshape (explicitly sharded arrays require it); a
  sum of interior-padded phases is 2x faster alone but slowed the DCGAN
  step by 9-15%, its gradient being full-size strided slices."""
  y = jnp.stack([jnp.stack(row, axis=3) for row in phase_outputs], axis=2)
  b, h, s_h, w, s_w, c = y.shape
  return y.reshape(b, h * s_h, w, s_w, c).reshape(b, h * s_h, w * s_w, c)


def dilated_size(dy: Array, strides) -> Tuple[int, int]:
  """The output gradient's spatial size once dilated by the strides: the
  window of XLA's kernel gradient, the map of its input gradient."""
  return tuple((n - 1) * s + 1 for n, s in zip(dy.shape[1:3], strides))


def _kernel_gradient(x: Array, kernel: Array, dy: Array, strides, padding):
  """The kernel's cotangent of `convolve(x, kernel)` given dy."""
  pads = _explicit_padding(x.shape[1:3], kernel.shape[:2], strides, padding)
  # With few outputs, the kernel gradient of conv_as_tap_matmul is one
  # matmul of x and the taps' stacked windows of dy.
  conv = conv_path(dilated_size(dy, strides), x.shape[1:3], kernel.shape)
  return jax.vjp(lambda k: conv(x, k, pads, strides), kernel)[1](dy)[0]


def _transposed(kernel: Array) -> Array:
  """The kernel of a stride-1 convolution's input gradient: flipped in
  space, input and output channels swapped."""
  return kernel[::-1, ::-1].transpose(0, 1, 3, 2)


def _gradient_pads(kernel_shape, pads):
  """The padding of dy that the input gradient of a stride-1 convolution
  with `pads` correlates with `_transposed(kernel)`."""
  return tuple((k - 1 - low, k - 1 - high)
               for k, (low, high) in zip(kernel_shape[:2], pads))


# vjps at the arrays themselves (not linear transposes of shapes), so
# explicitly sharded arrays keep their shardings.
@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _input_gradient(x: Array, kernel: Array, dy: Array, strides, padding):
  """The input's cotangent of `convolve(x, kernel)` given dy (linear in
  dy; x only gives its shape)."""
  pads = _explicit_padding(x.shape[1:3], kernel.shape[:2], strides, padding)
  strided = any(s > 1 for s in strides)
  if strided:  # Few input channels: convolve space_to_depth's blocks.
    _, from_blocks, kernel_blocks = jax.vjp(
        lambda x: space_to_depth(x, kernel, pads, strides), x, has_aux=True)
    stride1_pads = ((0, 0), (0, 0))
  else:
    kernel_blocks, stride1_pads = kernel, pads
  transposed = _transposed(kernel_blocks)
  if (few_outputs(transposed.shape)
      and not _window_exceeds(kernel_blocks.shape[:2], dy.shape[1:3])):
    # Few input channels (a discriminator's first layer): the gradient is
    # a convolution of dy with few outputs.
    dx = conv_as_tap_matmul(dy, transposed, _gradient_pads(
        kernel_blocks.shape, stride1_pads), (1, 1))
    return from_blocks(dx)[0] if strided else dx
  if strided:
    return strided_input_gradient(dy, kernel, pads, strides, x.shape[1:3])
  conv = conv_path(kernel.shape[:2], dy.shape[1:3])
  return jax.vjp(lambda x: conv(x, kernel, pads, strides), x)[1](dy)[0]


def _input_gradient_fwd(x, kernel, dy, strides, padding):
  return _input_gradient(x, kernel, dy, strides, padding), (x, kernel, dy)


def _input_gradient_bwd(strides, padding, residuals, g):
  # <g, input_gradient(kernel, dy)> = <conv(g, kernel), dy>, so the kernel's
  # cotangent is the plain kernel gradient of conv at input g. XLA's own
  # derivation is a base-dilated convolution over the batch that XLA:CPU
  # runs ~20x slower (271 against 12 ms for a 64->128 channel 4x4/2 conv at
  # batch 64): the cost of every gradient penalty's double backward.
  x, kernel, dy = residuals
  return (jnp.zeros_like(x), _kernel_gradient(g, kernel, dy, strides, padding),
          convolve(g, kernel, padding, strides))


_input_gradient.defvjp(_input_gradient_fwd, _input_gradient_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d(x: Array, kernel: Array, strides: Tuple[int, int],
           padding) -> Array:
  """`jax.lax.conv_general_dilated` in NHWC/HWIO, the same function and
  gradients, with a second derivative XLA:CPU runs fast (see
  `_input_gradient_bwd`): gradient penalties differentiate D's input
  gradient with respect to its kernels. `padding` is "SAME", "VALID" or a
  tuple of (low, high) pairs."""
  return convolve(x, kernel, padding, strides)


def _conv2d_fwd(x, kernel, strides, padding):
  return convolve(x, kernel, padding, strides), (x, kernel)


def _conv2d_bwd(strides, padding, residuals, dy):
  x, kernel = residuals
  return (_input_gradient(x, kernel, dy, strides, padding),
          _kernel_gradient(x, kernel, dy, strides, padding))


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)
