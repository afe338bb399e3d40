r"""The PyTorch eager DCGAN (not a dependency): a timer and a trainer.

The same network and update as gan_jax's `dcgan` (28x28x1, or 64x64x3 with
--image_size=64; --compile puts both networks under torch.compile): one D
step on a real and a fake batch (BatchNorm never mixes them), then one
non-saturating G step on the same fakes, Adam(2e-4, 0.5, 0.999) for both,
weights initialised as in the DCGAN paper (N(0, 0.02); BatchNorm scales
N(1, 0.02)), the idiomatic PyTorch DCGAN example loop.

Timing (random data, one JSON line; the best of --repeats windows of
--steps, as train_speed.py times gan_jax):

    pip install torch   # CPU build
    python benchmarks/torch_dcgan.py --batch_size=64 --steps=100
    python benchmarks/torch_dcgan.py --image_size=64 --steps=10 --compile
    python benchmarks/torch_dcgan.py --diffaugment   # the twin of gan_jax's
                                                     # --diffaugment=color,translation,cutout
    python benchmarks/torch_dcgan.py --conditional=projection   # or acgan: 10
                                                     # classes, as --conditional [--class_head=acgan]
    python benchmarks/torch_dcgan.py --penalty=r1    # or wgan_gp: the critic without
                                                     # BatchNorm, as --arch=dcgan_critic --penalty=r1

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


def image_channels(image_size):
  """28x28 images are grey (MNIST's), others colour, as in the timings."""
  return 1 if image_size == 28 else 3


def num_upsamplings(image_size):
  """Halvings down to the base map: 28 -> 2, 64 -> 4. A copy of gan_jax's
  (`models.dcgan.num_upsamplings`): this script runs where torch is, and
  gan_jax need not be."""
  n = 0
  while image_size % 2 == 0 and image_size > 4:
    image_size //= 2
    n += 1
  return n


def make_models(latent_dim=LATENT_DIM, critic=False, image_size=28,
                channels=1, features=64):
  """The DCGAN pair of gan_jax's `dcgan` at `image_size` (28: 7x7x128 ->
  28x28x1; 64: 4x4x512 -> 64x64x3); `critic`: D without BatchNorm
  (WGAN-GP's critic)."""
  n_up = num_upsamplings(image_size)
  base = image_size >> n_up
  width = features * 2 ** (n_up - 1)
  g_layers = [nn.Linear(latent_dim, base * base * width, bias=False),
              nn.Unflatten(1, (width, base, base)), nn.BatchNorm2d(width),
              nn.ReLU(True)]
  for i in range(n_up - 1):
    g_layers += [nn.ConvTranspose2d(width >> i, width >> (i + 1), 4, 2, 1,
                                    bias=False),
                 nn.BatchNorm2d(width >> (i + 1)), nn.ReLU(True)]
  g_layers += [nn.ConvTranspose2d(features, channels, 4, 2, 1), nn.Tanh()]
  d_layers = [nn.Conv2d(channels, features, 4, 2, 1), nn.LeakyReLU(0.2, True)]
  for i in range(1, n_up):
    c_in, c_out = features << (i - 1), features << i
    d_layers += ([nn.Conv2d(c_in, c_out, 4, 2, 1)] if critic else
                 [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
                  nn.BatchNorm2d(c_out)])
    d_layers.append(nn.LeakyReLU(0.2, True))
  d_layers += [nn.Flatten(), nn.Linear(base * base * width, 1)]
  return nn.Sequential(*g_layers), nn.Sequential(*d_layers)


class ConditionalGenerator(nn.Module):
  """G(z, y): a learned 50-d class embedding beside z, as gan_jax's DCGAN."""

  def __init__(self, generator, num_classes, features=50):
    super().__init__()
    self.embed = nn.Embedding(num_classes, features)
    self.generator = generator
    # The first layer takes z and the embedding.
    first = generator[0]
    generator[0] = nn.Linear(first.in_features + features, first.out_features,
                             bias=False)

  def forward(self, z, labels):
    return self.generator(torch.cat([z, self.embed(labels)], 1))


class ConditionalDiscriminator(nn.Module):
  """D(x, y) from the DCGAN D's features h: the projection head (logit plus
  <embed(y), h>, Miyato & Koyama 2018), or ACGAN's unconditional logit and
  an auxiliary classifier (Odena et al. 2017)."""

  def __init__(self, discriminator, num_classes, head):
    super().__init__()
    self.features = discriminator[:-1]
    self.logit = discriminator[-1]
    self.head = head
    width = self.logit.in_features
    self.classes = (nn.Embedding(num_classes, width) if head == "projection"
                    else nn.Linear(width, num_classes))

  def forward(self, x, labels):
    h = self.features(x)
    logit = self.logit(h).view(-1)
    if self.head == "projection":
      return logit + (self.classes(labels) * h).sum(1), None
    return logit, self.classes(h)


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


def diff_augment(x):
  """DiffAugment's color, translation and cutout (Zhao et al. 2020), NCHW,
  the semantics of the authors' DiffAugment_pytorch.py: brightness
  +U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5), a shift of up
  to 1/8 with zero fill, and a zeroed square of half the side."""
  b, _, h, w = x.shape
  rand = lambda: torch.rand(b, 1, 1, 1)
  x = x + (rand() - 0.5)
  x = (x - x.mean(1, keepdim=True)) * (rand() * 2) + x.mean(1, keepdim=True)
  mean = x.mean((1, 2, 3), keepdim=True)
  x = (x - mean) * (rand() + 0.5) + mean
  shift_h, shift_w = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
  rows = (torch.arange(h)[None] + torch.randint(-shift_h, shift_h + 1, (b, 1)))
  cols = (torch.arange(w)[None] + torch.randint(-shift_w, shift_w + 1, (b, 1)))
  padded = nn.functional.pad(x, (1, 1, 1, 1))
  rows = rows.clamp(-1, h).add(1)[:, None, :, None].expand(-1, x.shape[1], -1,
                                                            w + 2)
  x = padded.gather(2, rows)
  cols = cols.clamp(-1, w).add(1)[:, None, None, :].expand(-1, x.shape[1], h,
                                                            -1)
  x = x.gather(3, cols)
  size_h, size_w = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
  top = torch.randint(0, h + (1 - size_h % 2), (b, 1)) - size_h // 2
  left = torch.randint(0, w + (1 - size_w % 2), (b, 1)) - size_w // 2
  ys, xs = torch.arange(h)[None], torch.arange(w)[None]
  inside = (((ys >= top) & (ys < top + size_h))[:, :, None]
            & ((xs >= left) & (xs < left + size_w))[:, None, :])
  return x * (~inside)[:, None].to(x.dtype)


class Trainer:
  """Both players and their optimizers; `step(real)` is one D and one G
  update, as in the PyTorch DCGAN example (D sees `augment` of every
  image)."""

  def __init__(self, init="paper", augment=lambda x: x, conditional=None,
               num_classes=10, penalty=None, image_size=28, compile=False):
    self.augment = augment
    self.conditional = conditional
    self.penalty = penalty
    self.generator, self.discriminator = make_models(
        critic=bool(penalty), image_size=image_size,
        channels=image_channels(image_size))
    if conditional:
      self.generator = ConditionalGenerator(self.generator, num_classes)
      self.discriminator = ConditionalDiscriminator(self.discriminator,
                                                    num_classes, conditional)
    if init == "paper":
      self.generator.apply(paper_init)
      self.discriminator.apply(paper_init)
    self.g_opt = torch.optim.Adam(self.generator.parameters(), 2e-4,
                                  betas=(0.5, 0.999))
    self.d_opt = torch.optim.Adam(self.discriminator.parameters(), 2e-4,
                                  betas=(0.5, 0.999))
    self.criterion = nn.BCEWithLogitsLoss()
    if compile:  # The networks compiled (inductor); the loop stays eager.
      self.generator = torch.compile(self.generator)
      self.discriminator = torch.compile(self.discriminator)

  def step(self, real, labels=None):
    ones = torch.ones(real.shape[0])
    zeros = torch.zeros(real.shape[0])
    z = torch.randn(real.shape[0], LATENT_DIM)
    if self.conditional:  # Fakes of the real batch's classes.
      fake = self.generator(z, labels)

      def d(images):  # Adversarial loss term, and ACGAN's class term.
        logit, classes = self.discriminator(self.augment(images), labels)
        extra = (0.0 if classes is None
                 else nn.functional.cross_entropy(classes, labels))
        return logit, extra
    else:
      fake = self.generator(z)
      d = lambda images: (self.discriminator(self.augment(images)).view(-1),
                          0.0)
    self.d_opt.zero_grad(set_to_none=True)
    (real_logit, real_class), (fake_logit, fake_class) = d(real), d(
        fake.detach())
    d_loss = (self.criterion(real_logit, ones)
              + self.criterion(fake_logit, zeros) + real_class + fake_class)
    if self.penalty:
      d_loss = d_loss + self.gradient_penalty(real, fake.detach())
    d_loss.backward()
    self.d_opt.step()
    self.g_opt.zero_grad(set_to_none=True)
    fake_logit, fake_class = d(fake)
    g_loss = self.criterion(fake_logit, ones) + fake_class
    g_loss.backward()
    self.g_opt.step()
    return d_loss.item(), g_loss.item()

  def gradient_penalty(self, real, fake, gamma=10.0):
    """R1 (gamma/2 E||grad D(real)||^2) or WGAN-GP (gamma E(||grad
    D(x_hat)|| - 1)^2), with the double backward of `create_graph=True`,
    as gan_jax's --penalty (a separate pass of D, as there)."""
    if self.penalty == "r1":
      x = real.detach().requires_grad_(True)
    else:
      eps = torch.rand(real.shape[0], 1, 1, 1)
      x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(self.discriminator(x).sum(), x,
                                create_graph=True)
    norms = grad.flatten(1).pow(2).sum(1)
    if self.penalty == "r1":
      return gamma / 2 * norms.mean()
    return gamma * (norms.clamp_min(1e-12).sqrt() - 1).pow(2).mean()

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
  trainer = Trainer(args.init,
                    diff_augment if args.diffaugment else (lambda x: x),
                    args.conditional, penalty=args.penalty,
                    image_size=args.image_size, compile=args.compile)
  real = torch.rand(args.batch_size, image_channels(args.image_size),
                    args.image_size, args.image_size) * 2 - 1
  labels = torch.arange(args.batch_size) % 10
  for _ in range(args.warmup):
    trainer.step(real, labels)
  elapsed = float("inf")  # The best of --repeats windows, as train_speed.py.
  for _ in range(args.repeats):
    start = time.perf_counter()
    for _ in range(args.steps):
      trainer.step(real, labels)
    elapsed = min(elapsed, time.perf_counter() - start)
  print(json.dumps({
      "framework": f"torch {torch.__version__}", "threads":
      torch.get_num_threads(), "batch_size": args.batch_size,
      "diffaugment": args.diffaugment, "conditional": args.conditional,
      "penalty": args.penalty, "image_size": args.image_size,
      "compile": args.compile,
      "images_per_sec": round(args.steps * args.batch_size / elapsed, 1)}))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--warmup", type=int, default=10)
  parser.add_argument("--repeats", type=int, default=3,
                      help="Timed windows of --steps; the best counts.")
  parser.add_argument("--init", choices=("paper", "torch"), default="paper",
                      help="paper: N(0, 0.02); torch: PyTorch's defaults.")
  parser.add_argument("--data_dir", help="Train on this IDX folder.")
  parser.add_argument("--sample_at", default="1000,3000,10000")
  parser.add_argument("--num_samples", type=int, default=10_000)
  parser.add_argument("--out", default="/tmp/torch_dcgan")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--diffaugment", action="store_true",
                      help="Time D on DiffAugment's color,translation,cutout.")
  parser.add_argument("--conditional", choices=("projection", "acgan"),
                      help="Time the 10-class conditional step.")
  parser.add_argument("--penalty", choices=("r1", "wgan_gp"),
                      help="Time the step with this gradient penalty.")
  parser.add_argument("--image_size", type=int, default=28,
                      help="Time at this size: 28 (1 channel) or e.g. 64 (3).")
  parser.add_argument("--compile", action="store_true",
                      help="Time with both networks under torch.compile.")
  args = parser.parse_args()
  torch.manual_seed(args.seed)
  if args.data_dir:
    train(args)
  else:
    time_steps(args)


if __name__ == "__main__":
  main()
