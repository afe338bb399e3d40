r"""Trains a GAN on MNIST-like digits.

    python -m experiments.mnist_gan --workdir=/tmp/mnist_gan           # TFDS
    python -m experiments.mnist_gan --workdir=/tmp/fashion \
        --data_dir=/usr/share/datasets/fashion-mnist                    # offline

Defaults: DCGAN, non-saturating loss, Adam 2e-4/0.5, batch 64, 10k steps.
Expected: on a 2-core Xeon CPU about 12 minutes (~14.5 steps/s). Real
Fashion-MNIST ends near d_loss 0.55, g_loss 2.25, D(x) 0.80, D(G(z)) 0.20,
with recognisable garments in samples/step_0010000.png (docs/ has one).
Running it again in the same workdir resumes from the latest checkpoint.
"""

import signal
import sys

from absl import app, flags

from gan_jax import losses, models, parallel, train
from gan_jax.config import GANConfig
from gan_jax.errors import Preempted, UserError

_DEFAULTS = GANConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gan_jax/mnist_gan",
                    "Checkpoints, sample grids and TensorBoard events go here.")
flags.DEFINE_string("dataset", _DEFAULTS.dataset, "TFDS dataset name.")
flags.DEFINE_string("data_dir", None,
                    "Folder of MNIST-format IDX files; overrides --dataset.")
flags.DEFINE_string("split", _DEFAULTS.split, "Split to train on.")
flags.DEFINE_enum("arch", _DEFAULTS.arch, sorted(models.ARCHITECTURES),
                  "Generator/discriminator family.")
flags.DEFINE_enum("loss", _DEFAULTS.loss, sorted(losses.LOSSES),
                  "Adversarial loss.")
flags.DEFINE_enum("dtype", _DEFAULTS.dtype, ["float32", "bfloat16", "float16"],
                  "Compute dtype (params and losses stay float32).")
flags.DEFINE_integer("latent_dim", _DEFAULTS.latent_dim, "Size of z.")
flags.DEFINE_float("lr", _DEFAULTS.lr, "Adam learning rate of both players.")
flags.DEFINE_float("b1", _DEFAULTS.b1, "Adam beta1.")
flags.DEFINE_float("b2", _DEFAULTS.b2, "Adam beta2.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Global batch size.")
flags.DEFINE_integer("d_steps", _DEFAULTS.d_steps,
                     "Discriminator updates per generator update.")
flags.DEFINE_float("g_ema_decay", _DEFAULTS.g_ema_decay,
                   "Keep an exponential moving average of G's params with "
                   "this decay (e.g. 0.999) and sample from it; 0: none.")
flags.DEFINE_integer("num_steps", _DEFAULTS.num_steps,
                     "Generator updates in the whole run.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of init, data order, z.")
flags.DEFINE_integer("log_every", _DEFAULTS.log_every, "Steps between logs.")
flags.DEFINE_integer("sample_every", _DEFAULTS.sample_every,
                     "Steps between sample grids.")
flags.DEFINE_integer("checkpoint_every", _DEFAULTS.checkpoint_every,
                     "Steps between checkpoints.")
flags.DEFINE_integer("keep_checkpoints", _DEFAULTS.keep_checkpoints,
                     "Checkpoints to keep.")
flags.DEFINE_integer("num_grid_samples", _DEFAULTS.num_grid_samples,
                     "Images in each sample grid.")
flags.DEFINE_enum("on_nan", _DEFAULTS.on_nan, ["stop", "restore"],
                  "On a non-finite loss or gradient: stop, or go back to the "
                  "last good checkpoint with a new PRNG stream (3 times at "
                  "most).")
flags.DEFINE_integer("eval_every", _DEFAULTS.eval_every,
                     "Steps between FD and classifier-score evaluations, "
                     "which keep the best checkpoint by FD in best/ (0: off).")
flags.DEFINE_integer("eval_num_samples", _DEFAULTS.eval_num_samples,
                     "Generated images per evaluation.")
flags.DEFINE_string("eval_split", _DEFAULTS.eval_split,
                    "Real split the samples are compared with.")
flags.DEFINE_enum("eval_extractor", _DEFAULTS.eval_extractor,
                  ["classifier", "inception"],
                  "Features for FD: the dataset's domain classifier (trained "
                  "on first use) or InceptionV3 (needs --inception_weights).")
flags.DEFINE_string("inception_weights", None,
                    "pytorch-fid's pt_inception-2015-12-05-6726825d.pth or "
                    "its .npz (experiments.convert_inception).")
flags.DEFINE_bool("multihost", False,
                  "Call jax.distributed.initialize() first (one process per "
                  "host; auto-detected on TPU pods and SLURM).")
flags.DEFINE_string("coordinator_address", None,
                    "With --multihost off TPU/SLURM: host:port of process 0.")
flags.DEFINE_integer("num_processes", None,
                     "With --multihost off TPU/SLURM: number of processes.")
flags.DEFINE_integer("process_id", None,
                     "With --multihost off TPU/SLURM: this process's index.")


def config_from_flags() -> GANConfig:
  return GANConfig(**{name: FLAGS[name].value
                      for name in GANConfig.__dataclass_fields__})


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments {argv[1:]}; "
             "flags look like --lr=1e-4")
  if FLAGS.multihost:
    parallel.initialize_multihost(FLAGS.coordinator_address,
                                  FLAGS.num_processes, FLAGS.process_id)
  try:
    train.train_and_evaluate(config_from_flags(), FLAGS.workdir)
  except UserError as e:
    sys.exit(f"error: {e}")
  except Preempted as e:
    print(e, file=sys.stderr)
    sys.exit(128 + signal.SIGTERM)  # The conventional "killed by SIGTERM".


if __name__ == "__main__":
  app.run(main)
