r"""The PyTorch eager DCGAN at 28x28 (not a dependency): a timer and a trainer.

The same network and update as gan_jax's `dcgan` at 28x28: one D step on a real
and a fake batch (BatchNorm never mixes them), then one non-saturating G step on
the same fakes, Adam(2e-4, 0.5, 0.999) for both, weights initialised as in the
DCGAN paper (N(0, 0.02); BatchNorm scales N(1, 0.02)), the idiomatic PyTorch
DCGAN example loop.

Timing (random data, one JSON line):

    pip install torch   # CPU build
    python benchmarks/torch_dcgan.py --batch_size=64 --steps=100

Training on real data, writing 10k eval-mode samples at each budget as
<out>/torch_step_<N>.npz (score them with `experiments.evaluate --samples`):

    python benchmarks/torch_dcgan.py --data_dir=/usr/share/datasets/fashion-mnist \
        --steps=10000 --sample_at=1000,3000,10000 --out=/tmp/torch_dcgan
"""

import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
from torch import nn

LATENT_DIM = 100


def make_models(latent_dim=LATENT_DIM):
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


def paper_init(module):
  """The DCGAN paper's initialisation, as in pytorch/examples dcgan."""
  if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
    nn.init.normal_(module.weight, 0.0, 0.02)
    if module.bias is not None:
      nn.init.zeros_(module.bias)
  elif isinstance(module, nn.BatchNorm2d):
    nn.init.normal_(module.weight, 1.0, 0.02)
    nn.init.zeros_(module.bias)


def read_idx_images(data_dir, split="train"):
  """uint8 [N, 28, 28] from an MNIST-format folder."""
  prefix = "train" if split == "train" else "t10k"
  for name in (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"):
    path = os.path.join(data_dir, name)
    if os.path.exists(path):
      opener = gzip.open if name.endswith(".gz") else open
      with opener(path, "rb") as f:
        raw = f.read()
      count, rows, cols = np.frombuffer(raw[4:16], ">u4")
      return np.frombuffer(raw[16:], np.uint8).reshape(count, rows, cols)
  raise SystemExit(f"error: no {prefix}-images-idx3-ubyte[.gz] in {data_dir}")


class Trainer:
  """Both players and their optimizers; `step(real)` is one D and one G
  update, as in the PyTorch DCGAN example."""

  def __init__(self, init="paper"):
    self.generator, self.discriminator = make_models()
    if init == "paper":
      self.generator.apply(paper_init)
      self.discriminator.apply(paper_init)
    self.g_opt = torch.optim.Adam(self.generator.parameters(), 2e-4,
                                  betas=(0.5, 0.999))
    self.d_opt = torch.optim.Adam(self.discriminator.parameters(), 2e-4,
                                  betas=(0.5, 0.999))
    self.criterion = nn.BCEWithLogitsLoss()

  def step(self, real):
    ones = torch.ones(real.shape[0])
    zeros = torch.zeros(real.shape[0])
    z = torch.randn(real.shape[0], LATENT_DIM)
    fake = self.generator(z)
    self.d_opt.zero_grad(set_to_none=True)
    d_loss = (self.criterion(self.discriminator(real).view(-1), ones)
              + self.criterion(self.discriminator(fake.detach()).view(-1),
                               zeros))
    d_loss.backward()
    self.d_opt.step()
    self.g_opt.zero_grad(set_to_none=True)
    g_loss = self.criterion(self.discriminator(fake).view(-1), ones)
    g_loss.backward()
    self.g_opt.step()
    return d_loss.item(), g_loss.item()

  @torch.no_grad()
  def samples(self, num, batch_size=500):
    """uint8 [num, 28, 28, 1] from the eval-mode generator (running
    BatchNorm statistics, as gan_jax samples)."""
    self.generator.eval()
    chunks = [self.generator(torch.randn(batch_size, LATENT_DIM))
              for _ in range(-(-num // batch_size))]
    self.generator.train()
    images = torch.cat(chunks)[:num].permute(0, 2, 3, 1).numpy()
    return np.clip(np.round((images + 1) * 127.5), 0, 255).astype(np.uint8)


def train(args):
  """Trains on real data; writes samples at each --sample_at step."""
  images = read_idx_images(args.data_dir)
  data = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)[:, None]
  trainer = Trainer(args.init)
  sample_at = sorted(int(s) for s in args.sample_at.split(",") if s)
  os.makedirs(args.out, exist_ok=True)
  rng = np.random.default_rng(args.seed)
  order, position, start = rng.permutation(len(data)), 0, time.perf_counter()
  for step in range(1, args.steps + 1):
    if position + args.batch_size > len(order):  # Epoch ends: drop the rest.
      order, position = rng.permutation(len(data)), 0
    index = torch.from_numpy(order[position:position + args.batch_size])
    position += args.batch_size
    d_loss, g_loss = trainer.step(data[index])
    if step % 1000 == 0:
      print(f"step {step}  d_loss {d_loss:.3f}  g_loss {g_loss:.3f}  "
            f"{time.perf_counter() - start:.0f} s", flush=True)
    if step in sample_at:
      path = os.path.join(args.out, f"torch_step_{step}.npz")
      np.savez(path, images=trainer.samples(args.num_samples))
      print(json.dumps({"step": step, "samples": path, "train_seconds": round(
          time.perf_counter() - start, 1)}), flush=True)


def time_steps(args):
  trainer = Trainer(args.init)
  real = torch.rand(args.batch_size, 1, 28, 28) * 2 - 1
  for _ in range(args.warmup):
    trainer.step(real)
  start = time.perf_counter()
  for _ in range(args.steps):
    trainer.step(real)
  elapsed = time.perf_counter() - start
  print(json.dumps({
      "framework": f"torch {torch.__version__}", "threads":
      torch.get_num_threads(), "batch_size": args.batch_size,
      "images_per_sec": round(args.steps * args.batch_size / elapsed, 1)}))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--warmup", type=int, default=10)
  parser.add_argument("--init", choices=("paper", "torch"), default="paper",
                      help="paper: N(0, 0.02); torch: PyTorch's defaults.")
  parser.add_argument("--data_dir", help="Train on this IDX folder.")
  parser.add_argument("--sample_at", default="1000,3000,10000")
  parser.add_argument("--num_samples", type=int, default=10_000)
  parser.add_argument("--out", default="/tmp/torch_dcgan")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  torch.manual_seed(args.seed)
  if args.data_dir:
    train(args)
  else:
    time_steps(args)


if __name__ == "__main__":
  main()
