import itertools
import os
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import make_digits, write_idx
from gan_jax import data
from gan_jax.errors import DataError


def test_idx_reader_round_trip(tmp_path):
  array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
    path = str(tmp_path / name)
    write_idx(path, array)
    np.testing.assert_array_equal(data.read_idx(path), array)


def test_idx_reader_rejects_truncated_files(tmp_path):
  path = str(tmp_path / "t-idx3-ubyte")
  write_idx(path, np.zeros((4, 5, 5), np.uint8))
  raw = open(path, "rb").read()
  open(path, "wb").write(raw[:-7])
  with pytest.raises(DataError, match="truncated or corrupt"):
    data.read_idx(path)
  open(path, "wb").write(raw[:10])
  with pytest.raises(DataError, match="header"):
    data.read_idx(path)


def test_idx_reader_rejects_truncated_gzip_and_garbage(tmp_path):
  path = str(tmp_path / "t-idx3-ubyte.gz")
  write_idx(path, np.zeros((40, 28, 28), np.uint8))
  raw = open(path, "rb").read()
  open(path, "wb").write(raw[: len(raw) // 2])
  with pytest.raises(DataError, match="corrupt or truncated"):
    data.read_idx(path)
  garbage = str(tmp_path / "g-idx3-ubyte")
  open(garbage, "wb").write(b"<html>not found</html>")
  with pytest.raises(DataError, match="not an IDX file"):
    data.read_idx(garbage)


def test_load_idx_dir(idx_dir):
  train = data.load_idx_dir(idx_dir, "train")
  test = data.load("ignored", "test", data_dir=idx_dir)
  assert train.images.shape == (96, 28, 28, 1) and train.images.dtype == np.uint8
  assert train.labels.shape == (96,) and train.labels.dtype == np.int32
  assert len(test) == 32 and test.image_shape == (28, 28, 1)


def test_missing_files_name_the_flag_and_the_fix(idx_dir, tmp_path):
  for name in os.listdir(idx_dir):
    if name.startswith("train"):
      os.remove(os.path.join(idx_dir, name))
  with pytest.raises(DataError, match="--split=test"):
    data.load_idx_dir(idx_dir, "train")
  with pytest.raises(DataError, match="does not exist"):
    data.load_idx_dir(str(tmp_path / "nowhere"), "train")
  with pytest.raises(DataError, match="--split='validation'"):
    data.load_idx_dir(idx_dir, "validation")


def test_image_range():
  images = np.array([0, 255, 128], np.uint8)
  np.testing.assert_allclose(data.to_model_range(images),
                             [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)


def _dataset(n=10):
  images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1) * 20
  return data.Dataset(images, np.arange(n, dtype=np.int32))


def test_batches_cover_each_epoch_once_in_a_seeded_order():
  stream = data.batches(_dataset(), 5, seed=3)
  first_epoch = np.concatenate([next(stream)["label"] for _ in range(2)])
  second_epoch = np.concatenate([next(stream)["label"] for _ in range(2)])
  assert sorted(first_epoch) == list(range(10))
  assert sorted(second_epoch) == list(range(10))
  assert list(first_epoch) != list(second_epoch)
  again = data.batches(_dataset(), 5, seed=3)
  np.testing.assert_array_equal(next(again)["label"], first_epoch[:5])
  other_seed = data.batches(_dataset(), 5, seed=4)
  assert list(next(other_seed)["label"]) != list(first_epoch[:5])


def test_batches_resume_at_any_step_and_cross_epochs():
  full = data.batches(_dataset(), 4, seed=0)  # 4 does not divide 10.
  expected = [next(full)["label"] for _ in range(7)]
  for start in (0, 2, 5):
    resumed = data.batches(_dataset(), 4, seed=0, start_step=start)
    for step in range(start, 7):
      np.testing.assert_array_equal(next(resumed)["label"], expected[step])


def test_batches_per_step_and_process_slices():
  whole = data.batches(_dataset(), 4, seed=0, batches_per_step=2)
  batch = next(whole)
  assert batch["image"].shape == (2, 4, 1, 1, 1)
  assert batch["image"].dtype == np.float32
  halves = [next(data.batches(_dataset(), 4, seed=0, batches_per_step=2,
                              process_index=p, process_count=2))["label"]
            for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves, axis=1),
                                batch["label"])
  with pytest.raises(DataError, match="--batch_size=4"):
    next(data.batches(_dataset(), 4, seed=0, process_count=3))


def test_prefetch_preserves_order_and_raises_producer_errors():
  assert list(data.prefetch(iter(range(5)), put=lambda x: x * 2)) == [
      0, 2, 4, 6, 8]

  def broken():
    yield 1
    raise DataError("disk on fire")

  stream = data.prefetch(broken(), put=lambda x: x)
  assert next(stream) == 1
  with pytest.raises(DataError, match="disk on fire"):
    next(stream)


def test_prefetch_close_waits_for_the_put_in_flight():
  """A put still running when the consumer closes the stream finishes before
  close() returns; a process exiting under it would abort."""
  started, finished = threading.Event(), threading.Event()

  def slow_put(x):
    if x == 2:  # The first item past a full buffer of two.
      started.set()
      time.sleep(0.2)
      finished.set()
    return x

  stream = data.prefetch(itertools.count(), put=slow_put)
  assert next(stream) == 0
  assert started.wait(5)
  stream.close()
  assert finished.is_set()


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)),
                                        ("cifar10", (32, 32, 3))])
def test_tfds_path_with_mock_data(name, shape):
  with tfds.testing.mock_data(num_examples=12):
    dataset = data.load(name, "train")
  assert dataset.images.shape == (12,) + shape
  assert dataset.images.dtype == np.uint8 and dataset.labels.dtype == np.int32


def test_binarized_mnist_is_0_255_and_unlabelled():
  with tfds.testing.mock_data(num_examples=12):
    dataset = data.load("binarized_mnist", "train")
  assert dataset.images.shape == (12, 28, 28, 1)
  assert set(np.unique(dataset.images)) <= {0, 255}
  assert (dataset.labels == -1).all()


def test_dataset_hash_is_of_content_not_order():
  from gan_jax import hashing  # pylint: disable=g-import-not-at-top
  images, labels = make_digits(50)
  base = hashing.dataset_sha256(images, labels)
  order = np.random.default_rng(0).permutation(50)
  assert hashing.dataset_sha256(images[order], labels[order]) == base
  relabelled = labels.copy()
  relabelled[0] = (relabelled[0] + 1) % 10
  assert hashing.dataset_sha256(images, relabelled) != base
  touched = images.copy()
  touched[3, 0, 0] ^= 1
  assert hashing.dataset_sha256(touched, labels) != base
  assert hashing.dataset_sha256(images[:49], labels[:49]) != base


def test_empty_idx_file_is_named(tmp_path):
  write_idx(str(tmp_path / "train-images-idx3-ubyte"),
            np.zeros((0, 28, 28), np.uint8))
  write_idx(str(tmp_path / "train-labels-idx1-ubyte"), np.zeros(0, np.uint8))
  with pytest.raises(DataError, match="train-images-idx3-ubyte holds 0 "
                     "images"):
    data.load("mnist", "train", str(tmp_path))


def test_known_data_under_another_name_is_refused(idx_dir, monkeypatch):
  """--dataset=mnist over Fashion-MNIST files: recognised by content."""
  from gan_jax import data_identity  # pylint: disable=g-import-not-at-top
  train = data.load_idx_dir(idx_dir, "train")
  sha256 = train.sha256
  monkeypatch.setitem(data_identity.KNOWN_SPLITS, sha256,
                      ("fashion_mnist", "train"))
  with pytest.raises(DataError) as error:
    data.load("mnist", "train", idx_dir)
  assert "--dataset=fashion_mnist" in str(error.value)
  assert len(data.load("fashion_mnist", "train", idx_dir)) == 96


def test_known_split_hashes_are_the_real_datasets():
  """KNOWN_SPLITS holds four distinct 64-hex digests of the four splits."""
  from gan_jax import data_identity  # pylint: disable=g-import-not-at-top
  assert sorted(data_identity.KNOWN_SPLITS.values()) == [
      ("fashion_mnist", "test"), ("fashion_mnist", "train"),
      ("mnist", "test"), ("mnist", "train")]
  for sha256 in data_identity.KNOWN_SPLITS:
    assert len(sha256) == 64 and int(sha256, 16) >= 0


def _never_download(self, *args, **kwargs):
  raise AssertionError("download_and_prepare ran; it should fail fast")


def test_tfds_offline_fails_fast_without_retries(tmp_path, monkeypatch):
  monkeypatch.setattr(data, "_reachable",
                      lambda *args, **kwargs: "gaierror: no network")
  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                      _never_download)
  with pytest.raises(DataError) as error:
    data.load("mnist", "train", tfds_data_dir=str(tmp_path))
  message = str(error.value)
  assert "unreachable (gaierror: no network)" in message
  assert "--data_dir" in message
  assert os.path.join(str(tmp_path), "downloads", "manual") in message


_CHECKSUM_ERROR = ("Artifact https://storage.googleapis.com/x.gz has wrong "
                   "checksum: " + "Expected: UrlInfo(size=9.45 MiB, "
                   "checksum='440f') " * 5 + "To debug, see the checksum guide.")


@pytest.mark.parametrize("error, expected", [
    (ConnectionError("Failed to resolve 'storage.googleapis.com'"),
     ("ConnectionError", "--data_dir", "dataset-fashion-mnist")),
    # TFDS's own explanation is kept whole, not cut mid-word.
    (ValueError(_CHECKSUM_ERROR), ("wrong checksum", "checksum guide")),
])
def test_tfds_errors_keep_their_explanation_and_name_the_fix(
    monkeypatch, error, expected):
  def fail(self, *args, **kwargs):
    raise error

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
  with pytest.raises(DataError) as raised:
    data.load("mnist", "train")
  for text in expected:
    assert text in str(raised.value)


def _manual_mnist(root, train_images, test_images):
  """Writes MNIST-named gz files in root/downloads/manual; returns url_infos
  that make TFDS accept them as the genuine downloads."""
  from tensorflow_datasets.core.download import checksums  # pylint: disable=g-import-not-at-top
  manual = os.path.join(root, "downloads", "manual")
  os.makedirs(manual)
  for prefix, n in (("train", train_images), ("t10k", test_images)):
    images, labels = make_digits(n)
    write_idx(os.path.join(manual, f"{prefix}-images-idx3-ubyte.gz"), images)
    write_idx(os.path.join(manual, f"{prefix}-labels-idx1-ubyte.gz"), labels)
  infos = {}
  for url, info in tfds.builder_cls("mnist").url_infos.items():
    got = checksums.compute_url_info(os.path.join(manual, info.filename))
    infos[url] = checksums.UrlInfo(size=got.size, checksum=got.checksum,
                                   filename=info.filename)
  return infos


def test_tfds_manual_folder_prepares_offline(tmp_path, monkeypatch):
  """Files in <tfds_data_dir>/downloads/manual are used with no network;
  the builder wants exactly MNIST's 60,000 + 10,000 images."""
  root = str(tmp_path / "tfds")
  infos = _manual_mnist(root, 60_000, 10_000)
  monkeypatch.setattr(data, "_reachable", _never_download)  # Not probed.
  monkeypatch.setattr(tfds.builder_cls("mnist"), "url_infos", infos)
  test = data.load("mnist", "test", tfds_data_dir=root)
  images, labels = make_digits(10_000)
  from gan_jax import hashing  # pylint: disable=g-import-not-at-top
  assert hashing.dataset_sha256(test.images, test.labels) == (
      hashing.dataset_sha256(images[..., None], labels))
  assert os.path.isdir(os.path.join(root, "mnist"))


def test_tfds_manual_files_with_wrong_checksums_say_so(tmp_path,
                                                       monkeypatch):
  root = str(tmp_path / "tfds")
  _manual_mnist(root, 10, 10)
  monkeypatch.setattr(data, "_reachable", _never_download)
  with pytest.raises(DataError, match="wrong checksum"):
    data.load("mnist", "train", tfds_data_dir=root)


def test_light_install_without_tfds_names_the_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # Not there.
  with pytest.raises(DataError, match=r'pip install -e "\.\[tfds\]"'):
    data.load("mnist", "train")


def test_misspelt_dataset_gets_a_suggestion():
  with pytest.raises(DataError, match="did you mean mnist"):
    data.load("mnsit", "train")
