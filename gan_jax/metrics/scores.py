"""Classifier (Inception) score of generated samples, in float64 numpy.

Salimans et al. 2016, "Improved Techniques for Training GANs":

    score = exp(E_x KL(p(y|x) || p(y))),   p(y) = E_x p(y|x),

computed on each of `splits` equal parts of the samples (p(y) being the mean
over that part), and reported as mean and std over parts. It is 1 when every
prediction is the same and C when predictions are confident and spread evenly
over C classes.
"""

from typing import Tuple

import numpy as np

_MIN_PROB = 1e-12  # log(0) guard for probabilities that are exactly 0.


def _log_softmax(logits: np.ndarray) -> np.ndarray:
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def classifier_score(probs_or_logits, splits: int = 10,
                     from_logits: bool = False) -> Tuple[float, float]:
  """Inception score of class predictions [N, C]; returns (mean, std).

  Args:
    probs_or_logits: p(y|x) per sample [N, C], or logits if from_logits.
    splits: number of parts (np.array_split, so N need not divide evenly);
      the std (ddof=0, as in the reference code) is over these parts.
    from_logits: take log-softmax of the input instead of clipped logs.
  """
  values = np.asarray(probs_or_logits, np.float64)
  if values.ndim != 2:
    raise ValueError(
        f"probs_or_logits must be [N, C], got shape {values.shape}.")
  if not 1 <= splits <= values.shape[0]:
    raise ValueError(
        f"splits must be between 1 and the number of samples "
        f"({values.shape[0]}), got {splits}.")
  if from_logits:
    log_probs = _log_softmax(values)
    probs = np.exp(log_probs)
  else:
    probs = values
    log_probs = np.log(np.clip(probs, _MIN_PROB, None))
  scores = []
  for part_probs, part_log_probs in zip(np.array_split(probs, splits),
                                        np.array_split(log_probs, splits)):
    log_marginal = np.log(np.clip(part_probs.mean(axis=0), _MIN_PROB, None))
    kl = np.sum(part_probs * (part_log_probs - log_marginal), axis=1)  # [n]
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))
