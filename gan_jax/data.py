"""Datasets and the input pipeline.

Three sources, one output: `Dataset(images uint8 [N, H, W, C], labels int32
[N])` held in host memory.

* `load_tfds("mnist", "train")`: any TFDS image dataset with an `image`
  feature and, if labelled, a `label` (mnist, fashion_mnist, cifar10, celeb_a,
  lsun/bedroom, ...).
* `load_idx_dir("/usr/share/datasets/fashion-mnist", "train")`: a folder of
  MNIST-format IDX files (train-images-idx3-ubyte[.gz], t10k-... for "test"),
  which needs no network.
* `image_folder.load_image_folder(root)`: your own PNG/JPEG files, one
  sub-folder per class.

`load(...)` picks the source, and `ImageOptions` (--image_size, --background,
--resize) shapes every image the same way whatever its source: TFDS images
that are not all square and of one size (faces, bedrooms) are centre-cropped
and resized to DCGAN's 64 unless --image_size says otherwise.

`batches(...)` turns a Dataset into an endless, deterministic stream of
fixed-size batches of float32 images in [-1, 1], and `prefetch(...)` moves them
to the devices on a background thread so the step never waits for the host.
"""

import dataclasses
import difflib
import functools
import gzip
import os
import queue
import socket
import textwrap
import threading
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from gan_jax import data_identity, hashing, image_folder
from gan_jax.errors import DataError
from gan_jax.image_preprocessing import (DCGAN_IMAGE_SIZE, ImageOptions,
                                         resize_array)

OFFLINE_HINT = (
    "Offline? Pass --data_dir=DIR, a folder of MNIST-format IDX files; for "
    "example `apt-get install dataset-fashion-mnist` and "
    "--data_dir=/usr/share/datasets/fashion-mnist.")


@dataclasses.dataclass(frozen=True)
class Dataset:
  images: np.ndarray  # uint8 [N, H, W, C]
  labels: np.ndarray  # int32 [N]; -1 where unlabelled
  class_names: Tuple[str, ...] = ()  # An image folder's, in label order.

  @property
  def image_shape(self):
    return tuple(self.images.shape[1:])

  def __len__(self):
    return len(self.images)

  @functools.cached_property
  def sha256(self) -> str:
    """`hashing.dataset_sha256` of images and labels, computed once."""
    return hashing.dataset_sha256(self.images, self.labels)


# --- IDX files (the MNIST format) --------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4",
               0x0D: ">f4", 0x0E: ">f8"}
_IDX_SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (optionally gzipped) into an array of its shape.

  Raises DataError naming the file if it is truncated, padded or not IDX.
  """
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError) as e:  # gzip raises these on truncated files.
    raise DataError(f"Cannot read IDX file {path}: {e}. The file is corrupt "
                    "or truncated; download it again.") from e
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
    raise DataError(f"{path} is not an IDX file (bad magic number "
                    f"{raw[:4].hex() or 'empty'}); download it again.")
  dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise DataError(f"IDX file {path} is truncated inside its header; "
                    "download it again.")
  shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
  expected = header + int(np.prod(shape)) * dtype.itemsize
  if len(raw) != expected:
    raise DataError(
        f"IDX file {path} has {len(raw)} bytes but its header {shape} needs "
        f"{expected}: the file is truncated or corrupt; download it again.")
  return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _find_idx(data_dir: str, split: str, kind: str) -> str:
  prefixes = _IDX_SPLIT_PREFIXES.get(split)
  if prefixes is None:
    raise DataError(f"--split={split!r}: IDX folders have the splits "
                    f"{', '.join(_IDX_SPLIT_PREFIXES)}.")
  ndim = 3 if kind == "images" else 1
  candidates = [f"{prefix}-{kind}-idx{ndim}-ubyte{ext}"
                for prefix in prefixes for ext in (".gz", "")]
  for name in candidates:
    if os.path.exists(os.path.join(data_dir, name)):
      return os.path.join(data_dir, name)
  present = sorted(os.listdir(data_dir)) if os.path.isdir(data_dir) else None
  where = (f"it holds {', '.join(present) or 'nothing'}" if present is not None
           else "that folder does not exist")
  raise DataError(
      f"--data_dir={data_dir} holds no images (PNG, JPEG, ...: directly or in "
      f"one sub-folder per class) and no {split} {kind} IDX file (looked for "
      f"{' or '.join(candidates)}; {where}). Use --split=test for an IDX "
      "folder holding only the test split.")


def load_idx_dir(data_dir: str, split: str = "train") -> Dataset:
  """Loads MNIST-format IDX images [N, H, W] and labels [N] from a folder."""
  images_file = _find_idx(data_dir, split, "images")
  images = read_idx(images_file)
  labels = read_idx(_find_idx(data_dir, split, "labels"))
  if images.ndim and not len(images):
    raise DataError(f"{images_file} holds 0 images: point --data_dir at a "
                    "folder with data, or download the file again.")
  if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
    raise DataError(
        f"IDX files in {data_dir} disagree: images {images.shape} and labels "
        f"{labels.shape}; expected [N, H, W] and [N].")
  return Dataset(images[..., None].astype(np.uint8),
                 labels.astype(np.int32))


# --- TFDS --------------------------------------------------------------------

# Where TFDS downloads prepared datasets from first; unreachable means offline.
TFDS_HOST = "storage.googleapis.com"
# TFDS datasets whose images hold 0/1 rather than 0..255: the fixed
# binarisation of MNIST (Larochelle & Murray 2011), unlabelled.
BINARY_DATASETS = frozenset({"binarized_mnist"})


def _reachable(host: str, port: int = 443, timeout: float = 3.0):
  """None if a TCP connection to host:port opens within `timeout`, else the
  reason it did not."""
  try:
    socket.create_connection((host, port), timeout=timeout).close()
    return None
  except OSError as e:
    return f"{type(e).__name__}: {e}"


def _first_words(text: str, limit: int = 600) -> str:
  """`text` on one line, shortened at a word boundary."""
  return textwrap.shorten(" ".join(text.split()), width=limit,
                          placeholder=" [...]")


def load_tfds(name: str, split: str = "train",
              tfds_data_dir: Optional[str] = None,
              options: ImageOptions = ImageOptions()) -> Dataset:
  """Loads a TFDS image dataset whole into memory (downloading if needed).

  `tfds_data_dir` is where TFDS keeps prepared datasets (default
  ~/tensorflow_datasets); files downloaded by hand go in its
  downloads/manual/ folder, under the names TFDS downloads them as, and are
  checked against TFDS's checksums. Offline, with nothing prepared or
  placed there, it fails in seconds rather than after TFDS's retries.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # The light install: IDX folders only.
    raise DataError(
        f"--dataset={name} needs TFDS, which this install lacks: run "
        "`pip install -e \".[tfds]\"` in the gan_jax checkout (TensorFlow "
        f"Datasets and TensorFlow). {OFFLINE_HINT}"
    ) from e
  tfds.disable_progress_bar()  # Progress bars would flood a log file.
  try:
    builder = tfds.builder(name, data_dir=tfds_data_dir)
  except Exception as e:  # pylint: disable=broad-except
    close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
    hint = (f"did you mean {' or '.join(close)}?" if close else
            "see https://www.tensorflow.org/datasets/catalog for the names.")
    raise DataError(f"--dataset={name!r} is not a TFDS dataset; {hint}") from e
  manual_dir = os.path.join(builder.data_dir_root, "downloads", "manual")
  if not builder.is_prepared():
    has_manual_files = os.path.isdir(manual_dir) and os.listdir(manual_dir)
    problem = None if has_manual_files else _reachable(TFDS_HOST)
    if problem:
      raise DataError(
          f"TFDS has not prepared {name!r} in {builder.data_dir_root} and "
          f"cannot download it: {TFDS_HOST} is unreachable ({problem}). "
          f"{OFFLINE_HINT} Or put the files you downloaded in {manual_dir} "
          "(see --tfds_data_dir).")
  try:
    builder.download_and_prepare()
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(
        f"TFDS could not download or prepare {name!r} ({type(e).__name__}: "
        f"{_first_words(str(e))}) {OFFLINE_HINT}") from e
  try:
    examples = builder.as_dataset(split=split, shuffle_files=False)
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"--split={split!r} of {name!r}: "
                    f"{_first_words(str(e))}") from e
  stored_shape = tuple(builder.info.features["image"].shape)
  options = _tfds_options(stored_shape, options)
  _check_fits_in_memory(name, split, builder, stored_shape, options)
  if options.size is None:  # Stored at the size wanted: batch for speed.
    images, labels = [], []
    for chunk in tfds.as_numpy(examples.batch(4096)):
      images.append(chunk["image"])
      # Unlabelled datasets (binarized_mnist, celeb_a) get label -1.
      labels.append(chunk.get("label", np.full(len(chunk["image"]), -1)))
    images, labels = np.concatenate(images), np.concatenate(labels)
  else:  # One at a time: the images may differ in size.
    images, labels = [], []
    for example in tfds.as_numpy(examples):
      images.append(resize_array(example["image"], options))
      labels.append(example.get("label", -1))
    images, labels = np.stack(images), np.asarray(labels)
  if name in BINARY_DATASETS:  # Pixels 0/1 -> 0/255, as every image here.
    images = (images > 0).astype(np.uint8) * 255
  return Dataset(images.astype(np.uint8), labels.astype(np.int32))


def _tfds_options(stored_shape, options: ImageOptions) -> ImageOptions:
  """`options`, with DCGAN's size when the stored images are not all square
  and of one size; size None when they are stored at the size asked for."""
  height, width = stored_shape[:2]
  if options.size is None and (height is None or height != width):
    return dataclasses.replace(options, size=DCGAN_IMAGE_SIZE)
  if options.size == height == width:
    return dataclasses.replace(options, size=None)
  return options


def _check_fits_in_memory(name, split, builder, stored_shape,
                          options: ImageOptions) -> None:
  """DataError, before hours of decoding, if the split cannot be held."""
  try:
    count = builder.info.splits[split].num_examples
  except Exception:  # pylint: disable=broad-except (unknown until prepared)
    return
  side = options.size
  pixels = side * side if side else int(np.prod(stored_shape[:2]))
  needed = count * pixels * stored_shape[-1]
  memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  if needed > memory // 2:
    raise DataError(
        f"--dataset={name} --split={split} is {count:,} images, "
        f"{needed / 2**30:.1f} GiB as uint8, more than half of this "
        f"machine's {memory / 2**30:.1f} GiB: train on a slice, e.g. "
        f"--split='{split.split('[')[0]}[:{count * memory // 4 // needed}]'.")


def load(dataset: str, split: str = "train", data_dir: Optional[str] = None,
         tfds_data_dir: Optional[str] = None, *,
         image: ImageOptions = ImageOptions()) -> Dataset:
  """`data_dir` if given (a folder of images, or of IDX files), else the
  TFDS dataset `dataset` (prepared in `tfds_data_dir`, default
  ~/tensorflow_datasets); every image shaped by `image`.

  `dataset` names the data in `data_dir` too: files recognised by content as
  another dataset (`data_identity.KNOWN_SPLITS`) are a DataError.
  """
  image.validate()
  if not data_dir:
    return load_tfds(dataset, split, tfds_data_dir, image)
  if image_folder.has_images(data_dir):
    loaded = Dataset(*image_folder.load_image_folder(data_dir, split, image))
  else:
    loaded = load_idx_dir(data_dir, split)
  data_identity.check_name(dataset, split,
                           data_identity.identify(loaded.sha256), data_dir)
  if image.size not in (None,) + loaded.image_shape[:1]:  # IDX at a new size.
    loaded = Dataset(np.stack([resize_array(x, image) for x in loaded.images]),
                     loaded.labels)
  return loaded


# --- Batching ----------------------------------------------------------------


def to_model_range(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return images.astype(np.float32) * (2.0 / 255.0) - 1.0


def batches(dataset: Dataset, batch_size: int, *, seed: int,
            start_step: int = 0, batches_per_step: int = 1,
            by_label: bool = False, process_index: int = 0,
            process_count: int = 1) -> Iterator[Dict[str, np.ndarray]]:
  """Endless stream of {"image": float32 [B, H, W, C], "label": int32 [B]}.

  The examples are read epoch after epoch, each epoch in its own permutation
  of `seed`, so the stream is a pure function of (seed, step): resuming at
  `start_step` yields exactly what an uninterrupted run saw there.
  `batches_per_step` > 1 stacks that many consecutive batches per step
  ([k, B, ...], one per discriminator update); with `by_label`, batch k of
  each step is drawn from the examples labelled k alone, each label's
  examples in their own epochs (two unpaired domains, say). With several
  processes, `batch_size` is the global batch and each process gets its own
  contiguous rows of every global batch.
  """
  if batch_size % process_count:
    raise DataError(f"--batch_size={batch_size} must divide by the "
                     f"{process_count} processes.")
  if len(dataset) == 0:
    raise DataError("The dataset is empty.")
  local = batch_size // process_count
  if by_label:
    pools = [np.flatnonzero(dataset.labels == k)
             for k in range(batches_per_step)]
    for k, pool in enumerate(pools):
      if not len(pool):
        raise DataError(f"No example is labelled {k}, and each step draws "
                        f"one batch from each of labels 0..{len(pools) - 1}.")
    readers = [_epoch_reader(pool, (seed, k)) for k, pool in enumerate(pools)]
  else:
    readers = [_epoch_reader(np.arange(len(dataset)), (seed,))]

  step = start_step
  while True:
    rows = []
    for k in range(batches_per_step):
      read = readers[k] if by_label else readers[0]
      position = step if by_label else step * batches_per_step + k
      rows.append(read(position * batch_size + process_index * local, local))
    rows = np.stack(rows) if batches_per_step > 1 else rows[0]
    yield {"image": to_model_range(dataset.images[rows]),
           "label": dataset.labels[rows]}
    step += 1


def _epoch_reader(pool: np.ndarray, seed: Tuple[int, ...]
                  ) -> Callable[[int, int], np.ndarray]:
  """read(start, count): elements start..start+count of the endless
  sequence that runs through `pool` epoch after epoch, epoch e in the
  permutation of (*seed, e)."""
  n = len(pool)
  permutation_of = {}

  def read(start, count):
    parts = []
    while count:
      epoch, offset = divmod(start, n)
      if epoch not in permutation_of:
        permutation_of.clear()  # Keep one epoch's permutation at a time.
        permutation_of[epoch] = pool[np.random.default_rng(
            (*seed, epoch)).permutation(n)]
      take = min(count, n - offset)
      parts.append(permutation_of[epoch][offset:offset + take])
      start, count = start + take, count - take
    return np.concatenate(parts)

  return read


def prefetch(iterator: Iterator[Any], put: Callable[[Any], Any],
             size: int = 2) -> Iterator[Any]:
  """Runs `put` (e.g. jax.device_put) on the next `size` items in a thread.

  Errors in the producer are raised in the consumer, at the item they hit.
  """
  buffer = queue.Queue(maxsize=size)
  stop = threading.Event()
  sentinel = object()

  def produce():
    try:
      for item in iterator:
        if stop.is_set():
          return
        buffer.put(put(item))
      buffer.put((sentinel, None))  # End of a finite stream.
    except Exception as e:  # pylint: disable=broad-except
      buffer.put((sentinel, e))

  producer = threading.Thread(target=produce, daemon=True)
  producer.start()
  try:
    while True:
      item = buffer.get()
      if isinstance(item, tuple) and len(item) == 2 and item[0] is sentinel:
        if item[1] is None:
          return
        raise item[1]
      yield item
  finally:
    stop.set()
    try:  # Unblocks a producer waiting on a full buffer, so it can stop.
      buffer.get_nowait()
    except queue.Empty:
      pass
    # Waits for a device put in flight: a process that exits while the
    # thread is inside XLA aborts ("terminate called ...").
    producer.join(timeout=10)
