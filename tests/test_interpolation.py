"""Latent interpolation: the paths by hand, both families, the command line."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from conftest import run_module
from gan_jax import families, interpolation
from gan_jax.errors import ConfigError
from gan_jax.family import DataSpec

# The families that decode latents (pix2pix translates images instead).
LATENT_FAMILIES = sorted(name for name, family in families.FAMILIES.items()
                         if family.can("latents"))


def test_lerp_and_slerp_by_hand():
  start = jnp.array([[1.0, 0.0]])
  end = jnp.array([[0.0, 2.0]])
  t = jnp.array([0.0, 0.5, 1.0])
  np.testing.assert_allclose(interpolation.lerp(start, end, t)[0],
                             [[1, 0], [0.5, 1.0], [0, 2]], atol=1e-6)
  # 90 degrees apart: the midpoint weighs both by sin(45)/sin(90).
  half = np.sqrt(0.5)
  np.testing.assert_allclose(interpolation.slerp(start, end, t)[0],
                             [[1, 0], [half, 2 * half], [0, 2]], atol=1e-6)
  # Equal norms stay equal all along the great circle.
  a, b = jax.random.normal(jax.random.key(0), (2, 1, 64))
  b = b / jnp.linalg.norm(b) * jnp.linalg.norm(a)
  path = interpolation.slerp(a, b, jnp.linspace(0, 1, 9))[0]
  np.testing.assert_allclose(jnp.linalg.norm(path, axis=-1),
                             jnp.linalg.norm(a), rtol=1e-5)
  # Parallel endpoints fall back to the straight line.
  np.testing.assert_allclose(interpolation.slerp(start, 3 * start, t)[0],
                             interpolation.lerp(start, 3 * start, t)[0],
                             atol=1e-6)


@pytest.mark.parametrize("name", LATENT_FAMILIES)
def test_interpolation_grid_of_each_family(name):
  family = families.get(name)
  state = family.init(family.config(**family.presets["tiny"].model),
                      DataSpec((28, 28, 1)), jax.random.key(0))
  start, end = interpolation.random_endpoints(family, state,
                                              jax.random.key(1), 3)
  images = interpolation.interpolate(family, state, start, end, 5)
  assert images.shape == (3, 5, 28, 28, 1)
  decode = family.get("decode")
  np.testing.assert_allclose(images[:, 0], decode(state, start), atol=1e-5)
  np.testing.assert_allclose(images[:, -1], decode(state, end), atol=1e-5)
  with pytest.raises(ConfigError, match="--mode='cubic'"):
    interpolation.interpolate(family, state, start, end, 5, mode="cubic")


@pytest.mark.parametrize("name", LATENT_FAMILIES)
def test_a_conditional_row_keeps_one_class(name):
  family = families.get(name)
  state = family.init(
      family.config(**family.presets["tiny_conditional"].model),
      DataSpec((28, 28, 1), 4), jax.random.key(0))
  start, end = interpolation.random_endpoints(family, state,
                                              jax.random.key(1), 3)
  images = interpolation.interpolate(family, state, start, end, 5,
                                     labels=jnp.array([2, 0, 3]))
  decode = family.get("decode")
  np.testing.assert_allclose(images[:, 0], decode(state, start,
                                                  jnp.array([2, 0, 3])),
                             atol=1e-5)
  np.testing.assert_allclose(images[:, -1], decode(state, end,
                                                   jnp.array([2, 0, 3])),
                             atol=1e-5)
  by_default = interpolation.interpolate(family, state, start, end, 5)
  np.testing.assert_allclose(by_default[:, -1], decode(
      state, end, jnp.array([0, 1, 2])), atol=1e-5)


_run = run_module


def test_vae_from_the_command_line(idx_dir, tmp_path):
  """Train, sample, evaluate (ELBO and NLL) and interpolate a tiny VAE."""
  workdir = str(tmp_path / "vae")
  result = _run("experiments.mnist_vae", f"--workdir={workdir}",
                f"--data_dir={idx_dir}", "--preset=tiny", "--num_steps=4",
                "--log_every=2", "--sample_every=4", "--checkpoint_every=4")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "ELBO" in result.stderr and "KL" in result.stderr
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == [
      "reconstructions_step_0000004.png", "step_0000004.png"]
  # Input | reconstruction pairs: twice as many columns as rows of 2 images.
  pairs = Image.open(os.path.join(workdir, "samples",
                                  "reconstructions_step_0000004.png"))
  assert pairs.size == (4 * 30 + 2, 2 * 30 + 2)

  result = _run("experiments.evaluate", f"--workdir={workdir}",
                "--metrics=elbo,nll", "--nll_samples=8", "--num_real=20")
  assert result.returncode == 0, result.stderr[-3000:]
  records = [json.loads(line) for line in result.stdout.splitlines()]
  assert [r["metric"] for r in records] == ["elbo", "nll"]
  assert records[1]["num_importance_samples"] == 8
  assert records[0]["family"] == "vae" and records[0]["step"] == 4

  output = str(tmp_path / "walk.png")
  result = _run("experiments.interpolate", f"--workdir={workdir}",
                f"--output={output}", "--between=images", "--steps=4",
                "--rows=2")
  assert result.returncode == 0, result.stderr[-3000:]
  # Two real images at the ends of each row, around its 4 steps.
  assert Image.open(output).size == (6 * 30 + 2, 2 * 30 + 2)
  result = _run("experiments.sample", f"--workdir={workdir}",
                "--num_samples=3", f"--output={tmp_path / 's.npz'}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert np.load(tmp_path / "s.npz")["images"].shape == (3, 28, 28, 1)
