"""Image folders (your own PNG/JPEG files) and the shared preprocessing:
compositing, centre crop, antialiased resize, the content-keyed cache, the
one-line errors, and TFDS's faces and bedrooms on mock data."""

import os

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from conftest import tiny_run_config
from gan_jax import data, image_folder, probe, runs
from gan_jax.errors import ConfigError, DataError
from gan_jax.image_preprocessing import ImageOptions


def _save(path, array, mode=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.asarray(array, np.uint8), mode).save(path)


def _colour_folder(root, per_class=4, size=28):
  """Two classes of flat-coloured RGB squares, one a JPEG, plus a README."""
  for label, (name, rgb) in enumerate((("blue", (0, 0, 255)),
                                       ("red", (255, 0, 0)))):
    for i in range(per_class):
      pixels = np.zeros((size, size, 3), np.uint8) + np.uint8(rgb)
      pixels[0, 0] = i  # Distinct files.
      ext = ".jpg" if label and not i else ".png"
      _save(os.path.join(root, name, f"{i}{ext}"), pixels)
  with open(os.path.join(root, "README.md"), "w") as f:
    f.write("not an image")
  return str(root)


def test_class_folders_give_sorted_labels_and_ignore_other_files(tmp_path):
  dataset = data.load("mine", "train", _colour_folder(tmp_path))
  assert dataset.images.shape == (8, 28, 28, 3)
  assert dataset.class_names == ("blue", "red")
  np.testing.assert_array_equal(dataset.labels, [0] * 4 + [1] * 4)
  # Blue class is blue, red class is red (the JPEG approximately).
  assert dataset.images[1, 5, 5].tolist() == [0, 0, 255]
  assert abs(int(dataset.images[4, 5, 5, 0]) - 255) < 8


def test_rgba_is_composited_on_the_background(tmp_path):
  pixels = np.zeros((4, 4, 4), np.uint8)
  pixels[..., 0] = 255  # Red...
  pixels[:, :2, 3] = 255  # ...opaque on the left, transparent on the right.
  pixels[:, 2:, 3] = 0
  _save(str(tmp_path / "a.png"), pixels, "RGBA")
  white = data.load("x", "train", str(tmp_path)).images[0]
  black = data.load("x", "train", str(tmp_path),
                    image=ImageOptions(background="#000000")).images[0]
  assert white[0, 0].tolist() == black[0, 0].tolist() == [255, 0, 0]
  assert white[0, 3].tolist() == [255, 255, 255]
  assert black[0, 3].tolist() == [0, 0, 0]


def test_grey_stays_one_channel_unless_mixed_with_colour(tmp_path):
  _save(str(tmp_path / "grey" / "g.png"), np.full((6, 6), 77))
  assert data.load("x", "train", str(tmp_path / "grey")).images.shape == (
      1, 6, 6, 1)
  _save(str(tmp_path / "grey" / "c.png"), np.full((6, 6, 3), 200))
  mixed = data.load("x", "train", str(tmp_path / "grey")).images
  assert mixed.shape == (2, 6, 6, 3)
  assert mixed[1, 0, 0].tolist() == [77, 77, 77]  # g.png sorts second.


def test_image_size_centre_crops_then_resizes(tmp_path):
  # 12 wide, 4 high: a red centre square between blue sides.
  pixels = np.zeros((4, 12, 3), np.uint8)
  pixels[:, :, 2] = 255
  pixels[:, 4:8] = (255, 0, 0)
  _save(str(tmp_path / "wide.png"), pixels)
  _save(str(tmp_path / "small.png"), np.zeros((2, 2, 3)))
  with pytest.raises(DataError, match=r"wide\.png is 12x4 .*--image_size"):
    data.load("x", "train", str(tmp_path))
  for method in ("bicubic", "area", "lanczos"):
    images = data.load("x", "train", str(tmp_path),
                       image=ImageOptions(size=8, resize=method)).images
    assert images.shape == (2, 8, 8, 3)
    assert (images[1] == (255, 0, 0)).all(), method  # Only the centre.


def test_unreadable_and_empty_folders_name_the_file(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(DataError, match="empty holds no images"):
    data.load("x", "train", str(tmp_path / "empty"), image=ImageOptions(4))
  _save(str(tmp_path / "bad" / "ok.png"), np.zeros((4, 4)))
  (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG not really")
  with pytest.raises(DataError, match=r"Cannot read the image .*broken\.png"):
    data.load("x", "train", str(tmp_path / "bad"))
  # A truncated PNG (valid header, missing data) is named too.
  good = (tmp_path / "bad" / "ok.png").read_bytes()
  (tmp_path / "bad" / "broken.png").write_bytes(good[:len(good) // 2])
  with pytest.raises(DataError, match=r"broken\.png"):
    data.load("x", "train", str(tmp_path / "bad"))


def test_loose_images_are_unlabelled_and_must_not_mix_with_classes(tmp_path):
  _save(str(tmp_path / "a.png"), np.zeros((4, 4)))
  assert data.load("x", "train", str(tmp_path)).labels.tolist() == [-1]
  _save(str(tmp_path / "cats" / "b.png"), np.zeros((4, 4)))
  with pytest.raises(DataError, match=r"a\.png lies beside the class"):
    data.load("x", "train", str(tmp_path))


def test_train_and_test_sub_folders_are_splits(tmp_path):
  _save(str(tmp_path / "train" / "a" / "1.png"), np.zeros((4, 4)))
  _save(str(tmp_path / "train" / "b" / "1.png"), np.zeros((4, 4)))
  _save(str(tmp_path / "test" / "b" / "2.png"), np.full((4, 4), 9))
  assert len(data.load("x", "train", str(tmp_path))) == 2
  test = data.load("x", "test", str(tmp_path))
  assert test.images[0, 0, 0, 0] == 9 and test.class_names == ("b",)
  with pytest.raises(DataError, match="has the splits train, test"):
    data.load("x", "validation", str(tmp_path))


def test_decoding_is_cached_by_content(tmp_path, monkeypatch):
  root = _colour_folder(tmp_path / "data")
  first = data.load("x", "train", root)
  monkeypatch.setattr(image_folder, "decode", lambda *a: 1 / 0)
  np.testing.assert_array_equal(data.load("x", "train", root).images,
                                first.images)  # Read from the cache.
  with pytest.raises(ZeroDivisionError):  # Other options: decoded again.
    data.load("x", "train", root, image=ImageOptions(size=8))
  _save(os.path.join(root, "red", "1.png"), np.zeros((28, 28, 3)))
  with pytest.raises(ZeroDivisionError):  # An edited file: decoded again.
    data.load("x", "train", root)


def test_bad_options_are_one_line_errors():
  with pytest.raises(ConfigError, match="#rrggbb"):
    ImageOptions(background="pink").validate()
  with pytest.raises(ConfigError, match="--resize='cubic'"):
    ImageOptions(resize="cubic").validate()
  with pytest.raises(ConfigError, match="--image_size must be positive"):
    ImageOptions(size=0).validate()


@pytest.mark.parametrize("name,size,channels", [
    ("celeb_a", 64, 3),        # 218x178: centre crop and resize to 64.
    ("lsun/bedroom", 64, 3),   # Mixed sizes (random on mock data).
    ("cifar10", 32, 3),        # Square and fixed: kept as it is...
])
def test_tfds_faces_and_bedrooms_are_cropped_to_64(name, size, channels):
  with tfds.testing.mock_data(num_examples=5):
    dataset = data.load(name, "train")
  assert dataset.images.shape == (5, size, size, channels)
  assert dataset.images.dtype == np.uint8 and dataset.labels.dtype == np.int32


def test_tfds_image_size_overrides_the_default():
  with tfds.testing.mock_data(num_examples=3):  # ...unless asked.
    assert data.load("cifar10", "train", image=ImageOptions(16)).images.shape \
        == (3, 16, 16, 3)
    assert data.load("celeb_a", "train", image=ImageOptions(32)).images.shape \
        == (3, 32, 32, 3)


def test_a_split_too_big_for_memory_says_how_to_slice(monkeypatch):

  class Split:
    num_examples = 3_033_042

  class Builder:
    class info:  # pylint: disable=invalid-name
      splits = {"train": Split()}

  monkeypatch.setattr(os, "sysconf", lambda name: {
      "SC_PHYS_PAGES": 2 ** 18, "SC_PAGE_SIZE": 2 ** 12}[name])  # 1 GiB.
  with pytest.raises(DataError, match=r"--split='train\[:\d+\]'"):
    data._check_fits_in_memory("lsun/bedroom", "train", Builder, (None, None, 3),
                               ImageOptions(64))


def test_a_conditional_gan_trains_on_an_image_folder(tmp_path):
  root = _colour_folder(tmp_path / "data", per_class=8)
  experiment = tiny_run_config(root, preset="tiny_conditional",
                               dataset="mine", num_steps=2,
                               checkpoint_every=2, sample_every=2)
  state = experiment.train(tmp_path / "run")
  assert int(state.step) == 2
  # --label takes the folders' class names (or their numbers).
  runs.sample_to_files(str(tmp_path / "run"), 3, str(tmp_path / "red.npz"),
                       labels=["red"])
  with np.load(tmp_path / "red.npz") as drawn:
    assert drawn["labels"].tolist() == [1, 1, 1]
    assert drawn["images"].shape == (3, 28, 28, 3)
  with pytest.raises(ConfigError, match=r"a class name \(blue, red\)"):
    runs.sample_to_files(str(tmp_path / "run"), 3, str(tmp_path / "x.npz"),
                         labels=["green"])
  # Without train/ and test/ folders, a probe would test on what it fitted.
  with pytest.raises(ConfigError, match="is its training split"):
    probe.probe_run(str(tmp_path / "run"))
