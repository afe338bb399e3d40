"""Per-image metrics of translations against their true targets.

    scores = paired_metrics(outputs, truth)   # uint8 [N, H, W, C] each
    # {"l1": {"value": ...}, "psnr": {...}, "ssim": {...}}

Both are scored as saved images are: uint8, scaled to [0, 1]. PSNR and SSIM
are dm-pix's (`dm_pix.psnr`, `dm_pix.ssim`: Gaussian window 11, sigma 1.5,
k1 0.01, k2 0.03, as Wang et al. 2004 and tf.image.ssim), computed per image
and averaged; L1 is the mean absolute difference, in [0, 1] units (pix2pix's
training loss g_l1 is in [-1, 1] units: twice this). SSIM needs images of at
least 11 pixels a side.
"""

from typing import Any, Dict

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

PAIRED_METRICS = ("l1", "psnr", "ssim")


@jax.jit
def _per_image(outputs: jax.Array, truth: jax.Array) -> Dict[str, jax.Array]:
  # The difference in integers: exact, so equal images score exactly 0.
  difference = jnp.abs(outputs.astype(jnp.int32) - truth.astype(jnp.int32))
  l1 = jnp.mean(difference.astype(jnp.float32), axis=(1, 2, 3)) / 255.0
  outputs = outputs.astype(jnp.float32) / 255.0
  truth = truth.astype(jnp.float32) / 255.0
  return {"l1": l1,
          "psnr": dm_pix.psnr(outputs, truth),
          "ssim": dm_pix.ssim(outputs, truth, max_val=1.0)}


def paired_metrics(outputs: np.ndarray, truth: np.ndarray,
                   batch_size: int = 500) -> Dict[str, Dict[str, Any]]:
  """Mean L1, PSNR (dB) and SSIM of outputs against truth, uint8
  [N, H, W, C] each: {name: {"value", "std_error"}}. A perfect output has
  PSNR inf (no error at all), so it is capped at 100 dB per image."""
  if outputs.shape != truth.shape:
    raise ValueError(f"outputs {outputs.shape} and truth {truth.shape} differ")
  pad = (-len(outputs)) % batch_size  # One compiled shape for every batch.
  padded = [np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
            for x in (outputs, truth)]
  parts = [jax.device_get(_per_image(padded[0][i:i + batch_size],
                                     padded[1][i:i + batch_size]))
           for i in range(0, len(padded[0]), batch_size)]
  results = {}
  for name in PAIRED_METRICS:
    values = np.concatenate([p[name] for p in parts])[:len(outputs)]
    if name == "psnr":
      values = np.minimum(values, 100.0)
    results[name] = {"value": float(values.mean()), "std_error": float(
        values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1
                     else 0.0}
  return results
