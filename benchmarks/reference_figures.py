r"""Reference figures: what the metrics say of real, blurred and noise images.

    python benchmarks/reference_figures.py \
        --dataset=fashion_mnist --data_dir=/usr/share/datasets/fashion-mnist

Scores three sets of `--num_images` images against the reference split
(`--reference_split`, default test) under the dataset's domain classifier:

  real   random images of `--split` (default train): the floor of each metric;
  blur   the same images, Gaussian blur of sigma `--blur_sigma` pixels;
  noise  uniform noise images of the same shape.

Prints one JSON line per set ({"images": ..., "fd": ..., "score": ...,
"precision": ..., ...}) and then the protocol. Expected on Fashion-MNIST
(README "Reference figures"): real FD 0.36, blur FD 53.7, noise FD 487.2.
"""

import json
import os
import sys

from absl import app, flags
import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import data, evaluate
from gan_jax.errors import UserError
from gan_jax.metrics import evaluation

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "fashion_mnist", "Dataset and classifier name.")
flags.DEFINE_string("data_dir", "/usr/share/datasets/fashion-mnist",
                    "IDX folder of the dataset (empty: TFDS).")
flags.DEFINE_string("split", "train", "Split the 'real' images come from.")
flags.DEFINE_string("reference_split", "test", "Split they are compared with.")
flags.DEFINE_integer("num_images", 10_000, "Images per scored set.")
flags.DEFINE_float("blur_sigma", 1.0, "Gaussian blur, in pixels.")
flags.DEFINE_integer("seed", 0, "Seed of the image choice and the noise.")


def image_sets(images: np.ndarray, num_images: int, blur_sigma: float,
               seed: int) -> dict:
  """{"real", "blur", "noise"}: uint8 [num_images, H, W, C] each."""
  rng = np.random.default_rng(seed)
  real = images[rng.choice(len(images), num_images, replace=False)]
  # Blur each image's rows and columns only, not across images or channels.
  blurred = ndimage.gaussian_filter(real.astype(np.float32),
                                    sigma=(0, blur_sigma, blur_sigma, 0))
  return {
      "real": real,
      "blur": np.clip(np.rint(blurred), 0, 255).astype(np.uint8),
      "noise": rng.integers(0, 256, real.shape, dtype=np.uint8),
  }


def main(argv):
  del argv
  data_dir = FLAGS.data_dir or None
  try:
    evaluator = evaluate.Evaluator(evaluate.EvalConfig(
        dataset=FLAGS.dataset, data_dir=data_dir,
        reference_split=FLAGS.reference_split, seed=FLAGS.seed))
    source = data.load(FLAGS.dataset, FLAGS.split, data_dir)
    if not 2 <= FLAGS.num_images <= len(source):
      raise UserError(f"--num_images={FLAGS.num_images} must be in [2, "
                      f"{len(source)}], the size of --split={FLAGS.split}.")
    sets = image_sets(source.images, FLAGS.num_images, FLAGS.blur_sigma,
                      FLAGS.seed)
    records = {}
    for name, images in sets.items():
      records[name] = evaluator(images, source=name)
      values = evaluation.by_metric(records[name])
      print(json.dumps({"images": name,
                        **{k: round(v, 4) for k, v in values.items()}}),
            flush=True)
  except UserError as e:
    sys.exit(f"error: {e}")
  protocol = {k: v for k, v in records["real"][0].items()
              if k not in ("metric", "value", "std", "splits", "source")}
  print(json.dumps({"protocol": protocol, "split": FLAGS.split,
                    "blur_sigma": FLAGS.blur_sigma}))


if __name__ == "__main__":
  app.run(main)
