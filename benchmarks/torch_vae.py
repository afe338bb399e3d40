"""The PyTorch eager twin of the VAE train step (not a dependency of gan_jax).

The same networks as gan_jax's `mlp` (the flax example's: 784-500-(20+20),
20-500-784, ReLU) and `conv` (4x4/2 convs 32, 64, dense 256, ELU; and back
with transposed convs) VAE pairs at 28x28, the same step: dynamic
binarisation, one reparameterised sample, Bernoulli log-likelihood, closed-
form KL, Adam(1e-3). The idiomatic PyTorch VAE example loop. Prints one JSON
line.

    pip install torch --index-url https://download.pytorch.org/whl/cpu
    python benchmarks/torch_vae.py --arch=mlp --batch_size=128 --steps=200
"""

import argparse
import json
import time

import torch
from torch import nn
from torch.nn import functional as F


class MLPVAE(nn.Module):

  def __init__(self, latent_dim=20, hidden=500):
    super().__init__()
    self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))
    self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 784),
                                 nn.Unflatten(1, (1, 28, 28)))


class ConvVAE(nn.Module):

  def __init__(self, latent_dim=20, features=32, hidden=256):
    super().__init__()
    self.encoder = nn.Sequential(
        nn.Conv2d(1, features, 4, 2, 1), nn.ELU(),
        nn.Conv2d(features, 2 * features, 4, 2, 1), nn.ELU(), nn.Flatten(),
        nn.Linear(7 * 7 * 2 * features, hidden), nn.ELU(),
        nn.Linear(hidden, 2 * latent_dim))
    self.decoder = nn.Sequential(
        nn.Linear(latent_dim, hidden), nn.ELU(),
        nn.Linear(hidden, 7 * 7 * 2 * features), nn.ELU(),
        nn.Unflatten(1, (2 * features, 7, 7)),
        nn.ConvTranspose2d(2 * features, features, 4, 2, 1), nn.ELU(),
        nn.ConvTranspose2d(features, 1, 4, 2, 1))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--warmup", type=int, default=10)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()

  torch.manual_seed(0)
  model = {"mlp": MLPVAE, "conv": ConvVAE}[args.arch]()
  optimizer = torch.optim.Adam(model.parameters(), 1e-3)
  images = torch.rand(args.batch_size, 1, 28, 28)  # Intensities in [0, 1].

  def step():
    x = torch.bernoulli(images)  # Dynamic binarisation.
    mean, log_var = model.encoder(x).chunk(2, dim=1)
    z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
    logits = model.decoder(z)
    recon = F.binary_cross_entropy_with_logits(
        logits, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mean ** 2 + log_var.exp() - 1 - log_var).sum(1)
    loss = (recon + kl).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()

  for _ in range(args.warmup):
    step()
  best = 0.0
  for _ in range(args.repeats):
    start = time.perf_counter()
    for _ in range(args.steps):
      step()
    best = max(best, args.steps * args.batch_size
               / (time.perf_counter() - start))
  print(json.dumps({
      "framework": f"torch {torch.__version__}", "threads":
      torch.get_num_threads(), "arch": args.arch,
      "batch_size": args.batch_size, "images_per_sec": round(best, 1)}))


if __name__ == "__main__":
  main()
