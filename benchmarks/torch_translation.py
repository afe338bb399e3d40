r"""The PyTorch eager twins of gan_jax's pix2pix and CycleGAN steps (not a
dependency), with the networks of gan_jax/models/translation.py.

    python benchmarks/torch_translation.py --family=pix2pix --batch_size=64
    python benchmarks/torch_translation.py --family=cyclegan --batch_size=16

U-Net: zero-padded to a power of two, 4x4/2 convolutions (64-128-256-512-
512...) down to 1x1, BatchNorm except on the first and the bottleneck,
LeakyReLU 0.2; 4x4/2 transposed convolutions back up with skips, BatchNorm,
ReLU, dropout 0.5 on the three innermost (pix2pix; none in CycleGAN); tanh.
PatchGAN: n_layers 4x4/2 convolutions, one 4x4/1, a 4x4/1 to one channel
('same' padding, as flax's); n_layers is gan_jax's patch_layers (1 at 28
and 64). Weights N(0, 0.02), BatchNorm scales N(1, 0.02).

pix2pix's step (pytorch-CycleGAN-and-pix2pix's pix2pix_model.py): the
denoise corruption, G once, D's Adam step on the halved BCE of (source,
target) and (source, G(source).detach()), G's on BCE + 100 L1 through the
updated D. CycleGAN's (cycle_gan_model.py): both generators on LSGAN + 10
cycle + 5 identity, one Adam; then both discriminators on fakes from the
authors' ImagePool (50 images, queried image by image). Adam(2e-4, 0.5,
0.999). Random data; prints one JSON line of images/sec (for CycleGAN, the
images of one domain's batch, as gan_jax's train_speed counts them).
"""

import argparse
import json
import random
import time

import torch
from torch import nn
import torch.nn.functional as F

FIELD_FRACTION = 70 / 256


def patch_layers(image_size: int) -> int:
  def field(n):
    f = 7
    for _ in range(n):
      f = 2 * f + 2
    return f
  n = 1
  while field(n + 1) <= FIELD_FRACTION * image_size:
    n += 1
  return n


def init_weights(module):
  if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
    nn.init.normal_(module.weight, 0.0, 0.02)
    if module.bias is not None:
      nn.init.zeros_(module.bias)
  elif isinstance(module, nn.BatchNorm2d):
    nn.init.normal_(module.weight, 1.0, 0.02)
    nn.init.zeros_(module.bias)


class UNet(nn.Module):

  def __init__(self, in_channels, out_channels, image_size, features=64,
               dropout_layers=3):
    super().__init__()
    self.side = 1 << max(image_size - 1, 1).bit_length()
    depth = self.side.bit_length() - 1
    widths = [min(features << i, 512) for i in range(depth)]
    self.down = nn.ModuleList()
    for i, width in enumerate(widths):
      layers = [nn.LeakyReLU(0.2)] if i else []
      layers.append(nn.Conv2d(in_channels if i == 0 else widths[i - 1], width,
                              4, 2, 1, bias=i in (0, depth - 1)))
      if 0 < i < depth - 1:
        layers.append(nn.BatchNorm2d(width))
      self.down.append(nn.Sequential(*layers))
    self.up = nn.ModuleList()
    c_in = widths[-1]
    for i, width in enumerate(reversed(widths[:-1])):
      layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, width, 4, 2, 1,
                                              bias=False),
                nn.BatchNorm2d(width)]
      if i < dropout_layers:
        layers.append(nn.Dropout(0.5))
      self.up.append(nn.Sequential(*layers))
      c_in = 2 * width
    self.out = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, out_channels,
                                                           4, 2, 1), nn.Tanh())

  def forward(self, x):
    height, width = x.shape[-2:]
    x = F.pad(x, (0, self.side - width, 0, self.side - height))
    skips = []
    for layer in self.down:
      x = layer(x)
      skips.append(x)
    skips.pop()
    for layer in self.up:
      x = torch.cat([layer(x), skips.pop()], dim=1)
    return self.out(x)[..., :height, :width]


class PatchGAN(nn.Module):

  def __init__(self, in_channels, image_size, features=64):
    super().__init__()
    n_layers = patch_layers(image_size)
    layers, c_in = [], in_channels
    for i in range(n_layers + 1):
      width = min(features << i, 512)
      if i < n_layers:
        layers.append(nn.Conv2d(c_in, width, 4, 2, 1, bias=i == 0))
      else:
        layers.append(nn.Conv2d(c_in, width, 4, 1, "same", bias=False))
      if i:
        layers.append(nn.BatchNorm2d(width))
      layers.append(nn.LeakyReLU(0.2))
      c_in = width
    layers.append(nn.Conv2d(c_in, 1, 4, 1, "same"))
    self.net = nn.Sequential(*layers)

  def forward(self, x):
    return self.net(x)


def denoise(images):
  noisy = images + 0.5 * torch.randn_like(images)
  hit = torch.rand(images.shape[0], 1, *images.shape[2:]) < 0.1
  salt = torch.where(torch.rand(hit.shape) < 0.5, 1.0, -1.0)
  return torch.where(hit, salt, noisy).clamp(-1, 1)


class Pix2Pix:

  def __init__(self, channels, image_size):
    self.g = UNet(channels, channels, image_size)
    self.d = PatchGAN(2 * channels, image_size)
    for net in (self.g, self.d):
      net.apply(init_weights)
    adam = lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.5, 0.999))
    self.opt_g, self.opt_d = adam(self.g.parameters()), adam(self.d.parameters())
    self.bce = nn.BCEWithLogitsLoss()

  def step(self, real_a, real_b):
    del real_b
    target = real_a
    source = denoise(target)
    fake = self.g(source)
    self.opt_d.zero_grad(set_to_none=True)
    real_logits = self.d(torch.cat([source, target], 1))
    fake_logits = self.d(torch.cat([source, fake.detach()], 1))
    d_loss = 0.5 * (self.bce(real_logits, torch.ones_like(real_logits))
                    + self.bce(fake_logits, torch.zeros_like(fake_logits)))
    d_loss.backward()
    self.opt_d.step()
    self.opt_g.zero_grad(set_to_none=True)
    for p in self.d.parameters():
      p.requires_grad_(False)
    logits = self.d(torch.cat([source, fake], 1))
    g_loss = (self.bce(logits, torch.ones_like(logits))
              + 100.0 * F.l1_loss(fake, target))
    g_loss.backward()
    for p in self.d.parameters():
      p.requires_grad_(True)
    self.opt_g.step()


class ImagePool:
  """The authors' util/image_pool.py."""

  def __init__(self, size):
    self.size, self.images = size, []

  def query(self, images):
    out = []
    for image in images.detach():
      image = image[None]
      if len(self.images) < self.size:
        self.images.append(image)
        out.append(image)
      elif random.uniform(0, 1) > 0.5:
        index = random.randint(0, self.size - 1)
        out.append(self.images[index].clone())
        self.images[index] = image
      else:
        out.append(image)
    return torch.cat(out)


class CycleGAN:

  def __init__(self, channels, image_size):
    self.g_ab = UNet(channels, channels, image_size, dropout_layers=0)
    self.g_ba = UNet(channels, channels, image_size, dropout_layers=0)
    self.d_a = PatchGAN(channels, image_size)
    self.d_b = PatchGAN(channels, image_size)
    for net in (self.g_ab, self.g_ba, self.d_a, self.d_b):
      net.apply(init_weights)
    adam = lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.5, 0.999))
    self.opt_g = adam([*self.g_ab.parameters(), *self.g_ba.parameters()])
    self.opt_d = adam([*self.d_a.parameters(), *self.d_b.parameters()])
    self.pool_a, self.pool_b = ImagePool(50), ImagePool(50)

  @staticmethod
  def _ls(outputs, target):
    return F.mse_loss(outputs, torch.full_like(outputs, target))

  def step(self, real_a, real_b):
    fake_b = self.g_ab(real_a)
    rec_a = self.g_ba(fake_b)
    fake_a = self.g_ba(real_b)
    rec_b = self.g_ab(fake_a)
    discriminators = [*self.d_a.parameters(), *self.d_b.parameters()]
    for p in discriminators:
      p.requires_grad_(False)
    self.opt_g.zero_grad(set_to_none=True)
    identity = (F.l1_loss(self.g_ab(real_b), real_b)
                + F.l1_loss(self.g_ba(real_a), real_a))
    g_loss = (self._ls(self.d_b(fake_b), 1.0) + self._ls(self.d_a(fake_a), 1.0)
              + 10.0 * (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b))
              + 5.0 * identity)
    g_loss.backward()
    self.opt_g.step()
    for p in discriminators:
      p.requires_grad_(True)
    self.opt_d.zero_grad(set_to_none=True)
    d_loss = 0.0
    for d, real, fake in ((self.d_a, real_a, self.pool_a.query(fake_a)),
                          (self.d_b, real_b, self.pool_b.query(fake_b))):
      d_loss = d_loss + 0.5 * (self._ls(d(real), 1.0) + self._ls(d(fake), 0.0))
    d_loss.backward()
    self.opt_d.step()


MODELS = {"pix2pix": Pix2Pix, "cyclegan": CycleGAN}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--family", choices=sorted(MODELS), default="pix2pix")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--image_size", type=int, default=28)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  args = parser.parse_args()
  torch.manual_seed(0)
  random.seed(0)
  channels = 1 if args.image_size == 28 else 3
  model = MODELS[args.family](channels, args.image_size)
  shape = (args.batch_size, channels, args.image_size, args.image_size)
  real_a, real_b = torch.rand(shape) * 2 - 1, torch.rand(shape) * 2 - 1
  for _ in range(args.warmup):
    model.step(real_a, real_b)
  start = time.perf_counter()
  for _ in range(args.steps):
    model.step(real_a, real_b)
  elapsed = time.perf_counter() - start
  print(json.dumps({
      "framework": f"torch {torch.__version__}",
      "threads": torch.get_num_threads(), "family": args.family,
      "batch_size": args.batch_size, "image_size": args.image_size,
      "images_per_sec": round(args.steps * args.batch_size / elapsed, 1)}))


if __name__ == "__main__":
  main()
