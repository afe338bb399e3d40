r"""Scores translation runs (pix2pix, CycleGAN) and prints the README's table.

    python benchmarks/translation_table.py \
        --workdirs=/tmp/p2p_denoise_adv,/tmp/p2p_denoise_l1
    python benchmarks/translation_table.py --workdirs=/tmp/cg_emoji \
        --extractor=inception --inception_weights=/path/to/weights.npz

Each run's latest checkpoint goes through `experiments.evaluate`'s library
path (gan_jax.evaluate.evaluate_checkpoint) on its own data's test split:
FD, precision and recall of the translations against the real targets, L1,
PSNR and SSIM against the true targets where there are any, and cycle_l1
for CycleGAN; the identity baseline (the sources themselves) once per
distinct task (and the other metrics of the family: KID, density, ...).
Writes every record to <workdir>/eval/translation.json and
prints one markdown row per model, then the baselines. `--grid=PNG` also
draws the first `--grid_rows` held-out pairs, one per row: source | each
run's output, in --workdirs order | true target (where there is one), as
the pix2pix paper's figures compare L1 alone against L1 + GAN.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import evaluate, runs, sampling
from gan_jax.evaluator import EvalConfig
from gan_jax.metrics import evaluation

COLUMNS = ("fd", "precision", "recall", "l1", "psnr", "ssim", "cycle_l1")


def row(name: str, records) -> str:
  values = {r["metric"]: r["value"] for r in records}
  cells = [f"{values[c]:.4g}" if c in values else "" for c in COLUMNS]
  return f"| {name} | " + " | ".join(cells) + " |"


def draw_grid(workdirs, path: str, rows: int, seed: int = 0) -> None:
  """Held-out pairs of the first run's data and task (of its first 2 x rows
  test images: CycleGAN translates half): source | outputs |
  truth per row, 2x nearest-neighbour enlarged below 64 pixels."""
  loaded = [runs.load(w) for w in workdirs]
  first = loaded[0]
  real = evaluation.real_images(first.run.dataset, "test", first.run.data_dir,
                                2 * rows, first.run.tfds_data_dir,
                                first.run.image_options())
  pairs = first.family.get("pairs")(first.state, real.images, real.labels,
                                    seed)
  outputs = [sampling.translate(run.family, run.state, pairs.sources)
             for run in loaded]
  source = sampling.to_uint8(np.broadcast_to(
      pairs.sources, pairs.sources.shape[:-1] + outputs[0].shape[-1:]))
  columns = [source, *outputs] + ([] if pairs.truth is None
                                  else [pairs.truth])
  grid = np.stack(columns, axis=1)[:rows]
  if grid.shape[2] < 64:
    grid = grid.repeat(2, axis=2).repeat(2, axis=3)
  sampling.save_png(path, sampling.image_grid(grid))
  print(f"Wrote {path}: source | {' | '.join(workdirs)}"
        f"{'' if pairs.truth is None else ' | target'}", file=sys.stderr)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdirs", required=True)
  parser.add_argument("--extractor", default="classifier")
  parser.add_argument("--inception_weights", default=None)
  parser.add_argument("--num_real", type=int, default=None)
  parser.add_argument("--grid", default=None)
  parser.add_argument("--grid_rows", type=int, default=8)
  args = parser.parse_args()
  if args.grid:
    draw_grid(args.workdirs.split(","), args.grid, args.grid_rows)
  models, baselines = [], {}
  for workdir in args.workdirs.split(","):
    # Every metric the run's family has: with a translation family, the
    # paired ones and (CycleGAN) cycle_l1 too.
    config = EvalConfig(extractor=args.extractor, num_real=args.num_real,
                        inception_weights=args.inception_weights)
    records, step = evaluate.evaluate_checkpoint(config, workdir)
    evaluate.write_records(records, os.path.join(workdir, "eval",
                                                 "translation.json"))
    model = [r for r in records if r["output"] == "model"]
    identity = [r for r in records if r["output"] == "identity"]
    models.append(row(f"{os.path.basename(workdir)} (step {step})", model))
    key = json.dumps(sorted((r["metric"], round(r["value"], 6))
                            for r in identity))
    baselines.setdefault(key, row(
        f"identity: the sources of {os.path.basename(workdir)}", identity))
  print("| run | " + " | ".join(COLUMNS) + " |")
  print("| --- |" + " ---: |" * len(COLUMNS))
  for line in models + list(baselines.values()):
    print(line)


if __name__ == "__main__":
  main()
