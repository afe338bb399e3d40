"""The PyTorch eager baseline for the 28x28 DCGAN train step (not a dependency).

The same network and update as gan_jax's `dcgan` at 28x28: one D step on a real
and a fake batch (BatchNorm never mixes them), then one non-saturating G step on
the same fakes, Adam(2e-4, 0.5, 0.999) for both, the idiomatic PyTorch DCGAN
example loop. Prints one JSON line.

    pip install torch   # CPU build
    python benchmarks/torch_dcgan.py --batch_size=64 --steps=100
"""

import argparse
import json
import time

import torch
from torch import nn


def make_models(latent_dim=100):
  generator = nn.Sequential(
      nn.Linear(latent_dim, 7 * 7 * 128, bias=False),
      nn.Unflatten(1, (128, 7, 7)), nn.BatchNorm2d(128), nn.ReLU(True),
      nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64),
      nn.ReLU(True),
      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
  discriminator = nn.Sequential(
      nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2, True),
      nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128),
      nn.LeakyReLU(0.2, True), nn.Flatten(), nn.Linear(7 * 7 * 128, 1))
  return generator, discriminator


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--warmup", type=int, default=10)
  args = parser.parse_args()

  torch.manual_seed(0)
  generator, discriminator = make_models()
  g_opt = torch.optim.Adam(generator.parameters(), 2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(discriminator.parameters(), 2e-4,
                           betas=(0.5, 0.999))
  criterion = nn.BCEWithLogitsLoss()
  real = torch.rand(args.batch_size, 1, 28, 28) * 2 - 1
  ones = torch.ones(args.batch_size)
  zeros = torch.zeros(args.batch_size)

  def step():
    z = torch.randn(args.batch_size, 100)
    fake = generator(z)
    d_opt.zero_grad(set_to_none=True)
    d_loss = (criterion(discriminator(real).view(-1), ones)
              + criterion(discriminator(fake.detach()).view(-1), zeros))
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    g_loss = criterion(discriminator(fake).view(-1), ones)
    g_loss.backward()
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
