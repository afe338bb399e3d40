r"""The DCGAN step layer by layer: gan_jax's layers against PyTorch's.

    python benchmarks/layer_profile.py --torch_python=/tmp/torch/bin/python \
        --image_size=28 --batch=256

Times each block of the default DCGAN (a convolution or dense layer with
its BatchNorm and activation) at the shapes the train step gives it: the
forward pass alone, and forward plus backward (the gradients of the input
and of every parameter, for a fixed output cotangent). gan_jax's blocks are
jitted (`gan_jax.models.layers`, as the DCGAN uses them); PyTorch's run
eagerly in train mode, in a child process started with --torch_python
(torch is not a dependency). Both: the best of --repeats windows of --steps
calls. One JSON line per block, times in ms, then the totals.

A profile, not a ratio of steps: the step adds optimizer updates, the
losses and (in G's step) D's passes. `jax.profiler` traces on XLA:CPU time
a convolution's dispatch rather than its work, which is why the blocks are
timed one at a time.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LATENT_DIM = 100


def blocks(image_size, features=64):
  """(name, kind, C_in, C_out, input side, BatchNorm, activation) of the
  DCGAN at `image_size`, as gan_jax.models.dcgan builds it."""
  channels = 1 if image_size == 28 else 3
  n_up, side = 0, image_size
  while side % 2 == 0 and side > 4:
    side //= 2
    n_up += 1
  width = features * 2 ** (n_up - 1)
  out = [("g_dense", "dense", LATENT_DIM, width, side, True, "relu")]
  for i in range(n_up - 1):
    out.append((f"g_up_{i}", "conv_transpose", width >> i, width >> (i + 1),
                side << i, True, "relu"))
  out.append(("g_out", "conv_transpose", features, channels,
              image_size // 2, False, "tanh"))
  out.append(("d_in", "conv", channels, features, image_size, False,
              "leaky_relu"))
  for i in range(1, n_up):
    out.append((f"d_{i}", "conv", features << (i - 1), features << i,
                image_size >> i, True, "leaky_relu"))
  out.append(("d_out", "dense", (features << (n_up - 1)) * side * side, 1,
              1, False, "none"))
  return out


def _best_ms(run, steps, repeats, sync):
  sync(run())
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      out = run()
    sync(out)
    best = min(best, (time.perf_counter() - start) / steps)
  return round(best * 1e3, 3)


def profile_jax(args):
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax
  import jax.numpy as jnp
  import gan_jax  # noqa: F401  (its XLA flags, before jax starts)
  from gan_jax.models import dcgan, layers

  acts = {"relu": nn.relu, "tanh": jnp.tanh, "none": lambda x: x,
          "leaky_relu": lambda x: nn.leaky_relu(x, 0.2)}

  class Block(nn.Module):
    kind: str
    c_out: int
    side: int
    batch_norm: bool
    act: str

    @nn.compact
    def __call__(self, x):
      kw = dict(kernel_init=dcgan.paper_weight_init)
      if self.kind == "dense":
        x = nn.Dense(self.c_out * self.side * self.side,
                     use_bias=not self.batch_norm, **kw)(x)
        if self.side > 1:
          x = x.reshape(x.shape[0], self.side, self.side, self.c_out)
      else:
        layer = (layers.ConvTranspose if self.kind == "conv_transpose"
                 else layers.Conv)
        x = layer(self.c_out, (4, 4), (2, 2), use_bias=not self.batch_norm,
                  **kw)(x)
      if self.batch_norm:
        x = layers.BatchNorm(use_running_average=False, momentum=0.9,
                             epsilon=1e-5)(x)
      return acts[self.act](x)

  results = []
  for name, kind, c_in, c_out, side, bn, act in blocks(args.image_size):
    if kind == "dense":
      shape = (args.batch, c_in)
      block = Block(kind, c_out, side, bn, act)
    else:
      shape = (args.batch, side, side, c_in)
      block = Block(kind, c_out, side, bn, act)
    x = jax.random.normal(jax.random.key(0), shape)
    variables = block.init(jax.random.key(1), x)
    params, state = variables["params"], {
        k: v for k, v in variables.items() if k != "params"}

    def forward(params, x, block=block, state=state):
      return block.apply({"params": params, **state}, x,
                         mutable=list(state))[0]

    dy = jax.random.normal(jax.random.key(2),
                           jax.eval_shape(forward, params, x).shape)
    fwd = jax.jit(forward)
    fwd_bwd = jax.jit(lambda p, x, dy, f=forward: jax.vjp(f, p, x)[1](dy))
    results.append({
        "block": name, "input": list(shape), "output": list(dy.shape),
        "fwd_ms": _best_ms(lambda f=fwd: f(params, x), args.steps,
                           args.repeats, jax.block_until_ready),
        "fwd_bwd_ms": _best_ms(lambda f=fwd_bwd: f(params, x, dy),
                               args.steps, args.repeats,
                               jax.block_until_ready)})
  return results


def profile_torch(args):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn

  acts = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "none": nn.Identity(),
          "leaky_relu": nn.LeakyReLU(0.2)}
  results = []
  for name, kind, c_in, c_out, side, bn, act in blocks(args.image_size):
    if kind == "dense":
      shape = (args.batch, c_in)
      modules = [nn.Linear(c_in, c_out * side * side, bias=not bn)]
      if side > 1:
        modules.append(nn.Unflatten(1, (c_out, side, side)))
    else:
      shape = (args.batch, c_in, side, side)
      conv = nn.ConvTranspose2d if kind == "conv_transpose" else nn.Conv2d
      modules = [conv(c_in, c_out, 4, 2, 1, bias=not bn)]
    if bn:
      modules.append(nn.BatchNorm2d(c_out))
    block = nn.Sequential(*modules, acts[act]).train()
    x = torch.randn(shape, requires_grad=True)
    with torch.no_grad():
      dy = torch.randn(block(x).shape)

    def fwd_bwd(block=block, x=x, dy=dy):
      block.zero_grad(set_to_none=True)
      x.grad = None
      y = block(x)
      y.backward(dy)
      return y

    def fwd(block=block, x=x):
      with torch.no_grad():
        return block(x)

    results.append({
        "block": name,
        "fwd_ms": _best_ms(fwd, args.steps, args.repeats, lambda _: None),
        "fwd_bwd_ms": _best_ms(fwd_bwd, args.steps, args.repeats,
                               lambda _: None)})
  return results


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--torch_python", default=None,
                      help="A Python that can import torch (omit: JAX only).")
  parser.add_argument("--image_size", type=int, default=28)
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--framework", default="jax", choices=("jax", "torch"),
                      help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.framework == "torch":
    print(json.dumps(profile_torch(args)))
    return
  rows = profile_jax(args)
  theirs = {}
  if args.torch_python:
    result = subprocess.run(
        [args.torch_python, os.path.abspath(__file__), "--framework=torch",
         f"--image_size={args.image_size}", f"--batch={args.batch}",
         f"--steps={args.steps}", f"--repeats={args.repeats}"],
        capture_output=True, text=True, check=False)
    if result.returncode:
      sys.exit(f"the PyTorch child failed:\n{result.stderr[-2000:]}")
    theirs = {r["block"]: r for r in json.loads(
        result.stdout.strip().splitlines()[-1])}
  totals = {"gan_jax_fwd_bwd_ms": 0.0, "torch_fwd_bwd_ms": 0.0}
  for row in rows:
    torch_row = theirs.get(row["block"], {})
    row["torch_fwd_ms"] = torch_row.get("fwd_ms")
    row["torch_fwd_bwd_ms"] = torch_row.get("fwd_bwd_ms")
    totals["gan_jax_fwd_bwd_ms"] += row["fwd_bwd_ms"]
    totals["torch_fwd_bwd_ms"] += row["torch_fwd_bwd_ms"] or 0.0
    print(json.dumps(row))
  print(json.dumps({"image_size": args.image_size, "batch": args.batch,
                    **{k: round(v, 2) for k, v in totals.items()}}))


if __name__ == "__main__":
  main()
