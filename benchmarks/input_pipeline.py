r"""The input pipeline's share of the training loop's step time.

    python benchmarks/input_pipeline.py --batch_size=256 --dataset=fashion_mnist \
        --data_dir=/usr/share/datasets/fashion-mnist

Times the default GAN step on real data three ways, in one process:

  producer  the batches alone: `data.batches` and the sharded device put, as
            train.py's prefetch thread runs them, with no training;
  fixed     the jitted, donated `train_step` on one fixed batch (what
            train_speed.py times);
  loop      `train_step` fed by `data.prefetch(data.batches(...))`, as
            train.py feeds it.

The pipeline's cost is what the loop adds to the fixed-batch step,
(loop - fixed) / loop; on a 2-core CPU the prefetch thread competes with the
step for the cores, so even an overlapped producer can show. Each timing is
the best of `--repeats` windows of `--steps`. Prints one JSON line.
"""

import argparse
import functools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import data, families, parallel  # Sets XLA_FLAGS before jax runs.
import jax
from gan_jax.family import DataSpec


def _best_seconds_per_step(run_window, steps: int, repeats: int) -> float:
  """Best over `repeats` calls of run_window(steps), in seconds per step."""
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    run_window(steps)
    best = min(best, (time.perf_counter() - start) / steps)
  return best


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--dataset", default="fashion_mnist")
  parser.add_argument("--data_dir", default="/usr/share/datasets/fashion-mnist")
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()

  family = families.get("gan")
  config = family.config()
  dataset = data.load(args.dataset, "train", args.data_dir)
  mesh = parallel.make_mesh()
  state_sharding = parallel.replicated(mesh)
  batch_sharding = parallel.batch_sharding(mesh)
  put = functools.partial(parallel.put_batch, sharding=batch_sharding)
  stream = lambda: data.batches(dataset, args.batch_size, seed=0)

  def producer_window(steps):
    batches = stream()
    jax.block_until_ready([put(next(batches)) for _ in range(steps)])

  producer = _best_seconds_per_step(producer_window, args.steps, args.repeats)

  state = jax.device_put(family.init(
      config, DataSpec.of(dataset.images, dataset.labels), jax.random.key(0)),
                         state_sharding)
  train_step = jax.jit(family.train_step,
                       in_shardings=(state_sharding, batch_sharding),
                       out_shardings=(state_sharding, state_sharding),
                       donate_argnums=0)
  fixed_batch = put(next(stream()))
  state, metrics = train_step(state, fixed_batch)  # Compiles.
  jax.block_until_ready(metrics)
  holder = {"state": state}  # The windows carry the donated state along.

  def fixed_window(steps):
    for _ in range(steps):
      holder["state"], out = train_step(holder["state"], fixed_batch)
    jax.block_until_ready(out)

  def loop_window(steps):
    batches = data.prefetch(stream(), put=put)
    for _ in range(steps):
      holder["state"], out = train_step(holder["state"], next(batches))
    jax.block_until_ready(out)
    batches.close()

  fixed = _best_seconds_per_step(fixed_window, args.steps, args.repeats)
  loop = _best_seconds_per_step(loop_window, args.steps, args.repeats)
  print(json.dumps({
      "dataset": args.dataset, "batch_size": args.batch_size,
      "device": jax.devices()[0].device_kind,
      "producer_ms_per_batch": round(producer * 1e3, 2),
      "fixed_batch_ms_per_step": round(fixed * 1e3, 2),
      "loop_ms_per_step": round(loop * 1e3, 2),
      "producer_share_of_step": round(producer / fixed, 4),
      "pipeline_share_of_loop": round((loop - fixed) / loop, 4),
  }))


if __name__ == "__main__":
  main()
