r"""The PyTorch eager twin of gan_jax's ResNet GAN steps (not a dependency).

gan_jax/models/resnet.py's networks, layer for layer: SNGAN's CIFAR-10
ResNets (Miyato et al. 2018, table 4; `--arch=resnet`: G 256 channels, D
128) or their variants (`resnet_small`: 64 and 64; `resnet_pyramid` and
`resnet_pyramid_small`: widths doubling at each halving of resolution);
residual up-blocks with BatchNorm in G; residual down-blocks, spectral norm
on every weight (torch.nn.utils.parametrizations.spectral_norm, one power
iteration per forward) and global sum pooling in D. One step is gan_jax's
`train_step` with d_steps=1: D on a real and a fake batch, then a
non-saturating G step on the same fakes; Adam(2e-4, 0.5, 0.999). Random
data; prints one JSON line.

    python benchmarks/torch_resnet_gan.py --batch_size=64 --steps=20
    python benchmarks/torch_resnet_gan.py --arch=resnet_pyramid_small \
        --image_size=64 --steps=5
"""

import argparse
import json
import math
import time

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LATENT_DIM = 100  # gan_jax's default latent_dim.
# gan_jax.models.ARCHITECTURES' ResNets: (G features, D features, pyramid).
ARCHITECTURES = {"resnet": (256, 128, False), "resnet_small": (64, 64, False),
                 "resnet_pyramid": (64, 64, True),
                 "resnet_pyramid_small": (16, 16, True)}


class GeneratorBlock(nn.Module):

  def __init__(self, c_in, channels):
    super().__init__()
    self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(channels)
    self.conv1 = nn.Conv2d(c_in, channels, 3, padding=1)
    self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
    self.shortcut = nn.Conv2d(c_in, channels, 1)
    self.up = nn.Upsample(scale_factor=2)

  def forward(self, x):
    h = self.conv1(self.up(torch.relu(self.bn1(x))))
    h = self.conv2(torch.relu(self.bn2(h)))
    return h + self.shortcut(self.up(x))


class DiscriminatorBlock(nn.Module):

  def __init__(self, c_in, channels, down=True, first=False):
    super().__init__()
    self.down, self.first = down, first
    self.conv1 = spectral_norm(nn.Conv2d(c_in, channels, 3, padding=1))
    self.conv2 = spectral_norm(nn.Conv2d(channels, channels, 3, padding=1))
    self.shortcut = (spectral_norm(nn.Conv2d(c_in, channels, 1))
                     if down or c_in != channels else None)
    self.pool = nn.AvgPool2d(2)

  def forward(self, x):
    h = x if self.first else torch.relu(x)
    h = self.conv2(torch.relu(self.conv1(h)))
    if self.first:
      shortcut = self.shortcut(self.pool(x))
    elif self.shortcut is not None:
      shortcut = self.shortcut(x)
      shortcut = self.pool(shortcut) if self.down else shortcut
    else:
      shortcut = x
    return (self.pool(h) if self.down else h) + shortcut


class Generator(nn.Module):

  def __init__(self, widths):
    """widths: the 4x4 base map's channels, then each up-block's."""
    super().__init__()
    self.base = widths[0]
    self.dense = nn.Linear(LATENT_DIM, 4 * 4 * widths[0])
    self.blocks = nn.Sequential(*[GeneratorBlock(c_in, c_out) for c_in, c_out
                                  in zip(widths, widths[1:])])
    self.bn = nn.BatchNorm2d(widths[-1])
    self.out = nn.Conv2d(widths[-1], 3, 3, padding=1)

  def forward(self, z):
    x = self.dense(z).view(-1, self.base, 4, 4)
    return torch.tanh(self.out(torch.relu(self.bn(self.blocks(x)))))


class Discriminator(nn.Module):

  def __init__(self, widths, n_down):
    """widths: each block's channels; the first n_down blocks pool."""
    super().__init__()
    self.blocks = nn.Sequential(*[
        DiscriminatorBlock(c_in, c_out, down=i < n_down, first=i == 0)
        for i, (c_in, c_out) in enumerate(zip([3] + widths, widths))])
    self.dense = spectral_norm(nn.Linear(widths[-1], 1))

  def forward(self, x):
    return self.dense(torch.relu(self.blocks(x)).sum(dim=(2, 3)))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--arch", default="resnet", choices=ARCHITECTURES)
  parser.add_argument("--image_size", type=int, default=32,
                      choices=(32, 64))
  args = parser.parse_args()
  torch.manual_seed(0)
  g_features, d_features, pyramid = ARCHITECTURES[args.arch]
  n_up = int(math.log2(args.image_size // 4))  # From 4x4.
  n_down = n_up - 1  # Down to 8x8, then two plain blocks.
  generator = Generator([g_features << (n_up - i if pyramid else 0)
                         for i in range(n_up + 1)])
  discriminator = Discriminator(
      [d_features << (min(i, n_down) if pyramid else 0)
       for i in range(n_down + 2)], n_down)
  g_opt = torch.optim.Adam(generator.parameters(), 2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(discriminator.parameters(), 2e-4,
                           betas=(0.5, 0.999))
  criterion = nn.BCEWithLogitsLoss()
  size = args.image_size
  real = torch.rand(args.batch_size, 3, size, size) * 2 - 1
  ones, zeros = torch.ones(args.batch_size), torch.zeros(args.batch_size)

  def step():
    fake = generator(torch.randn(args.batch_size, LATENT_DIM))
    d_opt.zero_grad(set_to_none=True)
    d_loss = (criterion(discriminator(real).view(-1), ones)
              + criterion(discriminator(fake.detach()).view(-1), zeros))
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    criterion(discriminator(fake).view(-1), ones).backward()
    g_opt.step()

  for _ in range(args.warmup):
    step()
  start = time.perf_counter()
  for _ in range(args.steps):
    step()
  elapsed = time.perf_counter() - start
  print(json.dumps({
      "framework": f"torch {torch.__version__}", "threads":
      torch.get_num_threads(), "batch_size": args.batch_size,
      "images_per_sec": round(args.steps * args.batch_size / elapsed, 1)}))


if __name__ == "__main__":
  main()
