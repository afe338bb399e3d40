"""A domain classifier trained by the project, for classifier-based metrics.

Like TF-GAN's MNIST classifier score, but without TF-Hub: a small CNN trained
on the real data of a dataset, whose logits feed `classifier_score` and
`class_coverage`, and whose penultimate activations [N, 128] feed FID, KID and
precision/recall in place of Inception features (which mean little on 28x28
grayscale images).

  train_classifier("fashion_mnist", data_dir) -> info dict (and files on disk)
  load_or_train_classifier("fashion_mnist", data_dir) -> (Classifier, info)
  classifier_features_and_logits(classifier, images) -> (features, logits)

A classifier is keyed by the content of its training data, not by a name:

  <root>/<sha256 of the train split, 20 hex>/params/     orbax params
  <root>/<sha256 of the train split, 20 hex>/info.json   train_sha256,
                                        known_as, test accuracy, params_sha256

so a classifier trained on Fashion-MNIST files cannot be found, or written,
as MNIST's. The default root is ~/.cache/gan_jax/classifiers, or
$GAN_JAX_CACHE/classifiers when GAN_JAX_CACHE is set. The whole folder is
written under a temporary name and renamed when complete, so an interrupted
run never leaves a half-written classifier where a loader would find it.
"""

import functools
import json
import os
import shutil
import time
from typing import Any, Dict, NamedTuple, Optional, Tuple

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from gan_jax import data, data_identity, hashing, paths
from gan_jax.errors import ConfigError, DataError, DivergenceError
from gan_jax.image_preprocessing import ImageOptions

Params = Any
INFO_FILE = "info.json"
PARAMS_DIR = "params"
FEATURE_DIM = 128
_INFO_FIELDS = ("dataset", "train_sha256", "test_accuracy", "num_test_images",
                "num_epochs", "num_classes", "image_shape", "params_sha256")
KEY_CHARS = 20  # Hex digits of the training data's hash in a folder name.


class DomainClassifier(nn.Module):
  """CNN for small images in [-1, 1]: 3 convs, a 128-d feature layer, logits.

  Features and logits are float32 whatever the input dtype.
  """
  num_classes: int = 10
  dropout_rate: float = 0.2

  def setup(self):
    self.conv1 = nn.Conv(32, (3, 3))
    self.conv2 = nn.Conv(64, (3, 3), strides=2)
    self.conv3 = nn.Conv(128, (3, 3), strides=2)
    self.dense = nn.Dense(FEATURE_DIM)
    self.dropout = nn.Dropout(self.dropout_rate)
    self.head = nn.Dense(self.num_classes)

  def embed(self, images):
    """images float [B, H, W, C] -> features float32 [B, 128] (post-ReLU)."""
    x = jnp.asarray(images, jnp.float32)
    x = nn.relu(self.conv1(x))
    x = nn.relu(self.conv2(x))
    x = nn.relu(self.conv3(x))
    return nn.relu(self.dense(x.reshape(x.shape[0], -1)))

  def features_and_logits(self, images, train: bool = False):
    """-> (features float32 [B, 128], logits float32 [B, num_classes])."""
    features = self.embed(images)
    # Dropout only between features and head: the features stay deterministic.
    logits = self.head(self.dropout(features, deterministic=not train))
    return features, logits

  def __call__(self, images, train: bool = False):
    """images float [B, H, W, C] -> logits float32 [B, num_classes]."""
    return self.features_and_logits(images, train)[1]


class Classifier(NamedTuple):
  """A trained classifier: the module, its params and its image shape."""
  model: DomainClassifier
  params: Params
  image_shape: Tuple[int, int, int]


# --- Where classifiers live --------------------------------------------------


def default_root() -> str:
  return hashing.cache_dir("classifiers")


def classifier_dir(train_sha256: str, root: Optional[str] = None) -> str:
  """<root>/<train_sha256[:20]>, root defaulting to `default_root()`."""
  if len(train_sha256) < KEY_CHARS or not all(
      c in "0123456789abcdef" for c in train_sha256):
    raise ValueError(f"{train_sha256!r} is not a sha256 hex digest.")
  return os.path.join(os.path.abspath(root or default_root()),
                      train_sha256[:KEY_CHARS])


# One implementation, shared with the GAN checkpoints' state_sha256.
params_sha256 = hashing.tree_sha256


# --- Training ----------------------------------------------------------------


def make_train_step(model: DomainClassifier, tx: optax.GradientTransformation):
  """Jitted pure step: (params, opt_state, key, step, batch) -> new + metrics.

  `batch` is {"image": float32 [B, H, W, C] in [-1, 1], "label": int32 [B]};
  the dropout key of each step is fold_in(key, step).
  """

  def loss_fn(params, key, batch):
    logits = model.apply({"params": params}, batch["image"], train=True,
                         rngs={"dropout": key})
    loss = optax.softmax_cross_entropy_with_integer_labels(
        logits, batch["label"]).mean()
    accuracy = (logits.argmax(-1) == batch["label"]).mean()
    return loss, accuracy

  @jax.jit
  def step_fn(params, opt_state, key, step, batch):
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, accuracy), grads = grad_fn(params, jax.random.fold_in(key, step),
                                      batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, {"loss": loss, "accuracy": accuracy}

  return step_fn


def train_classifier(dataset_name: str, data_dir: Optional[str] = None,
                     split: str = "train", test_split: str = "test",
                     root: Optional[str] = None,
                     tfds_data_dir: Optional[str] = None,
                     image: ImageOptions = ImageOptions(), **train_kwargs
                     ) -> Dict[str, Any]:
  """Trains a DomainClassifier on `split` and saves it with its test accuracy.

  Data comes from `gan_jax.data.load(dataset_name, split, data_dir,
  tfds_data_dir)`. Writes `classifier_dir(<hash of that split>, root)`
  (replacing any classifier there) and returns its info dict, also saved as
  info.json there. `train_kwargs`: num_epochs, batch_size, seed, lr, ...
  """
  _check_writable(root)
  train_set = data.load(dataset_name, split, data_dir, tfds_data_dir,
                        image=image)
  test_set = data.load(dataset_name, test_split, data_dir, tfds_data_dir,
                       image=image)
  return _train(dataset_name, train_set, test_set, root=root,
                split=split, test_split=test_split, data_dir=data_dir,
                **train_kwargs)


def _check_writable(root: Optional[str]) -> None:
  """ConfigError now, rather than after training, if `root` is unwritable."""
  root = os.path.abspath(root or default_root())
  problem = paths.unwritable_folder(root)
  if problem:
    raise ConfigError(f"Cannot write classifiers to {root} ({problem}): "
                      "pass a writable --output_root, or set GAN_JAX_CACHE.")


def _train(dataset_name: str, train_set: data.Dataset,
           test_set: data.Dataset, *, root: Optional[str], split: str,
           test_split: str, data_dir: Optional[str], num_epochs: int = 3,
           batch_size: int = 128, seed: int = 0, num_classes: int = 10,
           lr: float = 1e-3, log_every: int = 100) -> Dict[str, Any]:
  if num_epochs < 1:
    raise ConfigError(f"--num_epochs={num_epochs} must be at least 1.")
  if batch_size < 1:
    raise ConfigError(f"--batch_size={batch_size} must be at least 1.")
  for name, dataset in ((split, train_set), (test_split, test_set)):
    if len(dataset) == 0:
      raise DataError(f"The {name} split of {dataset_name} is empty.")
    if dataset.labels.min() < 0 or dataset.labels.max() >= num_classes:
      raise DataError(
          f"The {name} split of {dataset_name} has labels in "
          f"[{dataset.labels.min()}, {dataset.labels.max()}], outside the "
          f"{num_classes} classes of the classifier.")
  if train_set.image_shape != test_set.image_shape:
    raise DataError(f"Splits {split} {train_set.image_shape} and {test_split} "
                    f"{test_set.image_shape} have different image shapes.")
  train_identity = data_identity.identify(train_set.sha256)
  target = classifier_dir(train_identity.sha256, root)

  model = DomainClassifier(num_classes=num_classes)
  steps_per_epoch = max(1, len(train_set) // batch_size)
  num_steps = num_epochs * steps_per_epoch
  # Cosine decay: a few epochs then end at a low rate, worth ~1% accuracy.
  tx = optax.adam(optax.cosine_decay_schedule(lr, num_steps))
  init_key, dropout_key = jax.random.split(jax.random.key(seed))
  params = model.init(init_key, jnp.zeros((1, *train_set.image_shape)))[
      "params"]
  opt_state = tx.init(params)
  step_fn = make_train_step(model, tx)

  logging.info("Training the %s classifier: %d images, %d epochs of %d steps.",
               dataset_name, len(train_set), num_epochs, steps_per_epoch)
  start = time.time()
  stream = data.prefetch(data.batches(train_set, batch_size, seed=seed),
                         jax.device_put)
  for step in range(num_steps):
    params, opt_state, metrics = step_fn(params, opt_state, dropout_key, step,
                                         next(stream))
    if (step + 1) % log_every == 0 or step + 1 == num_steps:
      metrics = jax.device_get(metrics)
      if not np.isfinite(metrics["loss"]):
        raise DivergenceError(f"Classifier loss is {metrics['loss']} at step "
                              f"{step + 1}; try a lower lr.")
      logging.info("step %d/%d: loss %.4f, batch accuracy %.3f, %.0f img/s",
                   step + 1, num_steps, metrics["loss"], metrics["accuracy"],
                   (step + 1) * batch_size / (time.time() - start))
  stream.close()
  params = jax.device_get(params)
  train_seconds = time.time() - start

  classifier = Classifier(model, params, train_set.image_shape)
  _, logits = classifier_features_and_logits(classifier, test_set.images)
  accuracy = float((logits.argmax(-1) == test_set.labels).mean())
  info = {
      "dataset": dataset_name,
      "train_sha256": train_identity.sha256,
      "test_sha256": test_set.sha256,
      "known_as": train_identity.to_dict()["known_as"],
      "data_dir": os.path.abspath(data_dir) if data_dir else None,
      "split": split,
      "test_split": test_split,
      "test_accuracy": accuracy,
      "num_train_images": len(train_set),
      "num_test_images": len(test_set),
      "num_epochs": num_epochs,
      "batch_size": batch_size,
      "seed": seed,
      "num_classes": num_classes,
      "image_shape": list(train_set.image_shape),
      "feature_dim": FEATURE_DIM,
      "train_seconds": round(train_seconds, 1),
      "params_sha256": params_sha256(params),
  }
  _save(target, params, info)
  logging.info("%s classifier: test accuracy %.4f on %d images; saved to %s",
               dataset_name, accuracy, len(test_set), target)
  return info


def _save(target: str, params: Params, info: Dict[str, Any]) -> None:
  """Writes params and info to a temporary folder, then renames it `target`."""
  os.makedirs(os.path.dirname(target), exist_ok=True)
  tmp = f"{target}.tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(os.path.join(tmp, PARAMS_DIR), params)
    checkpointer.wait_until_finished()
  with open(os.path.join(tmp, INFO_FILE), "w") as f:
    json.dump(info, f, indent=2)
  old = f"{target}.old-{os.getpid()}"
  if os.path.exists(target):
    os.rename(target, old)
  os.rename(tmp, target)
  shutil.rmtree(old, ignore_errors=True)


# --- Loading -----------------------------------------------------------------


def _corrupt(path: str, problem: str) -> DataError:
  return DataError(
      f"The saved classifier at {path} is unusable ({problem}). Delete that "
      "folder to retrain it on next use, or rerun "
      "`python -m experiments.train_classifier` for its dataset.")


def load_classifier(train_sha256: str, root: Optional[str] = None
                    ) -> Tuple[Classifier, Dict[str, Any]]:
  """Loads the classifier trained on data with this content hash (of its
  train split, `hashing.dataset_sha256`), checking its weights' hash."""
  path = classifier_dir(train_sha256, root)
  if not os.path.isdir(path):
    raise DataError(
        f"No classifier for this data at {path}: train one with `python -m "
        "experiments.train_classifier --dataset=... [--data_dir=...]`.")
  try:
    with open(os.path.join(path, INFO_FILE)) as f:
      info = json.load(f)
  except (OSError, ValueError) as e:
    raise _corrupt(path, f"cannot read {INFO_FILE}: {e}") from e
  missing = [k for k in _INFO_FIELDS
             if not isinstance(info, dict) or k not in info]
  if missing:
    raise _corrupt(path, f"{INFO_FILE} lacks {', '.join(missing)}")
  if info["train_sha256"] != train_sha256:
    raise _corrupt(path, f"it was trained on other data (train_sha256 "
                   f"{str(info['train_sha256'])[:12]}...)")
  try:
    model = DomainClassifier(num_classes=int(info["num_classes"]))
    image_shape = tuple(int(d) for d in info["image_shape"])
    abstract = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, *image_shape))))
    with ocp.StandardCheckpointer() as checkpointer:
      params = checkpointer.restore(os.path.join(path, PARAMS_DIR),
                                    abstract["params"])
  except Exception as e:  # pylint: disable=broad-except
    raise _corrupt(path, f"cannot restore {PARAMS_DIR}: "
                   f"{type(e).__name__}: {str(e)[:200]}") from e
  params = jax.device_get(params)
  if params_sha256(params) != info["params_sha256"]:
    raise _corrupt(path, "its weights do not match params_sha256 in "
                   f"{INFO_FILE}")
  return Classifier(model, params, image_shape), info


def load_or_train_classifier(dataset_name: str,
                             data_dir: Optional[str] = None,
                             root: Optional[str] = None,
                             tfds_data_dir: Optional[str] = None,
                             image: ImageOptions = ImageOptions(),
                             **train_kwargs
                             ) -> Tuple[Classifier, Dict[str, Any]]:
  """The classifier of the train split of `dataset_name` (from `data_dir`
  or TFDS), trained first if there is none for that content.

  `train_kwargs` go to `train_classifier` when it has to train. A folder that
  exists but is corrupt is an error, not retrained over.
  """
  train_set = data.load(dataset_name, "train", data_dir, tfds_data_dir,
                        image=image)
  path = classifier_dir(train_set.sha256, root)
  if not os.path.exists(path):
    logging.warning("No classifier for the %s training data at %s: training "
                    "one now (once).", dataset_name, path)
    _check_writable(root)
    test_set = data.load(dataset_name, "test", data_dir, tfds_data_dir,
                         image=image)
    _train(dataset_name, train_set, test_set, root=root, split="train",
           test_split="test", data_dir=data_dir, **train_kwargs)
  return load_classifier(train_set.sha256, root)


# --- Features ----------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=0)
def _features_and_logits(model, params, images):
  return model.apply({"params": params}, images,
                     method=DomainClassifier.features_and_logits)


def classifier_features_and_logits(classifier: Classifier, images,
                                   batch_size: int = 500
                                   ) -> Tuple[np.ndarray, np.ndarray]:
  """images [N, H, W, C] -> (features float32 [N, 128], logits float32 [N, K]).

  uint8 images are taken as [0, 255], float ones as already in [-1, 1]. The
  last batch is padded to `batch_size`, so the network compiles once.
  """
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.shape[1:] != tuple(classifier.image_shape):
    raise ConfigError(
        f"Images of shape {images.shape[1:]} do not fit the classifier, "
        f"trained on {tuple(classifier.image_shape)}.")
  if batch_size < 1:
    raise ConfigError(f"batch_size={batch_size} must be at least 1.")
  n = len(images)
  num_classes = classifier.model.num_classes
  if n == 0:
    return (np.zeros((0, FEATURE_DIM), np.float32),
            np.zeros((0, num_classes), np.float32))
  batch_size = min(batch_size, n)
  features, logits = [], []
  for first in range(0, n, batch_size):
    chunk = images[first:first + batch_size]
    chunk = (data.to_model_range(chunk) if chunk.dtype == np.uint8
             else chunk.astype(np.float32))
    pad = batch_size - len(chunk)
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]),
                                              np.float32)])
    f, l = _features_and_logits(classifier.model, classifier.params, chunk)
    features.append(np.asarray(f)[:batch_size - pad])
    logits.append(np.asarray(l)[:batch_size - pad])
  return np.concatenate(features), np.concatenate(logits)
