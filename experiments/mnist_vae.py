r"""Trains a VAE on MNIST-like digits (Kingma & Welling 2014).

    python -m experiments.mnist_vae --workdir=/tmp/mnist_vae           # TFDS
    python -m experiments.mnist_vae --workdir=/tmp/mnist_vae \
        --data_dir=/path/to/mnist --preset=flax_example                # offline

Defaults: the flax example's MLP (500 hidden units, 20 latents), Bernoulli
likelihood on dynamically binarised MNIST, Adam 1e-3, batch 128, 10 epochs.
Writes sample and reconstruction grids to samples/, checkpoints, and the
ELBO in nats to the log and TensorBoard; rerunning resumes. Score it with
`python -m experiments.evaluate --workdir=... --metrics=elbo,nll`.
"""

from gan_jax import cli
from gan_jax.families import vae

cli.define_training_flags(vae.FAMILY, workdir="/tmp/gan_jax/mnist_vae")

if __name__ == "__main__":
  cli.run(cli.training_main(vae.FAMILY))
