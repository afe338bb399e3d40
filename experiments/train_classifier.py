r"""Trains the domain classifier of a dataset, for classifier-based metrics.

    python -m experiments.train_classifier --dataset=fashion_mnist \
        --data_dir=/usr/share/datasets/fashion-mnist --output_root=/tmp/clf

Writes <output_root>/<sha256 of the train split>/{params/,info.json}
(default output_root: ~/.cache/gan_jax/classifiers, or
$GAN_JAX_CACHE/classifiers), replacing any classifier of the same data, and
prints info.json. `gan_jax.metrics.classifier.
load_or_train_classifier` loads it from there.
"""

import json
import sys

from absl import flags

from gan_jax import cli
from gan_jax.errors import UserError
from gan_jax.metrics import classifier

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "mnist",
                    "TFDS name of the data; with --data_dir it names the data "
                    "there.")
flags.DEFINE_string("data_dir", None,
                    "Folder of MNIST-format IDX files; overrides TFDS.")
flags.DEFINE_string("tfds_data_dir", None,
                    "TFDS's data folder (default ~/tensorflow_datasets).")
flags.DEFINE_string("split", "train", "Split to train on.")
flags.DEFINE_string("test_split", "test", "Split to measure accuracy on.")
flags.DEFINE_integer("num_epochs", 3, "Passes over the training split.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("seed", 0, "Seed of init, data order and dropout.")
flags.DEFINE_string("output_root", None,
                    "Classifiers folder; default ~/.cache/gan_jax/classifiers.")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments {argv[1:]}; "
             "flags look like --num_epochs=3")
  try:
    info = classifier.train_classifier(
        FLAGS.dataset, FLAGS.data_dir, split=FLAGS.split,
        test_split=FLAGS.test_split, num_epochs=FLAGS.num_epochs,
        batch_size=FLAGS.batch_size, seed=FLAGS.seed, root=FLAGS.output_root,
        tfds_data_dir=FLAGS.tfds_data_dir)
  except UserError as e:
    sys.exit(f"error: {e}")
  print(json.dumps(info, indent=2))


if __name__ == "__main__":
  cli.run(main)
