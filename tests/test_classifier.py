"""The domain classifier: model, training, saved files, loading, extraction."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_module
from gan_jax.errors import DataError
from gan_jax.metrics import classifier as clf

# 96 training bars, batch 32: 3 steps an epoch. 8 epochs reach 1.0 test
# accuracy for seeds 0..7; 0.9 leaves room for other platforms' numerics.
TRAIN = dict(num_epochs=8, batch_size=32)
SHA = "ab" * 32  # The content hash of a classifier's (imagined) data.


def _init(num_classes=10, seed=0):
  model = clf.DomainClassifier(num_classes=num_classes)
  params = model.init(jax.random.key(seed), jnp.zeros((1, 28, 28, 1)))[
      "params"]
  return clf.Classifier(model, jax.device_get(params), (28, 28, 1))


def _saved(root):
  """A classifier saved for data of hash SHA, without training; its params."""
  classifier = _init()
  info = {"dataset": "toy", "train_sha256": SHA, "test_accuracy": 0.0,
          "num_test_images": 0, "num_epochs": 0, "num_classes": 10,
          "image_shape": [28, 28, 1],
          "params_sha256": clf.params_sha256(classifier.params)}
  save = clf._save  # pylint: disable=protected-access
  save(clf.classifier_dir(SHA, root), classifier.params, info)
  return classifier.params


def test_output_shapes_and_dtypes():
  classifier = _init(num_classes=7)
  images = jnp.zeros((3, 28, 28, 1), jnp.bfloat16)
  variables = {"params": classifier.params}
  logits = classifier.model.apply(variables, images)
  features = classifier.model.apply(variables, images,
                                    method=clf.DomainClassifier.embed)
  assert logits.shape == (3, 7) and logits.dtype == jnp.float32
  assert features.shape == (3, clf.FEATURE_DIM)
  assert features.dtype == jnp.float32


def test_train_save_and_load_back(idx_dir, tmp_path, monkeypatch):
  root = str(tmp_path / "classifiers")
  saved = {}
  real_save = clf._save  # pylint: disable=protected-access

  def spy(target, params, info):
    saved["params"] = params
    real_save(target, params, info)

  monkeypatch.setattr(clf, "_save", spy)
  info = clf.train_classifier("toy", idx_dir, root=root, **TRAIN)
  assert info["test_accuracy"] >= 0.9, info
  assert info["dataset"] == "toy" and info["num_test_images"] == 32
  assert info["num_epochs"] == TRAIN["num_epochs"]
  assert info["params_sha256"] == clf.params_sha256(saved["params"])
  folder = clf.classifier_dir(info["train_sha256"], root)
  # One folder, named by the data's content; no temporary folders left.
  assert sorted(os.listdir(root)) == [info["train_sha256"][:clf.KEY_CHARS]]
  with open(os.path.join(folder, clf.INFO_FILE)) as f:
    assert json.load(f) == info

  def no_training(*args, **kwargs):
    raise AssertionError("retrained a saved classifier")

  monkeypatch.setattr(clf, "_train", no_training)
  loaded, loaded_info = clf.load_or_train_classifier("toy", idx_dir, root=root)
  assert loaded_info == info
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded.params,
                         saved["params"])
  images = np.random.default_rng(0).integers(0, 256, (20, 28, 28, 1), np.uint8)
  trained = clf.Classifier(loaded.model, saved["params"], (28, 28, 1))
  for a, b in zip(clf.classifier_features_and_logits(loaded, images),
                  clf.classifier_features_and_logits(trained, images)):
    np.testing.assert_array_equal(a, b)


def test_load_or_train_trains_once_when_missing(idx_dir, tmp_path,
                                                monkeypatch):
  monkeypatch.setenv("GAN_JAX_CACHE", str(tmp_path / "cache"))
  _, info = clf.load_or_train_classifier("toy", idx_dir, num_epochs=1,
                                         batch_size=32)
  folder = clf.classifier_dir(info["train_sha256"])
  assert folder == str(tmp_path / "cache" / "classifiers" /
                       info["train_sha256"][:clf.KEY_CHARS])
  assert os.path.exists(os.path.join(folder, clf.INFO_FILE))
  assert info["num_epochs"] == 1


def _garbage_json(folder):
  with open(os.path.join(folder, clf.INFO_FILE), "w") as f:
    f.write("{not json")


def _edit_info(folder, edit):
  path = os.path.join(folder, clf.INFO_FILE)
  with open(path) as f:
    info = json.load(f)
  edit(info)
  with open(path, "w") as f:
    json.dump(info, f)


def _missing_field(folder):
  _edit_info(folder, lambda info: info.pop("params_sha256"))


def _wrong_hash(folder):
  _edit_info(folder, lambda info: info.update(params_sha256="0" * 64))


def _other_data(folder):
  _edit_info(folder, lambda info: info.update(train_sha256="cd" * 32))


def _no_params(folder):
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(os.path.join(folder, clf.PARAMS_DIR))


def _truncated_params(folder):
  # Truncate every data file of the checkpoint to half its size.
  for parent, _, files in os.walk(os.path.join(folder, clf.PARAMS_DIR)):
    for name in files:
      path = os.path.join(parent, name)
      size = os.path.getsize(path)
      with open(path, "r+b") as f:
        f.truncate(size // 2)


@pytest.mark.parametrize("corrupt", [_garbage_json, _missing_field,
                                     _wrong_hash, _no_params,
                                     _truncated_params, _other_data])
def test_corrupt_classifier_gets_a_clear_error(tmp_path, corrupt):
  root = str(tmp_path)
  _saved(root)
  folder = clf.classifier_dir(SHA, root)
  corrupt(folder)
  # A corrupt folder is reported, not silently retrained over.
  with pytest.raises(DataError, match="Delete that folder") as error:
    clf.load_classifier(SHA, root=root)
  assert folder in str(error.value)


def test_missing_classifier_names_the_command(tmp_path):
  with pytest.raises(DataError, match="experiments.train_classifier"):
    clf.load_classifier(SHA, str(tmp_path))


def test_extraction_is_independent_of_batch_size(tmp_path):
  params = _saved(str(tmp_path))
  loaded, _ = clf.load_classifier(SHA, str(tmp_path))
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded.params, params)
  images = np.random.default_rng(1).integers(0, 256, (37, 28, 28, 1), np.uint8)
  features, logits = clf.classifier_features_and_logits(loaded, images)
  assert features.shape == (37, clf.FEATURE_DIM) and logits.shape == (37, 10)
  assert features.dtype == logits.dtype == np.float32
  for batch_size in (1, 8, 37, 500):
    f, l = clf.classifier_features_and_logits(loaded, images, batch_size)
    np.testing.assert_allclose(f, features, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(l, logits, rtol=1e-5, atol=1e-5)
  # Float images in [-1, 1] give what their uint8 originals give.
  f, l = clf.classifier_features_and_logits(
      loaded, images.astype(np.float32) * (2 / 255) - 1, batch_size=10)
  np.testing.assert_allclose(f, features, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(l, logits, rtol=1e-5, atol=1e-5)


def _run(*flags):
  return run_module("experiments.train_classifier", *flags)


def test_command_line(idx_dir, tmp_path):
  result = _run("--dataset=fashion_mnist", f"--data_dir={idx_dir}",
                f"--output_root={tmp_path}", "--num_epochs=1",
                "--batch_size=32")
  assert result.returncode == 0, result.stderr[-3000:]
  info = json.loads(result.stdout)
  assert info["dataset"] == "fashion_mnist" and info["num_test_images"] == 32
  assert info["known_as"] is None  # The test's bars are no known dataset.
  assert os.path.isdir(tmp_path / info["train_sha256"][:clf.KEY_CHARS] /
                       clf.PARAMS_DIR)

  result = _run("--dataset=mnist", f"--data_dir={tmp_path / 'nothing'}",
                f"--output_root={tmp_path}")
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: --data_dir=") and "nothing" in last


def test_unwritable_output_root_is_one_line_before_training(idx_dir,
                                                           tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  result = _run(f"--data_dir={idx_dir}", f"--output_root={blocker}/clf",
                "--num_epochs=1")
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: Cannot write classifiers to") and (
      "--output_root" in last), result.stderr[-2000:]
  assert "Traceback" not in result.stderr and "Training" not in result.stderr


def test_same_name_other_data_never_reuses_a_classifier(idx_dir, tmp_path,
                                                        make_idx_dir):
  """The poisoned-cache bug: a classifier of other data under the same
  --dataset name used to be found and silently used."""
  root = str(tmp_path / "classifiers")
  first = clf.train_classifier("mnist", idx_dir, root=root, num_epochs=1,
                               batch_size=32)
  other_dir = make_idx_dir(seed=7, invert=True)
  _, second = clf.load_or_train_classifier("mnist", other_dir, root=root,
                                           num_epochs=1, batch_size=32)
  assert second["train_sha256"] != first["train_sha256"]
  assert second["params_sha256"] != first["params_sha256"]
  assert len(os.listdir(root)) == 2
