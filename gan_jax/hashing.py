"""Content hashes of pytrees of arrays (to detect corrupted weights on disk
and to key caches), and where those caches live."""

import hashlib
import os
from typing import Any

import jax
import numpy as np


def _local_value(leaf: Any) -> Any:
  """A leaf this process can read: a replicated global array's local copy."""
  if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
    if not leaf.is_fully_replicated:
      raise ValueError("tree_sha256 needs replicated or process-local arrays, "
                       f"got sharding {leaf.sharding}.")
    return leaf.addressable_data(0)
  return leaf


def tree_sha256(tree: Any) -> str:
  """sha256 over every leaf's path, dtype, shape and bytes, in path order."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  paths = [jax.tree_util.keystr(path) for path, _ in leaves]
  # One batched device-to-host transfer rather than one per leaf.
  values = jax.device_get([_local_value(leaf) for _, leaf in leaves])
  digest = hashlib.sha256()
  for path, value in sorted(zip(paths, values), key=lambda kv: kv[0]):
    value = np.asarray(value)
    digest.update(f"{path}|{value.dtype.str}|{value.shape}|".encode())
    # A uint8 view hashes the bytes without the copy `tobytes` makes.
    digest.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
  return digest.hexdigest()


def cache_dir(name: str) -> str:
  """<root>/<name>: root is $GAN_JAX_CACHE, else ~/.cache/gan_jax."""
  root = os.environ.get("GAN_JAX_CACHE") or os.path.join(
      os.path.expanduser("~"), ".cache", "gan_jax")
  return os.path.join(root, name)


def dataset_sha256(images: np.ndarray, labels: np.ndarray) -> str:
  """sha256 of a labelled image set's content, whatever its order.

  Each example is hashed with its label, and the sorted example hashes are
  hashed together with the shape and dtype, so the same images from TFDS and
  from IDX files (stored in other orders) give the same hash.
  """
  images = np.ascontiguousarray(images)
  labels = np.asarray(labels, np.int64)
  rows = images.reshape(len(images), -1).view(np.uint8)
  digests = sorted(hashlib.sha256(row.tobytes() + int(label).to_bytes(
      8, "little", signed=True)).digest() for row, label in zip(rows, labels))
  digest = hashlib.sha256(
      f"{images.dtype.str}|{images.shape[1:]}|{len(images)}|".encode())
  for row_digest in digests:
    digest.update(row_digest)
  return digest.hexdigest()
