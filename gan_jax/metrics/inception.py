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
never). `load_inception_variables` returns the file's sha256 for the record.

  InceptionV3()(x [B, 299, 299, 3] in [-1, 1]) -> (pool [B, 2048], logits
    [B, 1008]), eval mode (BatchNorm running statistics).
  preprocess(images) -> float32 [B, 299, 299, 3]: pytorch-fid's resize.
  load_inception_variables(path) -> ({"params", "batch_stats"}, sha256).
  inception_features_and_logits(variables, images) -> numpy (features, logits).
  convert_pth_to_npz(pth_path, npz_path), state_dict_shapes().
"""

import functools
import hashlib
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import flax
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
WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
_FLAG = "--inception_weights"
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
  "batch_stats"}; BatchNorm always uses the running statistics.
  """
  precision: Any = _PRECISION

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
    # Dropout sits before the fc in torchvision; eval mode makes it identity.
    logits = nn.Dense(NUM_CLASSES, dtype=jnp.float32, param_dtype=jnp.float32,
                      precision=self.precision, name="fc")(features)
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


# --- Weights -----------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _layout() -> Tuple[Tuple[str, Tuple[str, ...], Tuple[int, ...]], ...]:
  """(pytorch-fid key, flax path (collection first), torch shape) of each
  variable, sorted by key, from jax.eval_shape of `InceptionV3().init`."""
  abstract = jax.eval_shape(lambda: InceptionV3().init(
      jax.random.key(0),
      jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)))
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(abstract))
  torch_leaf = {("params", "kernel"): "weight", ("params", "scale"): "weight",
                ("params", "bias"): "bias",
                ("batch_stats", "mean"): "running_mean",
                ("batch_stats", "var"): "running_var"}
  rows = []
  for path, leaf in flat.items():
    collection, modules, name = path[0], path[1:-1], path[-1]
    shape = tuple(leaf.shape)
    if name == "kernel" and len(shape) == 4:  # HWIO -> OIHW
      shape = (shape[3], shape[2], shape[0], shape[1])
    elif name == "kernel":  # [in, out] -> [out, in]
      shape = shape[::-1]
    key = ".".join(modules + (torch_leaf[collection, name],))
    rows.append((key, path, shape))
  return tuple(sorted(rows))


def state_dict_shapes() -> Dict[str, Tuple[int, ...]]:
  """pytorch-fid state_dict key -> torch shape (conv OIHW, fc [out, in])."""
  return {key: shape for key, _, shape in _layout()}


def _to_flax(key: str, array: np.ndarray) -> np.ndarray:
  if key.endswith("conv.weight"):
    return np.ascontiguousarray(array.transpose(2, 3, 1, 0))  # OIHW -> HWIO
  if key == "fc.weight":
    return np.ascontiguousarray(array.T)  # [out, in] -> [in, out]
  return array


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def _hint(flag: str) -> str:
  if flag == _FLAG:
    return (f"pass {flag}=PATH to {WEIGHTS_NAME} (pytorch-fid) or its .npz "
            "conversion")
  return f"pass {flag}=PATH to {WEIGHTS_NAME} (pytorch-fid)"


def _describe(error: Exception) -> str:
  """`Type: message`, on one line and at most ~200 characters."""
  message = " ".join(str(error).split())[:200]
  return f"{type(error).__name__}: {message}"


def _read_npz(path: str, flag: str = _FLAG) -> Dict[str, np.ndarray]:
  try:
    with np.load(path, allow_pickle=False) as npz:
      return {key: npz[key] for key in npz.files}
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(
        f"{flag}={path} cannot be read as .npz ({_describe(e)}); "
        f"{_hint(flag)}.") from e


def _read_pth(path: str, torch_missing: str,
              flag: str = _FLAG) -> Dict[str, np.ndarray]:
  """A torch state_dict file -> {key: numpy array}; torch imported here."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DataError(torch_missing) from e
  try:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
      raise TypeError(f"it holds a {type(state).__name__}, not a state_dict")
    return {key: (value.detach().float().numpy()
                  if value.is_floating_point() else value.detach().numpy())
            for key, value in state.items()}
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(
        f"{flag}={path} cannot be read as a torch state_dict "
        f"({_describe(e)}); {_hint(flag)}.") from e


def _few(keys) -> str:
  keys = sorted(keys)
  more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
  return ", ".join(keys[:3]) + more


def _check_state_dict(state: Mapping[str, np.ndarray], path: str,
                      flag: str = _FLAG) -> Dict[str, np.ndarray]:
  """Checks keys, shapes and values against `state_dict_shapes()`.

  Returns {key: float32 array} in torch layout, num_batches_tracked dropped.
  """
  expected = state_dict_shapes()
  state = {k: v for k, v in state.items()
           if not k.endswith("num_batches_tracked")}
  missing = expected.keys() - state.keys()
  if missing:
    raise DataError(
        f"{flag}={path} lacks {len(missing)} of the {len(expected)} "
        f"InceptionV3 weights ({_few(missing)}); {_hint(flag)}.")
  extra = state.keys() - expected.keys()
  if extra:
    aux = (" (AuxLogits: torchvision's ImageNet weights, not FID's?)"
           if any(k.startswith("AuxLogits.") for k in extra) else "")
    raise DataError(
        f"{flag}={path} has {len(extra)} unexpected keys ({_few(extra)})"
        f"{aux}; {_hint(flag)}.")
  checked = {}
  for key, shape in expected.items():
    array = np.asarray(state[key])
    if array.shape != shape:
      raise DataError(
          f"{flag}={path}: {key} has shape {array.shape}, expected {shape}; "
          f"{_hint(flag)}.")
    if not np.issubdtype(array.dtype, np.floating):
      raise DataError(
          f"{flag}={path}: {key} has dtype {array.dtype}, expected floats; "
          f"{_hint(flag)}.")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
      raise DataError(
          f"{flag}={path}: {key} has non-finite values (corrupt file?); "
          f"{_hint(flag)}.")
    checked[key] = array
  return checked


def _existing_file(path: Optional[str], flag: str = _FLAG) -> str:
  if path is None or not os.fspath(path):
    raise ConfigError(
        f"InceptionV3 features need weights: {_hint(flag)}; nothing is "
        "downloaded.")
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise DataError(f"{flag}={path}: no such file; {_hint(flag)}.")
  return path


def load_inception_variables(path: Optional[str]
                             ) -> Tuple[Dict[str, Any], str]:
  """A weights file -> ({"params", "batch_stats"} numpy float32, sha256 hex).

  `path` is pytorch-fid's .pth (needs torch) or a .npz with the same keys
  (conv weights OIHW, fc.weight [1008, 2048]); num_batches_tracked entries
  are ignored. Raises ConfigError / DataError naming --inception_weights.
  """
  path = _existing_file(path)
  ext = os.path.splitext(path)[1].lower()
  if ext == ".npz":
    state = _read_npz(path)
  elif ext in (".pth", ".pt"):
    state = _read_pth(path, (
        f"{_FLAG}={path} is a torch file and torch is not installed: convert "
        "it with `python -m experiments.convert_inception --pth=PATH` on a "
        f"machine with torch, then pass {_FLAG}= the .npz."))
  else:
    raise DataError(f"{_FLAG}={path}: expected a .pth or .npz file; "
                    f"{_hint(_FLAG)}.")
  state = _check_state_dict(state, path)
  flat = {flax_path: _to_flax(key, state[key])
          for key, flax_path, _ in _layout()}
  return flax.traverse_util.unflatten_dict(flat), _sha256(path)


def convert_pth_to_npz(pth_path: str, npz_path: str) -> Dict[str, Any]:
  """pytorch-fid's .pth -> .npz with the same keys (needs torch).

  The weights are checked as `load_inception_variables` checks them, and the
  .npz is written under a temporary name then renamed. Returns {"pth_sha256",
  "npz_sha256", "npz_path", "num_arrays"}.
  """
  flag = "--pth"
  pth_path = _existing_file(pth_path, flag)
  npz_path = os.fspath(npz_path or "")
  if not npz_path.endswith(".npz"):
    raise ConfigError(f"--output={npz_path!r} must be a path ending in .npz.")
  state = _read_pth(pth_path, (
      "Converting a .pth needs torch, which is not installed: `pip install "
      "torch` (the CPU build is enough) and rerun."), flag)
  state = _check_state_dict(state, pth_path, flag)
  os.makedirs(os.path.dirname(os.path.abspath(npz_path)), exist_ok=True)
  tmp = f"{npz_path[:-len('.npz')]}.tmp-{os.getpid()}.npz"
  try:
    np.savez(tmp, **state)
    os.replace(tmp, npz_path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return {"pth_sha256": _sha256(pth_path), "npz_sha256": _sha256(npz_path),
          "npz_path": os.path.abspath(npz_path), "num_arrays": len(state)}


# --- Features ----------------------------------------------------------------


@jax.jit
def _features_and_logits(variables, images):
  return InceptionV3().apply(variables, preprocess(images))


def inception_features_and_logits(variables, images, batch_size: int = 200
                                  ) -> Tuple[np.ndarray, np.ndarray]:
  """images [N, H, W, C] -> (features float32 [N, 2048], logits [N, 1008]).

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
            np.zeros((0, NUM_CLASSES), np.float32))
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
