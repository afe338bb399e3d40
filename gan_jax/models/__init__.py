"""Networks chosen by name: the GAN's pairs and the VAE's pairs.

    generator, discriminator = models.create("dcgan", image_shape=(28, 28, 1))
    encoder, decoder = models.create_vae("conv", latent_dim=32,
                                         image_shape=(28, 28, 1),
                                         out_channels=1)

All are flax.linen modules. Generators map z [B, latent_dim] to images
[B, H, W, C] in [-1, 1] (`apply(variables, z, train=...)`), discriminators
map images to float32 logits [B]; VAE encoders and decoders are described in
gan_jax/models/vae.py. Your own networks need no entry here: pass the
modules in the model config (GANConfig(generator=..., discriminator=...)).
"""

import dataclasses
import functools
from typing import Callable, Dict, Tuple

import flax.linen as nn

from gan_jax.errors import ConfigError

from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator
from gan_jax.models.resnet import ResNetDiscriminator, ResNetGenerator
from gan_jax.models.vae import (ConvDecoder, ConvEncoder, LabelledDecoder,
                                LabelledEncoder, MLPDecoder, MLPEncoder)

ARCHITECTURES: Dict[str, Tuple[Callable[..., nn.Module],
                               Callable[..., nn.Module]]] = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "mlp": (MLPGenerator, MLPDiscriminator),
    # DCGAN with a BatchNorm-free D: WGAN-GP's critic.
    "dcgan_critic": (DCGANGenerator,
                     functools.partial(DCGANDiscriminator, batch_norm=False)),
    # SNGAN's CIFAR-10 ResNets: G 256 channels, D 128 with spectral norm.
    "resnet": (ResNetGenerator, ResNetDiscriminator),
    # The same ResNets at 64 channels in both players (~1/16 of G's and
    # 1/4 of D's convolution FLOPs): for CPU budgets and small datasets.
    "resnet_small": (functools.partial(ResNetGenerator, features=64),
                     functools.partial(ResNetDiscriminator, features=64)),
    # Widths doubling at each halving of resolution, as SNGAN's and
    # BigGAN's networks at 64x64 and above: G 1024 channels at 4x4 down to 64
    # at 64x64, D 64 at 64x64 up to 512 at 8x8.
    "resnet_pyramid": (
        functools.partial(ResNetGenerator, features=64, pyramid=True),
        functools.partial(ResNetDiscriminator, features=64, pyramid=True)),
    # The same at a quarter of the widths (~1/16 of the FLOPs; at 64x64
    # about DCGAN's): for CPU budgets and small datasets.
    "resnet_pyramid_small": (
        functools.partial(ResNetGenerator, features=16, pyramid=True),
        functools.partial(ResNetDiscriminator, features=16, pyramid=True)),
    # Tiny variants for fast tests; same code paths as the real ones.
    "dcgan_tiny": (functools.partial(DCGANGenerator, features=8),
                   functools.partial(DCGANDiscriminator, features=8)),
    "mlp_tiny": (functools.partial(MLPGenerator, hidden=(32,)),
                 functools.partial(MLPDiscriminator, hidden=(16,), pieces=2)),
    "resnet_tiny": (functools.partial(ResNetGenerator, features=8),
                    functools.partial(ResNetDiscriminator, features=8)),
}


def create(arch: str, **kwargs) -> Tuple[nn.Module, nn.Module]:
  """Returns (generator, discriminator) for `arch`, sharing `kwargs`."""
  if arch not in ARCHITECTURES:
    raise ConfigError(f"--arch={arch!r} is not one of "
                     f"{', '.join(sorted(ARCHITECTURES))}.")
  make_generator, make_discriminator = ARCHITECTURES[arch]
  return make_generator(**kwargs), make_discriminator(**kwargs)


def with_spectral_norm(discriminator: nn.Module) -> nn.Module:
  """`discriminator` with its `spectral_norm` field set (--spectral_norm)."""
  if "spectral_norm" not in _fields(discriminator):
    raise ConfigError(f"--spectral_norm: {type(discriminator).__name__} has "
                      "no spectral_norm option; use --arch=dcgan or resnet, "
                      "or wrap your layers in layers.spectral_normalized.")
  return discriminator.clone(spectral_norm=True)


def with_class_head(discriminator: nn.Module, class_head: str) -> nn.Module:
  """`discriminator` with its conditional head set (--class_head)."""
  if "class_head" not in _fields(discriminator):
    raise ConfigError(f"--class_head={class_head}: "
                      f"{type(discriminator).__name__} has no class_head "
                      "option; use one of the built-in architectures, or "
                      "sow class logits from your own D.")
  return discriminator.clone(class_head=class_head)


VAE_ARCHITECTURES: Dict[str, Tuple[Callable[..., nn.Module],
                                   Callable[..., nn.Module]]] = {
    # The flax example's network (examples/vae): one hidden layer of 500.
    "mlp": (MLPEncoder, MLPDecoder),
    "mlp2": (functools.partial(MLPEncoder, hidden=(512, 512)),
             functools.partial(MLPDecoder, hidden=(512, 512))),
    "conv": (ConvEncoder, ConvDecoder),
    # Tiny variants for fast tests.
    "mlp_tiny": (functools.partial(MLPEncoder, hidden=(16,)),
                 functools.partial(MLPDecoder, hidden=(16,))),
    "conv_tiny": (functools.partial(ConvEncoder, features=4, hidden=16),
                  functools.partial(ConvDecoder, features=4, hidden=16)),
}


def create_vae(arch: str, *, latent_dim: int, image_shape, out_channels: int,
               **kwargs) -> Tuple[nn.Module, nn.Module]:
  """(encoder, decoder) of `arch` for images of `image_shape`."""
  if arch not in VAE_ARCHITECTURES:
    raise ConfigError(f"--arch={arch!r} is not one of "
                      f"{', '.join(sorted(VAE_ARCHITECTURES))}.")
  make_encoder, make_decoder = VAE_ARCHITECTURES[arch]
  encoder = make_encoder(latent_dim=latent_dim, **kwargs)
  if "image_shape" in _fields(encoder):
    encoder = encoder.clone(image_shape=tuple(image_shape))
  return encoder, make_decoder(image_shape=tuple(image_shape),
                               out_channels=out_channels, **kwargs)


def _fields(module: nn.Module):
  return {f.name for f in dataclasses.fields(module)}
