r"""XLA's convolution against a matmul over patches, per pass and shape.

    python benchmarks/conv_paths.py             # the U-Net's and DCGAN's shapes
    python benchmarks/conv_paths.py --batch=256 --repeats=5

For each convolution shape, times the forward pass, the input gradient and
the kernel gradient (jit, best of --repeats windows) computed three ways:
`jax.lax.conv_general_dilated` and its autodiff ("xla"),
`convolution.conv_as_matmul` ("matmul", im2col with padding-only taps
dropped) and `convolution.conv_as_tap_matmul` ("tap", one matmul to every
tap's outputs, then window sums). For strided convolutions, "phases" is
the input gradient as one stride-1 convolution per input phase
(`convolution.strided_input_gradient`, what `conv2d` takes for them).
`chosen` names the path `convolution.conv2d` takes for each pass, from the
shapes alone (`convolution.conv_path`, `few_outputs`). One JSON line per
shape, times in ms.
"""

import argparse
import json
import time

import jax

from gan_jax.models import convolution

# (map size, C_in, C_out, kernel, stride, (low, high) padding): the U-Net's
# encoder at 28 (padded to 32), its decoder's phase convolutions, the DCGAN
# discriminator's 4x4/2 and generator's phase convolutions, a 3x3 ResNet
# conv; then few outputs: a 3x3 conv to 4 channels (the 28x28 generator's
# phases as one convolution), the input gradients of the discriminator's
# first layer at 28x28x1 and 64x64x3 (a convolution of dy with the
# space-to-depth kernel), and a 3x3 conv to 12 channels (too many taps'
# outputs for 64 channels).
SHAPES = [
    (16, 64, 128, 4, 2, (1, 1)), (8, 128, 256, 4, 2, (1, 1)),
    (4, 256, 512, 4, 2, (1, 1)), (2, 512, 512, 4, 2, (1, 1)),
    (1, 512, 512, 2, 1, (1, 0)), (2, 1024, 256, 2, 1, (1, 0)),
    (4, 512, 128, 2, 1, (1, 0)), (8, 256, 64, 2, 1, (1, 0)),
    (14, 64, 128, 4, 2, (1, 2)), (7, 128, 64, 2, 1, (1, 0)),
    (7, 128, 128, 3, 1, (1, 1)), (8, 256, 64, 2, 1, (1, 1)),
    (14, 64, 4, 3, 1, (1, 1)), (14, 64, 4, 2, 1, (1, 1)),
    (32, 64, 12, 2, 1, (1, 1)), (32, 64, 12, 3, 1, (1, 1)),
]


def _best_ms(fn, args, steps, repeats):
  jax.block_until_ready(fn(*args))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      out = fn(*args)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - start) / steps)
  return round(best * 1e3, 2)


def _passes(conv, pads, strides):
  forward = jax.jit(lambda x, k: conv(x, k, pads, strides))
  input_grad = jax.jit(lambda x, k, dy: jax.vjp(
      lambda x: conv(x, k, pads, strides), x)[1](dy)[0])
  kernel_grad = jax.jit(lambda x, k, dy: jax.vjp(
      lambda k: conv(x, k, pads, strides), k)[1](dy)[0])
  return forward, input_grad, kernel_grad


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  for size, c_in, c_out, k, s, pad in SHAPES:
    x = jax.random.normal(jax.random.key(0), (args.batch, size, size, c_in))
    kernel = 0.05 * jax.random.normal(jax.random.key(1), (k, k, c_in, c_out))
    pads, strides = (pad, pad), (s, s)
    dy = convolution.xla_conv(x, kernel, pads, strides)
    row = dict(map=size, c_in=c_in, c_out=c_out, kernel=k, stride=s,
               padding=pad, batch=args.batch)
    for name, conv in (("xla", convolution.xla_conv),
                       ("matmul", convolution.conv_as_matmul),
                       ("tap", convolution.conv_as_tap_matmul)):
      forward, input_grad, kernel_grad = _passes(conv, pads, strides)
      row[name] = dict(
          forward=_best_ms(forward, (x, kernel), args.steps, args.repeats),
          input_grad=_best_ms(input_grad, (x, kernel, dy), args.steps,
                              args.repeats),
          kernel_grad=_best_ms(kernel_grad, (x, kernel, dy), args.steps,
                               args.repeats))
    if s > 1:
      phases = jax.jit(lambda k, dy, pads=pads, strides=strides, size=size:
                       convolution.strided_input_gradient(
                           dy, k, pads, strides, (size, size)))
      row["phases"] = dict(input_grad=_best_ms(phases, (kernel, dy),
                                               args.steps, args.repeats))
    dilated = convolution.dilated_size(dy, strides)
    # Each pass as a convolution: its window, its map, its kernel's shape.
    passes = {"forward": ((k, k), (size, size), (k, k, c_in, c_out)),
              "input_grad": ((k, k), dilated, (k, k, c_out, c_in)),
              "kernel_grad": (dilated, (size, size), (k, k, c_in, c_out))}
    names = {convolution.xla_conv: "xla", convolution.conv_as_matmul:
             "matmul", convolution.conv_as_tap_matmul: "tap"}
    row["chosen"] = {name: names[convolution.conv_path(*conv_pass)]
                     for name, conv_pass in passes.items()}
    if s > 1:
      row["chosen"]["input_grad"] = "phases"
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
