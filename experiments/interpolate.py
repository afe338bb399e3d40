r"""Interpolates in a trained run's latent space and writes a PNG grid.

    python -m experiments.interpolate --workdir=/tmp/mnist_gan --output=walk.png
    python -m experiments.interpolate --workdir=/tmp/mnist_vae --output=walk.png \
        --between=images --mode=lerp --steps=10 --rows=6

Each row goes from one latent to another in --steps images: two random draws
from the prior (--between=random), or, for a VAE, the encodings of two real
images of --split, which are shown at the ends of the row (--between=images).
slerp is the default for Gaussian latents. Works for any family that can
decode latents (GAN, VAE).
"""

import sys

from absl import flags

from gan_jax import cli, interpolation, runs
from gan_jax.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The training run's workdir.",
                    required=True)
flags.DEFINE_string("output", None, "Where to write the PNG.", required=True)
flags.DEFINE_enum("mode", "slerp", sorted(interpolation.MODES),
                  "Path between the endpoints.")
flags.DEFINE_integer("steps", 8, "Images per row, endpoints included.")
flags.DEFINE_integer("rows", 8, "Interpolations (rows).")
flags.DEFINE_enum("between", "random", ["random", "images"],
                  "Endpoints: random prior draws, or encodings of real images "
                  "(families that can encode: the VAE).")
flags.DEFINE_string("split", "test", "With --between=images: the split.")
flags.DEFINE_string("data_dir", None, "With --between=images: the run's data "
                    "folder if it moved (default: the run's).")
flags.DEFINE_integer("seed", 0, "Seed of the endpoints.")
flags.DEFINE_string("checkpoint", "latest", "latest, best or a step number.")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments {argv[1:]}")
  try:
    interpolation.interpolation_grid(
        FLAGS.workdir, FLAGS.output, mode=FLAGS.mode, steps=FLAGS.steps,
        rows=FLAGS.rows, between=FLAGS.between, seed=FLAGS.seed,
        which=runs.parse_which(FLAGS.checkpoint),
        split=FLAGS.split, data_dir=FLAGS.data_dir)
  except UserError as e:
    sys.exit(f"error: {e}")
  print(f"Wrote {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main)
