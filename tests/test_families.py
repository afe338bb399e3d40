"""Every registered family through the same checks; the loop knows none.

A new family passes here by being added to gan_jax.families.FAMILIES with a
"tiny" preset. Each of its presets named tiny* (the conditional GAN, say)
goes through the same checks.
"""

import ast
import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_same_state, tiny_run_config
from gan_jax import families, runs, sampling, state as state_lib
from gan_jax.config import RunConfig
from gan_jax.families import gan
from gan_jax.family import DataSpec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = DataSpec((28, 28, 1), 10, (1,) * 10)
NAMES = sorted(families.FAMILIES)
# (family, preset) for every tiny* preset: the conformance test's subjects.
VARIANTS = [(name, preset) for name in NAMES
            for preset in sorted(families.get(name).presets)
            if preset.startswith("tiny")]


def _tiny(family, preset="tiny"):
  return family.config(**family.presets[preset].model).validate()


def _batch(family, model, seed):
  k = family.batches_per_step(model)
  shape = (8,) + SPEC.image_shape if k == 1 else (k, 8) + SPEC.image_shape
  images = jax.random.uniform(jax.random.key(seed), shape, minval=-1.0,
                              maxval=1.0)
  return {"image": images, "label": jnp.arange(8, dtype=jnp.int32) % 10}


@pytest.mark.parametrize("name,preset", VARIANTS)
def test_init_and_two_jitted_steps(name, preset):
  family = families.get(name)
  model = _tiny(family, preset)
  state = family.init(model, SPEC, jax.random.key(0))
  structure = jax.tree.structure(state)
  shapes = jax.tree.map(lambda x: (jnp.shape(x), jnp.asarray(x).dtype), state)
  chex.clear_trace_counter()  # Each variant's own program traces once.
  step = jax.jit(chex.assert_max_traces(family.train_step, n=1),
                 donate_argnums=0)
  for seed in range(2):
    state, metrics = step(state, _batch(family, model, seed))
    for metric, value in metrics.items():
      assert value.shape == () and value.dtype == jnp.float32, metric
      assert np.isfinite(value), metric
  assert int(state.step) == 2
  # The same pytree before and after, leaf for leaf.
  assert jax.tree.structure(state) == structure
  assert jax.tree.map(lambda x: (x.shape, x.dtype), state) == shapes


@pytest.mark.parametrize("name,preset", VARIANTS)
def test_predictions(name, preset):
  family = families.get(name)
  state = family.init(_tiny(family, preset), SPEC, jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (5,) + SPEC.image_shape,
                              minval=-1.0, maxval=1.0)
  previews = jax.jit(family.get("preview"))(state, jax.random.key(2), images)
  assert previews
  for name_, grid in previews.items():
    assert grid.ndim in (4, 5), name_
    assert grid.shape[-3:] == SPEC.image_shape, name_
    assert float(jnp.min(grid)) >= -1.0 and float(jnp.max(grid)) <= 1.0
    assert sampling.image_grid(sampling.to_uint8(grid)).ndim == 3
  if family.can("generate"):
    assert "samples" in previews
    generated = sampling.sample(family, state, 3, seed=0, batch_size=2)
    assert generated.shape == (3,) + SPEC.image_shape
    assert generated.dtype == np.uint8
  if family.can("latents"):
    z = family.get("latents")(state, jax.random.key(3), 4)
    assert family.get("decode")(state, z).shape == (4,) + SPEC.image_shape
  if family.can("translate"):  # Sources of the family's own task.
    sources = previews["translations"][:, 0, ..., :1]
    assert jax.eval_shape(family.get("translate"), state,
                          sources).shape == images.shape
  # Features for linear probes (shapes only); a CVAE's encoder would need
  # the very labels a probe predicts, so it refuses (tests/test_probe.py).
  if family.can("features") and (name, preset) != ("vae", "tiny_conditional"):
    features = jax.eval_shape(family.get("features"), state, images)
    assert features and all(f.shape[0] == 5 for f in features.values())


@pytest.mark.parametrize("name,preset", VARIANTS)
def test_checkpoint_round_trip_and_bit_identical_resume(name, preset, idx_dir,
                                                        tmp_path):
  config = tiny_run_config(idx_dir, family=families.get(name), preset=preset)
  straight = config.train(tmp_path / "straight")
  config.replace(num_steps=3).train(tmp_path / "resumed")
  resumed = config.train(tmp_path / "resumed")
  assert int(resumed.step) == int(straight.step) == 6
  assert_same_state(resumed, straight)
  run = runs.load(str(tmp_path / "resumed"))
  assert run.family.name == name and run.step == 6
  assert run.model == config.model and run.run == config.run
  assert_same_state(run.state, straight)
  # The preview grids of the tiny run's 4 images, at the last step
  # ("samples" is step_*.png, other previews <name>_step_*.png).
  samples = sorted(os.listdir(tmp_path / "straight" / "samples"))
  assert any(s.endswith("step_0000006.png") for s in samples), samples


def _imported_modules(module):
  code = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
          "print('\\n'.join(sorted(sys.modules)))")
  result = subprocess.run([sys.executable, "-c", code, module], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          check=True)
  return set(result.stdout.split())


def test_the_loop_imports_no_family():
  family_modules = {"gan_jax.families", "gan_jax.steps", "gan_jax.state",
                    "gan_jax.models", "gan_jax.losses", "gan_jax.likelihoods"}
  imported = _imported_modules("gan_jax.train")
  assert not {m for m in imported
              if m in family_modules or m.startswith("gan_jax.families.")}
  # And it reaches into no family's state: the only attributes of a state
  # it reads are the contract's `step` and `rng`.
  with open(os.path.join(REPO, "gan_jax", "train.py")) as f:
    tree = ast.parse(f.read())
  touched = {node.attr for node in ast.walk(tree)
             if isinstance(node, ast.Attribute)
             and isinstance(node.value, ast.Name) and node.value.id == "state"}
  assert touched <= {"step", "rng", "replace"}, touched


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_is_a_valid_documented_configuration(name):
  family = families.get(name)
  for preset_name, preset in family.presets.items():
    assert "--preset" in preset.doc or preset_name == "tiny", preset_name
    RunConfig(**preset.run).validate()
    model = family.config(**preset.model).validate()
    if family is gan.FAMILY:  # The networks, loss and penalties resolve.
      game = state_lib.make_game(model, (32, 32, 3))
      assert game.d_steps == model.d_steps
