r"""Scaling of the sharded train step: devices, compute dtype, checkpoints.

    python benchmarks/scale.py                                  # everything
    python benchmarks/scale.py --what=devices --devices=1,2,4,8 --steps=10
    python benchmarks/scale.py --what=dtypes,checkpoint         # e.g. on a GPU
    python benchmarks/scale.py --arch=dcgan_tiny --steps=2 --repeats=1  # smoke

Three measurements, each configuration in its own subprocess (so XLA_FLAGS and
the platform can differ, and peak memory is its own), one JSON line each,
then a summary line:

  devices     images/sec and compile time of `steps.train_step` jitted and
              sharded as gan_jax/train.py does it (`parallel.make_mesh`, state
              replicated, batch split over the "data" axis, in/out shardings,
              donated state), on N fake CPU devices
              (XLA_FLAGS=--xla_force_host_platform_device_count=N,
              JAX_PLATFORMS=cpu) at the same global batch. The fake devices
              share the host's cores: on a 2-core machine this measures the
              overhead of partitioning (collectives, smaller per-device
              matmuls, more threads than cores), not a speed-up. Real devices
              are needed to see one.
  dtypes      the same sharded step over all devices of the default backend
              (the GPU or TPU if there is one) with GANConfig(dtype=...):
              images/sec, compile time, peak device bytes, and the dtypes of
              the params and losses after a step (params and losses are meant
              to stay float32 whatever the compute dtype).
  checkpoint  orbax save and restore of the whole default GANState through
              gan_jax.checkpoint: the blocking part of `save` (hashing the
              state and handing it to orbax's writer), the full save
              including `wait`, and `restore` (with its hash check), each the
              best of --repeats after one untimed first save; bytes on disk
              (orbax compresses) against the bytes of the state's arrays. The
              state has taken one step, so Adam's moments are not all zeros.

The step is one discriminator and one generator update on a fixed batch
(data loading is not timed); images/sec is the best of --repeats timed
windows of --steps steps, after one untimed warm-up step.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from train_speed import time_step  # This folder is on the path as a script's.

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORCE_DEVICES = "--xla_force_host_platform_device_count"


def _image_shape(image_size: int):
  return (image_size, image_size, 1 if image_size == 28 else 3)


def _peak_device_bytes(jax):
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use")


def measure_step(args, dtype: str) -> dict:
  """Child process: times the jitted, sharded train step on all devices."""
  sys.path.insert(0, REPO)
  import gan_jax  # pylint: disable=g-import-not-at-top,unused-import
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from gan_jax import parallel, state as state_lib, steps as steps_lib
  from gan_jax.families.gan import GANConfig

  shape = _image_shape(args.image_size)
  config = GANConfig(arch=args.arch, dtype=dtype)
  batch_size = args.batch_size
  mesh = parallel.make_mesh()
  parallel.check_batch_size(batch_size, mesh)
  state_sharding = parallel.replicated(mesh)
  batch_sharding = parallel.batch_sharding(mesh, config.d_steps)
  state = jax.device_put(state_lib.create_state(config, shape), state_sharding)
  images = np.random.default_rng(0).uniform(
      -1.0, 1.0, (batch_size,) + shape).astype(np.float32)
  batch = parallel.put_batch({"image": images}, batch_sharding)
  train_step = jax.jit(steps_lib.train_step,
                       in_shardings=(state_sharding, batch_sharding),
                       out_shardings=(state_sharding, state_sharding),
                       donate_argnums=0)

  compile_seconds, best, state, metrics = time_step(
      train_step, state, batch, batch_size, args.steps, args.repeats)

  def dtypes_of(tree):
    return sorted({str(x.dtype) for x in jax.tree.leaves(tree)})

  device = jax.devices()[0]
  return {
      "arch": args.arch, "image_size": args.image_size,
      "batch_size": batch_size, "dtype": dtype,
      "num_devices": mesh.size, "backend": jax.default_backend(),
      "device": device.device_kind,
      "images_per_sec": round(best, 1),
      "steps_per_sec": round(best / batch_size, 2),
      "compile_seconds": round(compile_seconds, 2),
      "param_dtypes": dtypes_of((state.g.params, state.d.params)),
      "loss_dtypes": dtypes_of((metrics["d_loss"], metrics["g_loss"])),
      "losses_finite": bool(np.isfinite(float(metrics["d_loss"]))
                            and np.isfinite(float(metrics["g_loss"]))),
      "peak_host_rss_mb": round(
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
      "peak_device_bytes": _peak_device_bytes(jax),
  }


def measure_checkpoint(args) -> dict:
  """Child process: times orbax save/restore of the whole GANState."""
  sys.path.insert(0, REPO)
  import gan_jax  # pylint: disable=g-import-not-at-top,unused-import
  import jax  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from gan_jax import checkpoint, parallel, state as state_lib
  from gan_jax import steps as steps_lib, train
  from gan_jax.config import RunConfig
  from gan_jax.families import gan
  from gan_jax.family import DataSpec

  shape = _image_shape(args.image_size)
  config = gan.GANConfig(arch=args.arch)
  record = train.run_record(gan.FAMILY, config,
                            RunConfig(batch_size=args.batch_size),
                            DataSpec(shape), "0" * 64)
  replicated = parallel.replicated(parallel.make_mesh())

  def fresh():
    return jax.device_put(state_lib.create_state(config, shape), replicated)

  # One step first, so Adam's moments are not zeros (which compress away).
  state = jax.jit(steps_lib.train_step, donate_argnums=0)(fresh(), {
      "image": jax.random.uniform(jax.random.key(0),
                                  (args.batch_size,) + shape, minval=-1.0,
                                  maxval=1.0)})[0]
  leaves = jax.tree.leaves(state)

  with tempfile.TemporaryDirectory() as workdir:
    mngr = checkpoint.manager(workdir, max_to_keep=None)
    # The first save also creates folders and starts orbax's threads.
    start = time.perf_counter()
    checkpoint.save(mngr, state, record)
    checkpoint.wait(mngr)
    first_save = time.perf_counter() - start
    blocking, full, restore = [], [], []
    for i in range(args.repeats):
      # A new step each time: `save` skips steps that are already saved.
      state = state.replace(step=state.step + 1)
      jax.block_until_ready(state)
      start = time.perf_counter()
      checkpoint.save(mngr, state, record)
      blocking.append(time.perf_counter() - start)
      checkpoint.wait(mngr)
      full.append(time.perf_counter() - start)
      target = fresh()
      jax.block_until_ready(target)
      start = time.perf_counter()
      restored = checkpoint.restore(mngr, target, step=int(state.step))
      jax.block_until_ready(restored)
      restore.append(time.perf_counter() - start)
    step_dir = os.path.join(checkpoint.checkpoint_dir(workdir),
                            str(int(state.step)))
    disk_bytes = sum(os.path.getsize(os.path.join(root, name))
                     for root, _, names in os.walk(step_dir)
                     for name in names)
    checkpoint.close(mngr)

  params = (state.g.params, state.d.params)
  return {
      "arch": args.arch, "image_size": args.image_size,
      "backend": jax.default_backend(),
      "device": jax.devices()[0].device_kind,
      "num_params": sum(x.size for x in jax.tree.leaves(params)),
      "state_bytes": sum(x.nbytes for x in leaves),
      "disk_bytes": disk_bytes,
      "first_save_seconds": round(first_save, 3),
      "save_blocking_seconds": round(min(blocking), 3),
      "save_seconds": round(min(full), 3),
      "restore_seconds": round(min(restore), 3),
      "repeats": args.repeats,
  }


def _run_child(args, child: str, env: dict) -> dict:
  command = [sys.executable, os.path.abspath(__file__), f"--child={child}",
             f"--arch={args.arch}", f"--image_size={args.image_size}",
             f"--batch_size={args.batch_size}", f"--steps={args.steps}",
             f"--repeats={args.repeats}"]
  result = subprocess.run(command, env=env, capture_output=True, text=True,
                          check=False)
  if result.returncode:
    sys.exit(f"{child} failed:\n{result.stderr[-2000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--what", default="devices,dtypes,checkpoint")
  parser.add_argument("--devices", default="1,2,4,8")
  parser.add_argument("--dtypes", default="float32,bfloat16")
  parser.add_argument("--arch", default="dcgan")
  parser.add_argument("--image_size", type=int, default=28)
  parser.add_argument("--batch_size", type=int, default=64,
                      help="Global batch, the same for every device count.")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()

  if args.child:
    kind, _, value = args.child.partition(":")
    if kind == "checkpoint":
      result = measure_checkpoint(args)
    else:
      result = measure_step(args, dtype=value or "float32")
    print(json.dumps({"what": kind, **result}))
    return

  what = args.what.split(",")
  unknown = set(what) - {"devices", "dtypes", "checkpoint"}
  if unknown:
    sys.exit(f"error: --what has unknown {', '.join(sorted(unknown))}.")
  results, summary = [], {}
  if "devices" in what:
    for count in map(int, args.devices.split(",")):
      env = dict(os.environ, JAX_PLATFORMS="cpu")
      # Set before the child imports jax; gan_jax appends its own flag.
      env["XLA_FLAGS"] = " ".join(
          f for f in env.get("XLA_FLAGS", "").split()
          if not f.startswith(FORCE_DEVICES)) + f" {FORCE_DEVICES}={count}"
      result = _run_child(args, "devices:float32", env)
      results.append(result)
      summary[f"devices/{result['num_devices']}"] = result["images_per_sec"]
      print(json.dumps(result), flush=True)
  if "dtypes" in what:
    for dtype in args.dtypes.split(","):
      result = _run_child(args, f"dtypes:{dtype}", dict(os.environ))
      results.append(result)
      summary[f"{result['backend']}/{dtype}"] = result["images_per_sec"]
      summary[f"{result['backend']}/{dtype}/compile_s"] = (
          result["compile_seconds"])
      print(json.dumps(result), flush=True)
  if "checkpoint" in what:
    result = _run_child(args, "checkpoint", dict(os.environ))
    results.append(result)
    summary.update({f"checkpoint/{k}": result[k] for k in (
        "save_blocking_seconds", "save_seconds", "restore_seconds",
        "disk_bytes")})
    print(json.dumps(result), flush=True)
  print(json.dumps({"summary": summary}))


if __name__ == "__main__":
  main()
