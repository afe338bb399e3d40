r"""Quality benchmark: train one configuration on real data, score it, one line.

    python benchmarks/quality.py --workdir=/tmp/quality_dcgan   # defaults
    python benchmarks/quality.py --workdir=/tmp/quality_mlp --arch=mlp \
        --num_steps=10000

Takes every flag of experiments/mnist_gan.py (defaults here: Fashion-MNIST
from Debian's dataset-fashion-mnist, the run's own 10k steps). The domain
classifier and the real features are prepared first (the classifier trains
once if missing), so the times are training and evaluation only. Prints one
JSON line: the config, steps, wall time, FD, classifier score, precision,
recall, and the evaluation protocol and its cost.

Expected on the 2-core Xeon CPU (jax 0.10.2), default DCGAN, 10k steps:
about 12.5 minutes of training; see README.md "Evaluation" for the numbers.
"""

import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from experiments import mnist_gan  # Defines the training flags.
from gan_jax import evaluate, sampling, train
from gan_jax.errors import UserError
from gan_jax.metrics import evaluation

FLAGS = flags.FLAGS
flags.DEFINE_integer("quality_num_samples", 10_000,
                     "Generated images scored at the end.")
FLAGS.set_default("dataset", "fashion_mnist")
FLAGS.set_default("data_dir", "/usr/share/datasets/fashion-mnist")
FLAGS.set_default("workdir", "/tmp/gan_jax/quality")


def benchmark() -> dict:
  config = mnist_gan.config_from_flags().validate()
  workdir = FLAGS.workdir
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    raise UserError(f"--workdir={workdir} already holds a run; the benchmark "
                    "times a fresh one: pick a new --workdir.")
  evaluator = evaluate.Evaluator(evaluate.EvalConfig.for_run(
      config, num_samples=FLAGS.quality_num_samples,
      metrics=("fd", "score", "precision_recall")))

  start = time.perf_counter()
  train.train_and_evaluate(config, workdir)
  train_seconds = time.perf_counter() - start

  start = time.perf_counter()
  g_state, _, step = sampling.load_generator(workdir)
  records = evaluator.generated(g_state, step=step)
  eval_seconds = time.perf_counter() - start
  protocol = {k: v for k, v in records[0].items()
              if k not in ("metric", "value", "std", "splits")}
  return {
      "config": config.to_dict(),
      "steps": step,
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
  app.run(main)
