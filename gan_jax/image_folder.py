"""A folder of your own images as a Dataset (the ImageFolder convention).

    root/cat/0001.png, root/dog/a.jpg, ...   one sub-folder per class
    root/0001.png, ...                        or no classes (labels -1)
    root/train/..., root/test/...             optional splits, each as above

Classes are the sub-folder names in sorted order (label 0 is the first).
PNG, JPEG, BMP, GIF and WebP are read; other files (a README) are ignored.
A folder without train/ and test/ has one split, used for training and as
the FD reference alike (as StyleGAN2-ADA scores small sets).

Decoding runs once: the arrays go into a cache keyed by the sha256 of every
file's path and bytes plus the ImageOptions, so a restart, or a second run on
the same folder, reads one .npz; an edited, added or removed file decodes
afresh. The whole set is held in memory, as every Dataset here: a 64x64
colour image is 12 KiB, so a million fit in 12 GiB. Larger sets belong in a
streaming loader (grain), which gan_jax does not have yet.
"""

import hashlib
import json
import os
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from gan_jax import hashing
from gan_jax.errors import DataError
from gan_jax.image_preprocessing import ImageOptions, is_grey, to_array

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLIT_FOLDERS = ("train", "test")
# Bump when decoding changes, so caches written by older code are not read.
DECODER_VERSION = 1


def is_image_file(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _visible(names):
  return sorted(n for n in names if not n.startswith("."))


def has_images(folder: str) -> bool:
  """True if any image file lies in `folder` or below it."""
  for _, dirs, files in os.walk(folder):
    dirs[:] = _visible(dirs)
    if any(is_image_file(f) for f in files):
      return True
  return False


def split_folder(root: str, split: str) -> str:
  """root/<split> when the folder has train/ and test/, else root."""
  if all(os.path.isdir(os.path.join(root, s)) for s in SPLIT_FOLDERS):
    if split not in SPLIT_FOLDERS:
      raise DataError(f"--split={split!r}: {root} has the splits "
                      f"{', '.join(SPLIT_FOLDERS)}.")
    return os.path.join(root, split)
  return root


def list_images(folder: str) -> Tuple[List[str], np.ndarray, Tuple[str, ...]]:
  """(paths relative to `folder` in a fixed order, labels int32 [N],
  class names). Images directly in `folder` are unlabelled (-1)."""
  if not os.path.isdir(folder):
    raise DataError(f"--data_dir={folder} is not a folder.")
  entries = _visible(os.listdir(folder))
  loose = [e for e in entries if os.path.isfile(os.path.join(folder, e))
           and is_image_file(e)]
  classes = tuple(e for e in entries if os.path.isdir(os.path.join(folder, e))
                  and has_images(os.path.join(folder, e)))
  if loose and classes:
    raise DataError(
        f"{os.path.join(folder, loose[0])} lies beside the class folders "
        f"{', '.join(classes[:3])}{', ...' if len(classes) > 3 else ''}: move "
        "it into one of them, or every image out of them for an unlabelled "
        "set.")
  if loose:
    return loose, np.full(len(loose), -1, np.int32), ()
  paths, labels = [], []
  for label, name in enumerate(classes):
    for parent, dirs, files in os.walk(os.path.join(folder, name)):
      dirs[:] = _visible(dirs)
      for f in _visible(files):
        if is_image_file(f):
          paths.append(os.path.relpath(os.path.join(parent, f), folder))
          labels.append(label)
  if not paths:
    raise DataError(
        f"--data_dir={folder} holds no images ({', '.join(IMAGE_EXTENSIONS)} "
        "files, directly or in one sub-folder per class).")
  return paths, np.asarray(labels, np.int32), classes


def content_sha256(folder: str, paths: List[str]) -> str:
  """sha256 over each file's relative path and bytes, in `paths` order."""
  digest = hashlib.sha256()
  for path in paths:
    with open(os.path.join(folder, path), "rb") as f:
      data = f.read()
    digest.update(f"{path}|{len(data)}|".encode())
    digest.update(data)
  return digest.hexdigest()


def _read(path: str, pixels: bool) -> Image.Image:
  """The image at `path`: its header only (mode, size), or decoded too."""
  try:
    image = Image.open(path)
    if pixels:
      image.load()  # Truncated files fail here, not in Image.open.
    return image
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise DataError(f"Cannot read the image {path} ({type(e).__name__}: "
                    f"{e}); replace or remove the file.") from e


def decode(folder: str, paths: List[str], options: ImageOptions) -> np.ndarray:
  """uint8 [N, H, W, C]: colour (C=3) if any image has colour, else grey.

  Headers first (modes and sizes, no pixels), then one image decoded at a
  time into the output, so memory peaks at the output's size.
  """
  files = [os.path.join(folder, p) for p in paths]
  headers = []
  for file in files:
    with _read(file, pixels=False) as image:
      headers.append((is_grey(image), image.size))
  colour = not all(grey for grey, _ in headers)
  first = headers[0][1]
  for file, (_, size) in zip(files, headers):
    if options.size is None and size != first:
      raise DataError(
          f"{file} is {size[0]}x{size[1]} but {files[0]} is "
          f"{first[0]}x{first[1]}: pass --image_size=N to centre-crop and "
          "resize every image to NxN.")
  out = None
  for i, file in enumerate(files):
    with _read(file, pixels=True) as image:
      array = to_array(image, options, colour)
    if out is None:
      out = np.empty((len(files),) + array.shape, np.uint8)
    out[i] = array
  return out


def cache_path(key: str, cache_dir: Optional[str]) -> str:
  return os.path.join(cache_dir or hashing.cache_dir("image_folders"),
                      f"{key}.npz")


def load_image_folder(root: str, split: str = "train",
                      options: ImageOptions = ImageOptions(),
                      cache_dir: Optional[str] = None
                      ) -> Tuple[np.ndarray, np.ndarray, Tuple[str, ...]]:
  """(images uint8 [N, H, W, C], labels int32 [N], class names), decoded
  once, then read from the content-keyed cache."""
  options.validate()
  folder = split_folder(root, split)
  paths, labels, classes = list_images(folder)
  settings = json.dumps([DECODER_VERSION, options.size, options.background,
                         options.resize])
  key = hashlib.sha256(
      f"{content_sha256(folder, paths)}|{settings}".encode()).hexdigest()
  path = cache_path(key[:32], cache_dir)
  if os.path.exists(path):
    try:
      with np.load(path) as cached:
        return (cached["images"], cached["labels"],
                tuple(str(c) for c in cached["classes"]))
    except Exception:  # pylint: disable=broad-except
      pass  # A damaged cache: decode again and overwrite it.
  images = decode(folder, paths, options)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}.npz"
  np.savez(tmp, images=images, labels=labels, classes=np.asarray(classes))
  os.replace(tmp, path)  # Atomic: a reader sees no half-written cache.
  return images, labels, classes
