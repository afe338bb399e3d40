r"""Speed of a family's `train_step`: images/sec, compile time, peak memory.

    python benchmarks/train_speed.py                      # the GAN grid
    python benchmarks/train_speed.py --archs=dcgan --batch_sizes=64 \
        --image_sizes=28 --variants=fast,reference,no_xla_flag
    python benchmarks/train_speed.py --family=vae --archs=mlp,conv \
        --image_sizes=28 --batch_sizes=128   # beside benchmarks/torch_vae.py
    python benchmarks/train_speed.py --family=pix2pix --archs=default \
        --image_sizes=28 --batch_sizes=64    # beside torch_translation.py

Each configuration runs in its own subprocess, so its peak memory (host RSS,
and the device's peak bytes where the backend reports them) is its own, and so
that XLA_FLAGS can differ between variants:

  fast         the library as shipped (sub-pixel ConvTranspose, space-to-depth
               Conv, XLA:CPU flag set by gan_jax/__init__.py);
  reference    flax's nn.ConvTranspose / nn.Conv in the same networks;
  no_xla_flag  the fast layers without the XLA:CPU flag;
  conditional, acgan, diffaugment
               the fast GAN with 10 classes (projection D, or ACGAN's
               auxiliary classifier), or with DiffAugment's three transforms
               (`MODEL_VARIANTS`).

One JSON line per configuration, then a summary line. The step is the
family's `train_step` on a fixed batch (for the GAN one discriminator and one
generator update; data loading is not timed); images/sec is the best of
`--repeats` timed windows of `--steps`, counting one batch per step (for
CycleGAN, one domain's batch of the two it translates). A family whose
config has no `arch` (pix2pix, CycleGAN) takes `--archs=default`.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Variants that change the model config: its fields, and the classes.
MODEL_VARIANTS = {
    "conditional": (dict(conditional=True), 10),
    "acgan": (dict(conditional=True, class_head="acgan"), 10),
    "diffaugment": (dict(diffaugment="color,translation,cutout"), 0),
    "r1": (dict(penalty="r1"), 0),
    "wgan_gp": (dict(penalty="wgan_gp"), 0),
    "spectral_norm": (dict(spectral_norm=True), 0),
}


def time_step(train_step, state, batch, batch_size: int, steps: int,
              repeats: int):
  """Compiles the jitted `train_step`, warms it up, then times it.

  Returns (compile seconds, best images/sec over `repeats` windows of
  `steps` steps, the last state, its metrics).
  """
  import jax  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  compiled = train_step.lower(state, batch).compile()
  compile_seconds = time.perf_counter() - start
  state, metrics = compiled(state, batch)  # Warm-up.
  jax.block_until_ready(metrics)
  best = 0.0
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    best = max(best, steps * batch_size / (time.perf_counter() - start))
  return compile_seconds, best, state, metrics


def measure(family_name: str, arch: str, image_size: int, batch_size: int,
            variant: str, steps: int, repeats: int) -> dict:
  """Runs in the child process: times one configuration."""
  sys.path.insert(0, REPO)
  import gan_jax  # pylint: disable=g-import-not-at-top,unused-import
  import dataclasses  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from gan_jax import families, models
  from gan_jax.family import DataSpec

  family = families.get(family_name)
  changes, num_classes = MODEL_VARIANTS.get(variant, ({}, 0))
  if any(f.name == "arch" for f in dataclasses.fields(family.config)):
    changes = dict(changes, arch=arch)
  elif arch != "default":
    sys.exit(f"The {family_name} family has no --arch: pass --archs=default.")
  config = family.config(**changes)
  channels = 1 if image_size == 28 else 3
  shape = (image_size, image_size, channels)
  if variant == "reference":  # flax's own layers in the same GAN networks.
    make_g, make_d = models.ARCHITECTURES[arch]
    config = config.replace(
        generator=make_g(image_shape=shape, fast_layers=False),
        discriminator=make_d(image_shape=shape, fast_layers=False))
  state = family.init(config, DataSpec(shape, num_classes), jax.random.key(0))
  stacked = family.batches_per_step(config)
  batch = {"image": jax.random.uniform(
      jax.random.key(0), ((stacked,) if stacked > 1 else ()) + (batch_size,)
      + shape, minval=-1.0, maxval=1.0),
           "label": jax.numpy.arange(batch_size) % max(num_classes, 1)}
  train_step = jax.jit(family.train_step, donate_argnums=0)

  compile_seconds, best, state, metrics = time_step(
      train_step, state, batch, batch_size, steps, repeats)

  device = jax.devices()[0]
  stats = device.memory_stats() or {}
  return {
      "family": family_name, "arch": arch, "image_size": image_size,
      "batch_size": batch_size,
      "variant": variant, "device": device.device_kind,
      "backend": jax.default_backend(),
      "images_per_sec": round(best, 1),
      "steps_per_sec": round(best / batch_size, 2),
      "compile_seconds": round(compile_seconds, 2),
      "peak_host_rss_mb": round(
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
      "peak_device_bytes": stats.get("peak_bytes_in_use"),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--family", default="gan")
  parser.add_argument("--archs", default="dcgan,mlp,resnet")
  parser.add_argument("--image_sizes", default="28,64")
  parser.add_argument("--batch_sizes", default="64,256")
  parser.add_argument("--variants", default="fast")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()

  if args.child:
    family, arch, size, batch, variant = args.child.split(":")
    print(json.dumps(measure(family, arch, int(size), int(batch), variant,
                             args.steps, args.repeats)))
    return

  results = []
  for arch in args.archs.split(","):
    for size in map(int, args.image_sizes.split(",")):
      for batch in map(int, args.batch_sizes.split(",")):
        for variant in args.variants.split(","):
          env = dict(os.environ)
          if variant == "no_xla_flag":
            env["GAN_JAX_KEEP_XLA_FLAGS"] = "1"
          child = subprocess.run(
              [sys.executable, __file__, f"--child={args.family}:{arch}:"
               f"{size}:{batch}:{variant}", f"--steps={args.steps}",
               f"--repeats={args.repeats}"],
              env=env, capture_output=True, text=True, check=False)
          if child.returncode:
            sys.exit(f"{arch}:{size}:{batch}:{variant} failed:\n"
                     f"{child.stderr[-2000:]}")
          result = json.loads(child.stdout.strip().splitlines()[-1])
          results.append(result)
          print(json.dumps(result), flush=True)
  print(json.dumps({"summary": {
      f"{r['family']}/{r['arch']}/{r['image_size']}/b{r['batch_size']}/"
      f"{r['variant']}":
      r["images_per_sec"] for r in results}}))


if __name__ == "__main__":
  main()
