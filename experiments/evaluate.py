r"""Scores a run's checkpoint, or any .npz of images, against real data.

    python -m experiments.evaluate --workdir=/tmp/fashion \
        --dataset=fashion_mnist --data_dir=/usr/share/datasets/fashion-mnist
    python -m experiments.evaluate --samples=other_codebase.npz \
        --dataset=fashion_mnist --data_dir=/usr/share/datasets/fashion-mnist

Prints one JSON line per metric (FD, classifier score, KID, precision,
recall, density, coverage, class coverage; for a VAE also the test ELBO, and
with --metrics=...,nll its IWAE bound; for pix2pix and CycleGAN, those of
the translations of held-out sources, L1, PSNR and SSIM against their true
targets and cycle_l1, each also for the identity baseline, "output":
"identity"), each with its protocol: sample
counts, reference split, extractor and weights hash, resize, seed; and writes
them as a JSON list (default <workdir>/eval/<checkpoint>_step_<step>.json or
<samples>.eval.json). With --workdir, --dataset and --data_dir default to the
run's. The domain classifier is trained on first use (a few minutes on CPU).
"""

import json
import sys

from absl import flags

from gan_jax import cli, evaluate, evaluator, runs
from gan_jax.errors import UserError
from gan_jax.image_preprocessing import RESIZE_METHODS, ImageOptions
from gan_jax.metrics import evaluation, extractors

_DEFAULTS = evaluator.EvalConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A training run to score.")
flags.DEFINE_string("checkpoint", "latest",
                    "With --workdir: latest, best, or a step number.")
flags.DEFINE_string("samples", None,
                    ".npz of images to score (key `images`, uint8 "
                    "[N, H, W, C], or float in [-1, 1]).")
flags.DEFINE_string("dataset", None,
                    "Real data and classifier name (mnist, fashion_mnist); "
                    "default with --workdir: the run's.")
flags.DEFINE_string("data_dir", None,
                    "Image or IDX folder of the real data; default: the "
                    "run's, or TFDS.")
flags.DEFINE_integer("image_size", None, "Centre-crop and resize the real "
                     "images to this size; default: the run's.")
flags.DEFINE_string("background", _DEFAULTS.image.background,
                    "Colour under transparent real images; default: the "
                    "run's.")
flags.DEFINE_enum("resize", _DEFAULTS.image.resize, list(RESIZE_METHODS),
                  "Resize method of --image_size; default: the run's.")
flags.DEFINE_string("tfds_data_dir", None,
                    "TFDS's data folder; default: the run's, or "
                    "~/tensorflow_datasets.")
flags.DEFINE_string("reference_split", _DEFAULTS.reference_split,
                    "Real split to compare with.")
flags.DEFINE_integer("num_real", None,
                     "Use the first N real images (default: the whole split).")
flags.DEFINE_integer("num_samples", _DEFAULTS.num_samples,
                     "With --workdir: images to generate.")
flags.DEFINE_enum("extractor", _DEFAULTS.extractor,
                  sorted(extractors.EXTRACTORS), "Feature network.")
flags.DEFINE_string("inception_weights", None,
                    "With --extractor=inception: pytorch-fid's "
                    "pt_inception-2015-12-05-6726825d.pth or its .npz.")
flags.DEFINE_list(
    "metrics", None,
    "Any of " + ", ".join([*evaluation.METRICS, *evaluator.DATA_METRICS,
                           *evaluator.TRANSLATION_METRICS]) +
    " (default: every sample metric, and elbo for a VAE, l1, psnr, ssim "
    "(and cycle_l1) for a translation run; nll is the IWAE bound with "
    "--nll_samples, minutes per 10k images on a CPU).")
flags.DEFINE_integer("nll_samples", _DEFAULTS.nll_samples,
                     "Importance samples per image of the nll metric.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of latents and KID subsets.")
flags.DEFINE_string("output", None, "JSON file for the results.")
flags.DEFINE_string("view", None, "Score this view of the run's model "
                    "(e.g. live: the GAN's live generator, not its EMA).")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments {argv[1:]}; "
             "flags look like --workdir=/tmp/run")
  config = evaluator.EvalConfig(
      dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
      tfds_data_dir=FLAGS.tfds_data_dir,
      image=ImageOptions(FLAGS.image_size, FLAGS.background, FLAGS.resize),
      reference_split=FLAGS.reference_split, num_real=FLAGS.num_real,
      num_samples=FLAGS.num_samples, extractor=FLAGS.extractor,
      inception_weights=FLAGS.inception_weights,
      metrics=tuple(FLAGS.metrics) if FLAGS.metrics else None,
      nll_samples=FLAGS.nll_samples, seed=FLAGS.seed)
  try:
    records = evaluate.run(config, workdir=FLAGS.workdir,
                           samples=FLAGS.samples,
                           which=runs.parse_which(FLAGS.checkpoint),
                           output=FLAGS.output, view=FLAGS.view)
  except UserError as e:
    sys.exit(f"error: {e}")
  for record in records:
    print(json.dumps(record))


if __name__ == "__main__":
  cli.run(main)
