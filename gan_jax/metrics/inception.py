"""InceptionV3 of the FID reference implementations, in Flax, and its weights.

The network is the 2015-12-05 TensorFlow Inception graph that TTUR's FID code
and the original Inception-score code use, as ported to PyTorch by pytorch-fid
(`pytorch_fid/inception.py`: torchvision's Inception3 with the FID blocks
FIDInceptionA, FIDInceptionC, FIDInceptionE_1 and FIDInceptionE_2 patched in,
no aux logits, a 1008-way fc). Its 2048-d pool features feed FID, KID and
precision/recall; its 1008 logits feed the Inception score. Submodule names
mirror pytorch-fid's state_dict keys, so `Mixed_6b.branch7x7_2.conv.weight`
is params["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"] (OIHW -> HWIO).

Nothing is downloaded: the weights are pytorch-fid's release asset
pt_inception-2015-12-05-6726825d.pth
(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/
pt_inception-2015-12-05-6726825d.pth), passed as --inception_weights=PATH,
either as is (reading it needs torch) or converted once to .npz with
`python -m experiments.convert_inception --pth=PATH` (needs torch once, then
never): `gan_jax/metrics/inception_weights.py` reads and checks them.

  InceptionV3()(x [B, 299, 299, 3] in [-1, 1]) -> (pool [B, 2048], logits
    [B, 1008]), eval mode (BatchNorm running statistics).
  preprocess(images) -> float32 [B, 299, 299, 3]: pytorch-fid's resize.
  inception_features_and_logits(variables, images) -> numpy (features, logits).
"""

import functools
from typing import Any, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import ConfigError, DataError

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
RESIZE_METHOD = ("bilinear 299x299, half-pixel centres, no antialias "
                 "(pytorch-fid)")
# HIGHEST keeps float32 convs in float32 on GPUs, where the default may use
# TF32 (10-bit mantissa): FID wants features that do not depend on the
# accelerator more than speed. On CPU every precision is float32 anyway.
_PRECISION = jax.lax.Precision.HIGHEST


# --- The network -------------------------------------------------------------


class BasicConv2d(nn.Module):
  """Conv (no bias) + BatchNorm(eps=1e-3, running stats) + ReLU, NHWC.

  `padding` is (rows, cols) of zeros on each side, as in torch's Conv2d.
  """
  features: int
  kernel_size: Tuple[int, int]
  strides: Tuple[int, int] = (1, 1)
  padding: Tuple[int, int] = (0, 0)
  precision: Any = _PRECISION

  @nn.compact
  def __call__(self, x):
    pad_h, pad_w = self.padding
    x = nn.Conv(self.features, self.kernel_size, self.strides,
                padding=((pad_h, pad_h), (pad_w, pad_w)), use_bias=False,
                dtype=jnp.float32, param_dtype=jnp.float32,
                precision=self.precision, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3,
                     dtype=jnp.float32, param_dtype=jnp.float32,
                     name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3(x):
  # TF's average pool does not count padded zeros; pytorch-fid patches
  # count_include_pad=False into blocks A, C and E_1 for that reason.
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_3x3_stride2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class FIDInceptionA(nn.Module):
  """Mixed_5b..5d at 35x35: 64 + 64 + 96 + pool_features channels."""
  pool_features: int
  precision: Any = _PRECISION

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv2d, precision=self.precision)
    branch1x1 = conv(64, (1, 1), name="branch1x1")(x)
    branch5x5 = conv(48, (1, 1), name="branch5x5_1")(x)
    branch5x5 = conv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(branch5x5)
    branch3x3dbl = conv(64, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = conv(96, (3, 3), padding=(1, 1),
                        name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = conv(96, (3, 3), padding=(1, 1),
                        name="branch3x3dbl_3")(branch3x3dbl)
    branch_pool = conv(self.pool_features, (1, 1),
                       name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool],
                           axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a, 35x35 -> 17x17: 384 + 96 + in_channels (max pool) channels."""
  precision: Any = _PRECISION

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv2d, precision=self.precision)
    branch3x3 = conv(384, (3, 3), strides=(2, 2), name="branch3x3")(x)
    branch3x3dbl = conv(64, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = conv(96, (3, 3), padding=(1, 1),
                        name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = conv(96, (3, 3), strides=(2, 2),
                        name="branch3x3dbl_3")(branch3x3dbl)
    return jnp.concatenate(
        [branch3x3, branch3x3dbl, _max_pool_3x3_stride2(x)], axis=-1)


class FIDInceptionC(nn.Module):
  """Mixed_6b..6e at 17x17, factorised 7x7 convs: 4 x 192 channels."""
  channels_7x7: int
  precision: Any = _PRECISION

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv2d, precision=self.precision)
    c7 = self.channels_7x7
    branch1x1 = conv(192, (1, 1), name="branch1x1")(x)
    branch7x7 = conv(c7, (1, 1), name="branch7x7_1")(x)
    branch7x7 = conv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(branch7x7)
    branch7x7 = conv(192, (7, 1), padding=(3, 0),
                     name="branch7x7_3")(branch7x7)
    dbl = conv(c7, (1, 1), name="branch7x7dbl_1")(x)
    dbl = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(dbl)
    dbl = conv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(dbl)
    dbl = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(dbl)
    dbl = conv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(dbl)
    branch_pool = conv(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch7x7, dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a, 17x17 -> 8x8: 320 + 192 + in_channels (max pool) channels."""
  precision: Any = _PRECISION

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv2d, precision=self.precision)
    branch3x3 = conv(192, (1, 1), name="branch3x3_1")(x)
    branch3x3 = conv(320, (3, 3), strides=(2, 2),
                     name="branch3x3_2")(branch3x3)
    branch7x7x3 = conv(192, (1, 1), name="branch7x7x3_1")(x)
    branch7x7x3 = conv(192, (1, 7), padding=(0, 3),
                       name="branch7x7x3_2")(branch7x7x3)
    branch7x7x3 = conv(192, (7, 1), padding=(3, 0),
                       name="branch7x7x3_3")(branch7x7x3)
    branch7x7x3 = conv(192, (3, 3), strides=(2, 2),
                       name="branch7x7x3_4")(branch7x7x3)
    return jnp.concatenate(
        [branch3x3, branch7x7x3, _max_pool_3x3_stride2(x)], axis=-1)


class FIDInceptionE(nn.Module):
  """Mixed_7b (E_1, avg pool) and Mixed_7c (E_2, max pool) at 8x8: 2048 ch.

  pytorch-fid's E_2 max-pools its pool branch (3x3, stride 1, pad 1) because
  the TF graph does, likely a bug there, kept for comparable FIDs.
  """
  pool: str = "avg"  # "avg" for FIDInceptionE_1, "max" for FIDInceptionE_2.
  precision: Any = _PRECISION

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv2d, precision=self.precision)
    branch1x1 = conv(320, (1, 1), name="branch1x1")(x)
    branch3x3 = conv(384, (1, 1), name="branch3x3_1")(x)
    branch3x3 = jnp.concatenate([
        conv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(branch3x3),
        conv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(branch3x3),
    ], axis=-1)
    dbl = conv(448, (1, 1), name="branch3x3dbl_1")(x)
    dbl = conv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(dbl)
    dbl = jnp.concatenate([
        conv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(dbl),
        conv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(dbl),
    ], axis=-1)
    if self.pool == "avg":
      pooled = _avg_pool_3x3(x)
    elif self.pool == "max":
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1),
                           padding=((1, 1), (1, 1)))
    else:
      raise ValueError(f"pool={self.pool!r}; use 'avg' or 'max'.")
    branch_pool = conv(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([branch1x1, branch3x3, dbl, branch_pool], axis=-1)


class InceptionV3(nn.Module):
  """pytorch-fid's FID InceptionV3, eval mode, NHWC.

  x float [B, 299, 299, 3] in [-1, 1] (see `preprocess`) -> (pool features
  float32 [B, 2048], logits float32 [B, 1008]). Variables: {"params",
  "batch_stats"}; BatchNorm always uses the running statistics. With
  num_classes=0 there is no fc and the logits are [B, 0] (weights that hold
  the feature layers only, as StyleGAN3's TorchScript detector).
  """
  precision: Any = _PRECISION
  num_classes: int = NUM_CLASSES

  @nn.compact
  def __call__(self, x):
    if x.ndim != 4 or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
      raise DataError(
          f"InceptionV3 takes images [B, {INPUT_SIZE}, {INPUT_SIZE}, 3], got "
          f"{tuple(x.shape)}; pass them through inception.preprocess first.")
    x = jnp.asarray(x, jnp.float32)
    conv = functools.partial(BasicConv2d, precision=self.precision)
    x = conv(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3")(x)  # 149
    x = conv(32, (3, 3), name="Conv2d_2a_3x3")(x)  # 147
    x = conv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)  # 147
    x = _max_pool_3x3_stride2(x)  # 73
    x = conv(80, (1, 1), name="Conv2d_3b_1x1")(x)  # 73
    x = conv(192, (3, 3), name="Conv2d_4a_3x3")(x)  # 71
    x = _max_pool_3x3_stride2(x)  # 35
    block_a = functools.partial(FIDInceptionA, precision=self.precision)
    x = block_a(32, name="Mixed_5b")(x)  # 256 channels
    x = block_a(64, name="Mixed_5c")(x)  # 288
    x = block_a(64, name="Mixed_5d")(x)  # 288
    x = InceptionB(self.precision, name="Mixed_6a")(x)  # 17x17x768
    block_c = functools.partial(FIDInceptionC, precision=self.precision)
    x = block_c(128, name="Mixed_6b")(x)
    x = block_c(160, name="Mixed_6c")(x)
    x = block_c(160, name="Mixed_6d")(x)
    x = block_c(192, name="Mixed_6e")(x)
    x = InceptionD(self.precision, name="Mixed_7a")(x)  # 8x8x1280
    x = FIDInceptionE("avg", self.precision, name="Mixed_7b")(x)  # 8x8x2048
    x = FIDInceptionE("max", self.precision, name="Mixed_7c")(x)
    features = jnp.mean(x, axis=(1, 2))
    if not self.num_classes:
      return features, jnp.zeros((x.shape[0], 0), jnp.float32)
    # Dropout sits before the fc in torchvision; eval mode makes it identity.
    logits = nn.Dense(self.num_classes, dtype=jnp.float32,
                      param_dtype=jnp.float32, precision=self.precision,
                      name="fc")(features)
    return features, logits


# --- Preprocessing -----------------------------------------------------------


def resize_bilinear(images, height: int, width: int):
  """float [B, H, W, C] -> float32 [B, height, width, C], pytorch-fid's resize.

  Equals torch's F.interpolate(mode="bilinear", align_corners=False): output
  pixel i samples the input at (i + 0.5) * H / height - 0.5 (half-pixel
  centres) from its 2 nearest pixels, clamped at the edges, with no antialias
  filter when shrinking. Same-size axes are returned unchanged.
  """
  images = jnp.asarray(images, jnp.float32)
  batch, _, _, channels = images.shape
  return jax.image.resize(images, (batch, height, width, channels),
                          method="bilinear", antialias=False)


def preprocess(images):
  """images [B, H, W, C] or [B, H, W] -> float32 [B, 299, 299, 3] in [-1, 1].

  uint8 images are taken as [0, 255], float ones as [-1, 1] (not clipped).
  C=1 is repeated to RGB. Any H, W is resized as pytorch-fid does
  (`RESIZE_METHOD`). Jittable: every check is on static shapes and dtypes.
  """
  images = jnp.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise DataError(
        f"InceptionV3 takes images [B, H, W, C] with C = 1 or 3, got shape "
        f"{tuple(images.shape)}; drop alpha channels first.")
  if images.dtype == jnp.uint8:
    # pytorch-fid: ToTensor's x / 255, resize in [0, 1], then 2x - 1.
    x = resize_bilinear(images.astype(jnp.float32) / 255.0, INPUT_SIZE,
                        INPUT_SIZE)
    x = 2.0 * x - 1.0
  elif jnp.issubdtype(images.dtype, jnp.floating):
    x = resize_bilinear(images, INPUT_SIZE, INPUT_SIZE)
  else:
    raise DataError(
        f"InceptionV3 takes uint8 images in [0, 255] or float images in "
        f"[-1, 1], got dtype {images.dtype}; convert them to one of those.")
  if x.shape[-1] == 1:
    # After the resize: same result (per-channel op), a third of the work.
    x = jnp.repeat(x, 3, axis=-1)
  return x


# --- Features ----------------------------------------------------------------


def num_classes_of(variables) -> int:
  """The logits the weights give: 1008, or 0 without an fc layer."""
  fc = variables["params"].get("fc")
  return 0 if fc is None else int(fc["bias"].shape[0])


@jax.jit
def _features_and_logits(variables, images):
  return InceptionV3(num_classes=num_classes_of(variables)).apply(
      variables, preprocess(images))


def inception_features_and_logits(variables, images, batch_size: int = 200
                                  ) -> Tuple[np.ndarray, np.ndarray]:
  """images [N, H, W, C] -> (features float32 [N, 2048], logits [N, K]),
  K = 1008, or 0 for weights without the fc layer.

  Images as `preprocess` takes them (uint8 [0, 255] or float [-1, 1], C = 1
  or 3, any size), preprocessed inside the jit. The last batch is padded to
  `batch_size`, so the network compiles once per image shape and dtype.
  """
  if batch_size < 1:
    raise ConfigError(f"batch_size={batch_size} must be at least 1.")
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4:
    raise DataError(f"InceptionV3 takes images [N, H, W, C], got shape "
                    f"{images.shape}.")
  n = len(images)
  if n == 0:
    return (np.zeros((0, FEATURE_DIM), np.float32),
            np.zeros((0, num_classes_of(variables)), np.float32))
  batch_size = min(batch_size, n)
  # Once, not per batch: the weights are ~95 MB.
  variables = jax.device_put(variables)
  features, logits, pending = [], [], None
  for first in range(0, n, batch_size):
    chunk = images[first:first + batch_size]
    pad = batch_size - len(chunk)
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]),
                                              chunk.dtype)])
    outputs = _features_and_logits(variables, chunk), batch_size - pad
    # Fetch the previous batch only after dispatching this one, so the host
    # copy overlaps the device's work.
    if pending is not None:
      (f, l), keep = pending
      features.append(np.asarray(f, np.float32)[:keep])
      logits.append(np.asarray(l, np.float32)[:keep])
    pending = outputs
  (f, l), keep = pending
  features.append(np.asarray(f, np.float32)[:keep])
  logits.append(np.asarray(l, np.float32)[:keep])
  return np.concatenate(features), np.concatenate(logits)
