"""gan_jax: generative models in JAX/Flax, every family on one loop.

The families (gan_jax.families: the GAN, the VAE) are modules of pure
functions over their own state pytrees; their steps are the public API
(`gan_jax.steps.d_step`, `g_step`, `train_step` for the GAN, as in 0.1;
`gan_jax.families.vae.train_step`). `gan_jax.train.train_and_evaluate` is the
one loop.
"""

import os


def _tune_xla_cpu() -> None:
  """Turns off XLA:CPU's experimental YNNPACK fusions (jaxlib 0.10).

  Measured on a 2-core Xeon: +25..50% images/sec for the DCGAN train step
  (benchmarks/train_speed.py). XLA_FLAGS is read when the backend starts, so
  this only takes effect if gan_jax is imported before jax runs anything.
  Set GAN_JAX_KEEP_XLA_FLAGS=1 to leave XLA_FLAGS alone; an XLA_FLAGS that
  already names the flag is respected.
  """
  if os.environ.get("GAN_JAX_KEEP_XLA_FLAGS"):
    return
  try:
    from importlib import metadata  # pylint: disable=g-import-not-at-top
    jaxlib_version = tuple(
        int(p) for p in metadata.version("jaxlib").split(".")[:2])
  except (metadata.PackageNotFoundError, ValueError):
    return
  # An unknown flag aborts XLA, so only set it where it is known to exist.
  if jaxlib_version != (0, 10):
    return
  flag = "--xla_cpu_experimental_ynn_fusion_type"
  current = os.environ.get("XLA_FLAGS", "")
  if flag not in current:
    os.environ["XLA_FLAGS"] = f"{current} {flag}=".strip()


_tune_xla_cpu()
# TensorFlow (imported by TFDS only) prints its oneDNN notice at import
# whatever TF_CPP_MIN_LOG_LEVEL says, unless oneDNN's TF kernels are off;
# TensorFlow only decodes dataset records here, so they do not matter. Its
# C++ warnings (e.g. no Google credentials when TFDS looks at GCS) are not
# the user's concern either; errors still print. Both can be overridden from
# the environment.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
