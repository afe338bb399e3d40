r"""The VAE's likelihood figures on real MNIST: ELBO anchor, NLL vs minutes.

    # The flax example's configuration, 10 epochs, one run per seed; the test
    # ELBO of each (dynamic binarisation):
    python benchmarks/vae_likelihood.py --what=elbo_anchor \
        --data_dir=../shared/data/mnist --seeds=0,1,2,3,4

    # A preset trained once, timed; the IWAE bound (k=5000) of every kept
    # checkpoint on --curve_images test images against training minutes, and
    # of the last on the whole test set:
    python benchmarks/vae_likelihood.py --what=nll_curve --preset=best_nll \
        --data_dir=../shared/data/mnist --workdir=/tmp/vae_best

Prints one JSON line per measurement. Minutes are wall time from the start
of training (start-up and compilation included) to the start of each
checkpoint's save, read from orbax's checkpoint metadata. Run it on an idle
machine: the minutes are the point.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
import gan_jax  # noqa: F401  (XLA flags before jax starts)
from gan_jax import checkpoint, runs, train
from gan_jax.config import RunConfig
from gan_jax.evaluator import EvalConfig, Evaluator
from gan_jax.families import vae


def _configs(preset_name, data_dir, seed):
  preset = vae.FAMILY.presets[preset_name]
  run = RunConfig(**{**vae.FAMILY.run_defaults, **preset.run,
                     "dataset": "mnist", "data_dir": data_dir, "seed": seed})
  return vae.VAEConfig(**preset.model), run


def _evaluate(workdir, step, metrics, data_dir, num_real, nll_samples):
  loaded = runs.load(workdir, step)
  config = EvalConfig(dataset="mnist", data_dir=data_dir, num_real=num_real,
                      metrics=metrics, nll_samples=nll_samples)
  start = time.perf_counter()
  records = Evaluator(config, vae.FAMILY).generated(loaded.state, step=step)
  return records, time.perf_counter() - start


def elbo_anchor(args):
  for seed in map(int, args.seeds.split(",")):
    model, run = _configs("flax_example", args.data_dir, seed)
    workdir = os.path.join(args.workdir, f"flax_example_seed{seed}")
    start = time.perf_counter()
    train.train_and_evaluate(vae.FAMILY, model, run, workdir)
    seconds = time.perf_counter() - start
    (record,), _ = _evaluate(workdir, run.num_steps, ("elbo",),
                             args.data_dir, None, 1)
    print(json.dumps({"what": "elbo_anchor", "seed": seed,
                      "epochs": run.num_steps * run.batch_size / 60000,
                      "train_seconds": round(seconds, 1),
                      "test_elbo": record["value"], "recon": record["recon"],
                      "kl": record["kl"],
                      "binarization": record["binarization"]}), flush=True)


def nll_curve(args):
  model, run = _configs(args.preset, args.data_dir, args.seed)
  start_ns = time.time_ns()
  train.train_and_evaluate(vae.FAMILY, model, run, args.workdir)
  mngr = checkpoint.manager(args.workdir, max_to_keep=None, read_only=True)
  steps = mngr.all_steps()
  starts = {step: mngr.metadata(step).init_timestamp_nsecs for step in steps}
  mngr.close()
  for step in steps:
    last = step == steps[-1]
    records, seconds = _evaluate(
        args.workdir, step, ("elbo", "nll"), args.data_dir,
        None if last else args.curve_images, args.nll_samples)
    elbo, nll = records
    print(json.dumps({
        "what": "nll_curve", "preset": args.preset, "step": step,
        "minutes": round((starts[step] - start_ns) / 6e10, 2),
        "test_images": nll["num_real"], "nll": round(nll["value"], 3),
        "nll_std_error": round(nll["std_error"], 3),
        "k": nll["num_importance_samples"],
        "test_elbo": round(elbo["value"], 3),
        "eval_seconds": round(seconds, 1),
        "binarization": nll["binarization"]}), flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--what", choices=("elbo_anchor", "nll_curve"),
                      required=True)
  parser.add_argument("--data_dir", required=True,
                      help="Folder of the MNIST IDX files.")
  parser.add_argument("--workdir", default="/tmp/gan_jax/vae_likelihood")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--preset", default="best_nll")
  parser.add_argument("--curve_images", type=int, default=1000)
  parser.add_argument("--nll_samples", type=int, default=5000)
  args = parser.parse_args()
  {"elbo_anchor": elbo_anchor, "nll_curve": nll_curve}[args.what](args)


if __name__ == "__main__":
  main()
