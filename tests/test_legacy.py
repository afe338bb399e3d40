"""Papers keep working: the 0.1 step API, and a workdir written by 0.1.

tests/fixtures/legacy_v0_1/ was written by release 0.1.0 (commit c6b36eb) with
its make_fixture.py: a 4-step run of the tiny DCGAN (latent 8, generator EMA)
and what 0.1 computed from its checkpoint (expected.npz).
"""

import inspect
import logging
import os
import shutil

import flax.linen as nn
import jax
import numpy as np
import pytest

from conftest import Experiment, make_digits, write_idx
from gan_jax import data, runs, sampling, state as state_lib, steps
from gan_jax.config import RunConfig
from gan_jax.families import gan
from gan_jax.models import dcgan

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                       "legacy_v0_1")


def _signature(fn):
  return [f"{'*' if p.kind is p.KEYWORD_ONLY else ''}{p.name}"
          f"{'' if p.default is p.empty else '=' + repr(p.default)}"
          for p in inspect.signature(fn).parameters.values()]


def test_step_api_signatures_are_pinned():
  # 0.1's arguments, in order; later releases may only add keyword-only
  # arguments with defaults (listed here as they are added).
  assert _signature(steps.d_step) == ["d_state", "g_params", "real_images",
                                      "key", "*labels=None"]
  g_step = _signature(steps.g_step)
  assert g_step[:4] == ["g_state", "d_params", "key", "*batch_size"]
  assert g_step[4:] == ["*d_batch_stats=None", "*real_images=None",
                        "*labels=None"]
  assert _signature(steps.train_step) == ["state", "batch"]
  assert _signature(state_lib.create_state) == ["config", "image_shape",
                                                "rng=None", "*num_classes=0",
                                                "*class_frequencies=()"]
  # 0.1's import paths.
  from gan_jax.config import GANConfig  # pylint: disable=g-import-not-at-top
  from gan_jax.state import GANState, PlayerState, step_key  # pylint: disable=g-import-not-at-top,unused-import
  assert GANConfig is gan.GANConfig


@pytest.fixture
def legacy_workdir(tmp_path):
  """A copy of the 0.1 workdir and a copy of the data it was trained on."""
  idx = tmp_path / "idx"
  idx.mkdir()
  images, labels = make_digits(96, seed=5)
  write_idx(str(idx / "train-images-idx3-ubyte.gz"), images)
  write_idx(str(idx / "train-labels-idx1-ubyte.gz"), labels)
  workdir = tmp_path / "run"
  shutil.copytree(os.path.join(FIXTURE, "checkpoints"),
                  workdir / "checkpoints")
  return str(workdir), str(idx)


def _legacy_experiment(idx, num_steps):
  return Experiment(
      gan.FAMILY, gan.GANConfig(arch="dcgan_tiny", latent_dim=8,
                                g_ema_decay=0.9),
      RunConfig(data_dir=idx, batch_size=8, num_steps=num_steps, log_every=2,
                sample_every=4, checkpoint_every=2, keep_checkpoints=1,
                num_grid_samples=4))


def _expected(prefix):
  with np.load(os.path.join(FIXTURE, "expected.npz")) as saved:
    return {k[len(prefix):]: saved[k] for k in saved.files
            if k.startswith(prefix)}


def _assert_tree_matches(tree, expected, prefix=""):
  flat = {jax.tree_util.keystr(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}
  assert set(flat) == set(expected), set(flat) ^ set(expected)
  for key, value in expected.items():
    np.testing.assert_allclose(flat[key], value, rtol=1e-5, atol=1e-6,
                               err_msg=prefix + key)


def test_a_0_1_workdir_samples_as_0_1_did(legacy_workdir):
  workdir, _ = legacy_workdir
  run = runs.load(workdir)
  assert run.family is gan.FAMILY and run.step == 4
  assert run.model == gan.GANConfig(arch="dcgan_tiny", latent_dim=8,
                                    g_ema_decay=0.9)
  # 0.1 sampled its EMA weights with the live generator's BatchNorm
  # statistics; today's sampling measures the EMA weights' own
  # (test_steps.py), so 0.1's samples are recomputed its way here.
  g = run.state.g
  z = gan.latents(run.state, jax.random.fold_in(jax.random.key(0), 0), 256)
  samples = sampling.to_uint8(
      g.apply_fn(g.variables(g.ema_params), z[:8], train=False))
  expected = _expected("samples")[""]
  # Same code path, same machine type: at most one level of rounding apart.
  assert np.abs(samples.astype(int) - expected).max() <= 1


def test_the_0_1_steps_compute_what_0_1_computed(legacy_workdir):
  state = runs.load(legacy_workdir[0]).state
  batch = data.to_model_range(make_digits(8, seed=123)[0][..., None])
  key = jax.random.key(42)
  d_state, d_metrics = jax.jit(steps.d_step)(state.d, state.g.params, batch,
                                             key)
  g_state, g_metrics = jax.jit(steps.g_step, static_argnames="batch_size")(
      state.g, state.d.params, key, batch_size=8)
  new_state, metrics = jax.jit(steps.train_step)(state, {"image": batch})
  for prefix, tree in (("d_step.state", d_state), ("d_step.metrics", d_metrics),
                       ("g_step.state", g_state), ("g_step.metrics", g_metrics),
                       ("train_step.state", new_state),
                       ("train_step.metrics", metrics)):
    _assert_tree_matches(tree, _expected(prefix), prefix)


def test_a_0_1_workdir_resumes_on_the_trajectory_of_today(legacy_workdir,
                                                          tmp_path, caplog):
  workdir, idx = legacy_workdir
  with caplog.at_level(logging.INFO):
    resumed = _legacy_experiment(idx, 6).train(workdir)
  assert "Resuming from the checkpoint at step 4." in caplog.text
  assert "predates data hashes" in caplog.text  # Its data moved.
  # Today's code from scratch reaches the same state: steps 1-4 by 0.1 and
  # 5-6 by today equal 1-6 by today, from 0.1's initialisation (flax's
  # defaults; today's DCGAN draws the paper's N(0, 0.02)).
  old_init = dict(image_shape=(28, 28, 1), features=8,
                  kernel_init=nn.initializers.lecun_normal(),
                  scale_init=nn.initializers.ones)
  straight = _legacy_experiment(idx, 6).replace(
      generator=dcgan.DCGANGenerator(**old_init),
      discriminator=dcgan.DCGANDiscriminator(**old_init),
  ).train(tmp_path / "straight")
  # Steps 1-4 of the fixture ran on another CPU, whose XLA:CPU float paths
  # differ from this one's in the last bits (seen: 3.6e-7 absolute, 6e-6
  # relative after 6 steps); a wrong resume differs by far more.
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert runs.load(workdir).step == 6
