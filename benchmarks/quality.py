r"""Quality benchmark: train one configuration on real data, score it, one line.

    python benchmarks/quality.py --workdir=/tmp/quality_dcgan   # the GAN
    python benchmarks/quality.py --family=vae --preset=fashion \
        --workdir=/tmp/quality_vae                               # the VAE

Takes every training flag of the family's experiment (defaults here:
Fashion-MNIST from Debian's dataset-fashion-mnist). The domain classifier
and the real features are prepared first (the classifier trains once if
missing), so the times are training and evaluation only. Prints one JSON
line: the family, configs, steps, wall time, FD, classifier score,
precision, recall, and the evaluation protocol and its cost.

Expected on a 2-core CPU (jax 0.10.2): README.md, "Evaluation" and
"The VAE against the GAN".
"""

import json
import os
import sys
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import cli, families, runs, train
from gan_jax.config import RunConfig
from gan_jax.errors import UserError
from gan_jax.evaluator import EvalConfig, Evaluator
from gan_jax.metrics import evaluation


def _family_name(argv) -> str:
  """--family must be known before the family's flags can be defined."""
  for arg in argv[1:]:
    if arg.startswith("--family="):
      return arg.split("=", 1)[1]
  return "gan"


FAMILY = families.get(_family_name(sys.argv))
FLAGS = flags.FLAGS
flags.DEFINE_enum("family", "gan", sorted(families.FAMILIES),
                  "Model family to train.")
flags.DEFINE_integer("quality_num_samples", 10_000,
                     "Generated images scored at the end.")
flags.DEFINE_list("quality_metrics", ["fd", "score", "precision_recall"],
                  "Metrics scored at the end (no score with features-only "
                  "Inception weights).")
cli.define_training_flags(FAMILY, workdir="/tmp/gan_jax/quality")
FLAGS.set_default("dataset", "fashion_mnist")
FLAGS.set_default("data_dir", "/usr/share/datasets/fashion-mnist")


def benchmark() -> dict:
  preset = FAMILY.preset(FLAGS.preset)
  run = cli.config_from_flags(RunConfig, preset.run).validate()
  model = cli.config_from_flags(FAMILY.config, preset.model).validate()
  workdir = FLAGS.workdir
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    raise UserError(f"--workdir={workdir} already holds a run; the benchmark "
                    "times a fresh one: pick a new --workdir.")
  evaluator = Evaluator(EvalConfig.for_run(
      run, num_samples=FLAGS.quality_num_samples,
      metrics=tuple(FLAGS.quality_metrics)), FAMILY)

  start = time.perf_counter()
  train.train_and_evaluate(FAMILY, model, run, workdir)
  train_seconds = time.perf_counter() - start

  start = time.perf_counter()
  trained = runs.load(workdir)
  records = evaluator.generated(trained.state, step=trained.step)
  eval_seconds = time.perf_counter() - start
  protocol = {k: v for k, v in records[0].items()
              if k not in ("metric", "value", "std", "splits")}
  return {
      "family": FAMILY.name,
      "preset": FLAGS.preset,
      "model": model.to_dict(),
      "run": run.to_dict(),
      "steps": trained.step,
      "train_seconds": round(train_seconds, 1),
      **{k: round(v, 4) for k, v in evaluation.by_metric(records).items()},
      "eval_seconds": round(eval_seconds, 1),
      "protocol": protocol,
  }


def main(argv):
  del argv
  try:
    result = benchmark()
  except UserError as e:
    sys.exit(f"error: {e}")
  print(json.dumps(result))


if __name__ == "__main__":
  cli.run(main)
