r"""Converts pytorch-fid's InceptionV3 weights from .pth to .npz (needs torch).

    python -m experiments.convert_inception \
        --pth=/path/to/pt_inception-2015-12-05-6726825d.pth \
        --output=/path/to/pt_inception-2015-12-05.npz

Then pass --inception_weights=<output> where InceptionV3 features are used;
reading the .npz needs no torch. Prints both files' sha256. The default
--output is the .pth's path with .npz in place of .pth.
"""

import json
import os
import sys

from absl import flags

from gan_jax import cli
from gan_jax.errors import UserError
from gan_jax.metrics import inception_weights

FLAGS = flags.FLAGS
flags.DEFINE_string("pth", None,
                    f"pytorch-fid's weights file, {inception_weights.WEIGHTS_NAME}.",
                    required=True)
flags.DEFINE_string("output", None,
                    "Where to write the .npz; default: --pth with .npz.")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments {argv[1:]}; "
             "flags look like --pth=PATH")
  output = FLAGS.output or os.path.splitext(FLAGS.pth)[0] + ".npz"
  try:
    info = inception_weights.convert_pth_to_npz(FLAGS.pth, output)
  except UserError as e:
    sys.exit(f"error: {e}")
  print(json.dumps(info, indent=2))


if __name__ == "__main__":
  cli.run(main)
