r"""Trains pix2pix (Isola et al. 2017) on pairs made from real images.

    python -m experiments.pix2pix --task=denoise --workdir=/tmp/pix2pix \
        [--data_dir=/path/to/mnist] [--noadversarial]

--task: denoise (Gaussian and salt-and-pepper noise), inpaint (a masked
square), colorize (grey to colour; a colour dataset), superres (14 to 28
pixels); each source is the real image corrupted with a seeded key
(gan_jax/corruptions.py). U-Net generator, PatchGAN discriminator, L1
weight 100, Adam 2e-4/0.5. Grids in samples/ show source | output | target
per row; rerunning resumes. --noadversarial trains the U-Net on L1 alone
(the paper's ablation).
"""

from gan_jax import cli
from gan_jax.families import pix2pix

cli.define_training_flags(pix2pix.FAMILY, workdir="/tmp/gan_jax/pix2pix")

if __name__ == "__main__":
  cli.run(cli.training_main(pix2pix.FAMILY))
