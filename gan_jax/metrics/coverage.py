"""Class coverage: how many classes a generator produces at all."""

import numpy as np


def class_coverage(predicted_labels, num_classes: int) -> float:
  """Share of num_classes classes predicted for at least one sample.

  A mode-collapse measure: a generator making only one MNIST digit scores
  1/10 however good that digit looks.

  Args:
    predicted_labels: integer labels [N], or probabilities / logits [N, C]
      (reduced with argmax).
    num_classes: the number of classes C a perfect generator covers.
  """
  labels = np.asarray(predicted_labels)
  if labels.ndim == 2:
    labels = labels.argmax(axis=-1)
  elif labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(
        f"predicted_labels must be integer labels [N] or scores [N, C], got "
        f"{labels.dtype} of shape {labels.shape}.")
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(
        f"Labels must lie in [0, {num_classes}), got range "
        f"[{labels.min()}, {labels.max()}].")
  return float(np.unique(labels).size / num_classes)
