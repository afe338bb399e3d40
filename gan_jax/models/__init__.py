"""Generator/discriminator pairs, chosen by name.

    generator, discriminator = models.create("dcgan", image_shape=(28, 28, 1))

Both are flax.linen modules called as `module.apply(variables, x, train=...)`:
generators map z [B, latent_dim] to images [B, H, W, C] in [-1, 1], and
discriminators map images to float32 logits [B]. To add a family, write its
two modules in a new file and add one entry to ARCHITECTURES.
"""

import functools
from typing import Callable, Dict, Tuple

import flax.linen as nn

from gan_jax.errors import ConfigError

from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator

ARCHITECTURES: Dict[str, Tuple[Callable[..., nn.Module],
                               Callable[..., nn.Module]]] = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "mlp": (MLPGenerator, MLPDiscriminator),
    # Tiny variants for fast tests; same code paths as the real ones.
    "dcgan_tiny": (functools.partial(DCGANGenerator, features=8),
                   functools.partial(DCGANDiscriminator, features=8)),
    "mlp_tiny": (functools.partial(MLPGenerator, hidden=(32,)),
                 functools.partial(MLPDiscriminator, hidden=(16,), pieces=2)),
}


def create(arch: str, **kwargs) -> Tuple[nn.Module, nn.Module]:
  """Returns (generator, discriminator) for `arch`, sharing `kwargs`."""
  if arch not in ARCHITECTURES:
    raise ConfigError(f"--arch={arch!r} is not one of "
                     f"{', '.join(sorted(ARCHITECTURES))}.")
  make_generator, make_discriminator = ARCHITECTURES[arch]
  return make_generator(**kwargs), make_discriminator(**kwargs)
