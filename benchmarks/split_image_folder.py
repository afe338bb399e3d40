r"""Splits a class-folder image set into train/ and test/, reproducibly.

    python benchmarks/split_image_folder.py --source=../shared/data/emoji \
        --output=/tmp/emoji_split --test_every=10

Per class folder, the images in name order; every --test_every-th one,
starting with the first, goes to test/<class>/, the rest to train/<class>/
(so a class of 5 images still gives one test image). Files are copied, not
moved: the source is left as it was. The result is the train/ and test/
layout gan_jax's folder loader reads as splits (`--split=train|test`), e.g.
for pix2pix's held-out pairs or the probe.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import image_folder


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--source", required=True)
  parser.add_argument("--output", required=True)
  parser.add_argument("--test_every", type=int, default=10)
  args = parser.parse_args()
  if os.path.exists(args.output):
    sys.exit(f"error: --output={args.output} exists; give a new folder.")
  paths, labels, classes = image_folder.list_images(args.source)
  counts = {"train": 0, "test": 0}
  seen = {}
  for path, label in zip(paths, labels):
    index = seen.get(label, 0)
    seen[label] = index + 1
    split = "test" if index % args.test_every == 0 else "train"
    target = os.path.join(args.output, split, path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(os.path.join(args.source, path), target)
    counts[split] += 1
  print(f"{args.output}: {counts['train']} train, {counts['test']} test, "
        f"{len(classes)} classes")


if __name__ == "__main__":
  main()
