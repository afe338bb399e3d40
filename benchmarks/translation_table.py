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
prints one markdown row per model, then the baselines.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import evaluate
from gan_jax.evaluator import EvalConfig

COLUMNS = ("fd", "precision", "recall", "l1", "psnr", "ssim", "cycle_l1")


def row(name: str, records) -> str:
  values = {r["metric"]: r["value"] for r in records}
  cells = [f"{values[c]:.4g}" if c in values else "" for c in COLUMNS]
  return f"| {name} | " + " | ".join(cells) + " |"


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdirs", required=True)
  parser.add_argument("--extractor", default="classifier")
  parser.add_argument("--inception_weights", default=None)
  parser.add_argument("--num_real", type=int, default=None)
  args = parser.parse_args()
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
