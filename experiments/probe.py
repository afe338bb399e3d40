r"""Linear probe of a trained discriminator's (or VAE encoder's) features.

    python -m experiments.probe --workdir=/tmp/mnist_gan [--layer=block_1] \
        [--split=test]

Freezes the run's network, max-pools each layer's activations to a 4x4 grid,
and fits softmax regression (optax L-BFGS) on the training labels; the L2
weight and the best layer are chosen on a held-out sixth of the training
split. The same protocol runs on the raw pixels and on the architecture at
its random initialisation (gan_jax/probe.py). Prints a table, and one JSON
line per (source, layer) on stdout; --output writes them as a JSON list.
"""

import dataclasses
import json
import sys

from absl import flags

from gan_jax import cli, probe, runs
from gan_jax.errors import UserError

_DEFAULTS = probe.ProbeConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The training run to probe.",
                    required=True)
flags.DEFINE_string("checkpoint", "latest", "latest, best or a step number.")
flags.DEFINE_string("layer", _DEFAULTS.layer, "A layer's name, or all (every "
                    "layer concatenated); default: each layer, and all.")
flags.DEFINE_string("split", _DEFAULTS.split, "The split reported on.")
flags.DEFINE_string("data_dir", None, "The run's data folder, if it moved.")
flags.DEFINE_integer("num_train", _DEFAULTS.num_train,
                     "Use the first N training images (0: all).", lower_bound=0)
flags.DEFINE_list("l2_weights", [str(w) for w in _DEFAULTS.l2_weights],
                  "L2 weights to choose from on the validation slice.")
flags.DEFINE_integer("iterations", _DEFAULTS.iterations,
                     "L-BFGS iterations per fit.", lower_bound=1)
flags.DEFINE_integer("seed", _DEFAULTS.seed,
                     "Seed of the validation slice and the random network.")
flags.DEFINE_string("output", None, "JSON file for the results.")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments {argv[1:]}")
  try:
    config = dataclasses.replace(
        _DEFAULTS, layer=FLAGS.layer, split=FLAGS.split,
        num_train=FLAGS.num_train, iterations=FLAGS.iterations,
        seed=FLAGS.seed,
        l2_weights=tuple(float(w) for w in FLAGS.l2_weights))
  except ValueError:
    sys.exit(f"error: --l2_weights={','.join(FLAGS.l2_weights)} must be "
             "numbers, e.g. 1e-4,1e-3.")
  try:
    records = probe.probe_run(FLAGS.workdir, config,
                              checkpoint=runs.parse_which(FLAGS.checkpoint),
                              data_dir=FLAGS.data_dir)
  except UserError as e:
    sys.exit(f"error: {e}")
  print(probe.table(records), file=sys.stderr)
  for record in records:
    print(json.dumps(record))
  if FLAGS.output:
    with open(FLAGS.output, "w", encoding="utf-8") as f:
      json.dump(records, f, indent=1)


if __name__ == "__main__":
  cli.run(main)
