r"""Trains CycleGAN (Zhu et al. 2017): unpaired translation between two domains.

    python -m experiments.cyclegan --workdir=/tmp/cyclegan \
        --data_dir=/path/to/colour/images --image_size=64   # --task=colorize
    python -m experiments.cyclegan --workdir=/tmp/horse2zebra --task=labels \
        --dataset=cycle_gan/horse2zebra --split=trainA+trainB

--task=colorize (the default) splits a colour dataset into two seeded halves
and greys one: the model learns grey -> colour without ever seeing a pair.
--task=labels reads label 0 as domain A and 1 as B (TFDS cycle_gan/*, or a
folder of two class folders). U-Net generators, PatchGAN discriminators,
LSGAN losses, cycle weight 10, identity 0.5, pools of 50 fakes. Grids in
samples/ show x | G_AB(x) | G_BA(G_AB(x)) | G_BA(x) | G_AB(G_BA(x)) per row;
rerunning resumes (pools included).
"""

from gan_jax import cli
from gan_jax.families import cyclegan

cli.define_training_flags(cyclegan.FAMILY, workdir="/tmp/gan_jax/cyclegan")

if __name__ == "__main__":
  cli.run(cli.training_main(cyclegan.FAMILY))
