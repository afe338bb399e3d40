r"""Draws samples from a trained run's latest (or a named) checkpoint, of any
family that can generate (GAN, VAE).

    python -m experiments.sample --workdir=/tmp/mnist_gan \
        --num_samples=1000 --output=samples.npz --grid=samples.png
    python -m experiments.sample --workdir=/tmp/cond --label=4 \
        --num_samples=64 --output=fours.npz --grid=fours.png

`output` holds `images`, uint8 [N, H, W, C], and for a conditional model
`labels`, int32 [N]: the classes drawn.
"""

import sys

from absl import flags

from gan_jax import cli, runs
from gan_jax.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The training run's workdir.",
                    required=True)
flags.DEFINE_integer("num_samples", 1000, "How many images to draw.",
                     lower_bound=1)
flags.DEFINE_string("output", None, "Where to write the .npz.", required=True)
flags.DEFINE_string("grid", None, "Optional PNG of the first 64 samples.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
flags.DEFINE_integer("seed", 0, "Seed of the latents.")
flags.DEFINE_multi_string(
    "label", [], "Class to draw, by number or by an image folder's class "
    "name (conditional models; repeat for several, cycled; all: every class "
    "in turn, the default).")


def main(argv):
  del argv
  try:
    runs.sample_to_files(FLAGS.workdir, FLAGS.num_samples, FLAGS.output,
                         grid=FLAGS.grid, step=FLAGS.step, seed=FLAGS.seed,
                         labels=FLAGS.label)
  except UserError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  cli.run(main)
