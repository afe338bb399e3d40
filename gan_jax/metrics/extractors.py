"""Feature extractors behind one interface, chosen by name.

    extractor = extractors.create("classifier", dataset="fashion_mnist")
    features, logits = extractor(images)  # uint8 [N, H, W, C] -> [N, D], [N, K]

| name       | network                                  | features | input      |
| ---------- | ---------------------------------------- | -------- | ---------- |
| classifier | the project's domain classifier of the   | 128      | the        |
|            | dataset (trained on first use)           |          | dataset's  |
| inception  | FID's InceptionV3 (2015-12-05 TF graph,  | 2048     | any size,  |
|            | pytorch-fid port), --inception_weights   |          | to 299x299 |

Every extractor carries what a result must report to be comparable: its name,
a sha256 of its weights and how images were resized.
"""

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from gan_jax.errors import ConfigError
from gan_jax.image_preprocessing import ImageOptions

Embed = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
  """images -> (features float32 [N, feature_dim], logits float32 [N, K]).

  Images are uint8 [N, H, W, C] in [0, 255] or float in [-1, 1].
  """
  name: str  # e.g. "classifier/fashion_mnist", "inception_v3".
  weights_sha256: str
  # dataset_sha256 of the data a project-trained extractor learned from.
  trained_on_sha256: Optional[str]
  resize: str  # How images reach the network's input size.
  feature_dim: int
  num_classes: int
  embed: Embed = dataclasses.field(repr=False)
  info: Dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

  def __call__(self, images) -> Tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    if images.ndim == 3:  # [N, H, W] grayscale.
      images = images[..., None]
    if images.ndim != 4:
      raise ConfigError(f"Images must be [N, H, W, C], got shape "
                        f"{images.shape}.")
    return self.embed(images)


def _classifier(dataset: Optional[str] = None, data_dir: Optional[str] = None,
                classifier_root: Optional[str] = None,
                tfds_data_dir: Optional[str] = None,
                image: ImageOptions = ImageOptions(), **unused
                ) -> FeatureExtractor:
  """The domain classifier of the train split of `dataset` (or the files in
  `data_dir`), keyed by that split's content and trained on first use. It is
  named after the dataset only when the content is recognised as it."""
  del unused
  # Imported here: the classifier pulls in flax, optax and orbax.
  from gan_jax.metrics import classifier as lib  # pylint: disable=g-import-not-at-top
  if not dataset:
    raise ConfigError("The classifier extractor needs --dataset (e.g. "
                      "fashion_mnist): it names the classifier to use.")
  trained, info = lib.load_or_train_classifier(
      dataset, data_dir, root=classifier_root, tfds_data_dir=tfds_data_dir,
      image=image)
  known_as = info.get("known_as")
  trained_on = (known_as.split("/")[0] if known_as
                else f"{dataset}-sha256-{info['train_sha256'][:12]}")
  return FeatureExtractor(
      name=f"classifier/{trained_on}", weights_sha256=info["params_sha256"],
      trained_on_sha256=info["train_sha256"],
      resize=f"none (native {'x'.join(map(str, trained.image_shape[:2]))})",
      feature_dim=lib.FEATURE_DIM, num_classes=trained.model.num_classes,
      embed=lambda images: lib.classifier_features_and_logits(trained, images),
      info=info)


def _inception(inception_weights: Optional[str] = None, **unused
               ) -> FeatureExtractor:
  """FID's InceptionV3, weights from a user-supplied file."""
  del unused
  from gan_jax.metrics import inception as lib  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import inception_weights as weights  # pylint: disable=g-import-not-at-top
  variables, sha256 = weights.load_inception_variables(inception_weights)
  return FeatureExtractor(
      name="inception_v3", weights_sha256=sha256, trained_on_sha256=None,
      resize=lib.RESIZE_METHOD,
      feature_dim=lib.FEATURE_DIM, num_classes=lib.num_classes_of(variables),
      embed=lambda images: lib.inception_features_and_logits(variables,
                                                             images),
      info={"weights_file": inception_weights})


EXTRACTORS: Dict[str, Callable[..., FeatureExtractor]] = {
    "classifier": _classifier,
    "inception": _inception,
}


def create(name: str, *, dataset: Optional[str] = None,
           data_dir: Optional[str] = None,
           classifier_root: Optional[str] = None,
           inception_weights: Optional[str] = None,
           tfds_data_dir: Optional[str] = None,
           image: ImageOptions = ImageOptions()) -> FeatureExtractor:
  """The extractor `name` (a key of EXTRACTORS); unused options are ignored."""
  if name not in EXTRACTORS:
    raise ConfigError(f"--extractor={name!r} is not one of "
                      f"{', '.join(sorted(EXTRACTORS))}.")
  return EXTRACTORS[name](dataset=dataset, data_dir=data_dir,
                          classifier_root=classifier_root,
                          inception_weights=inception_weights,
                          tfds_data_dir=tfds_data_dir, image=image)
