"""Flags generated from the config dataclasses; presets; --help by family."""

import dataclasses
import os
import subprocess
import sys

import pytest
from absl import flags

from gan_jax import cli, families
from gan_jax.config import RunConfig, field_types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("config_class", [RunConfig] + [
    f.config for f in families.FAMILIES.values()])
def test_every_flagged_field_becomes_its_flag(config_class):
  values = flags.FlagValues()
  cli.define_config_flags(config_class, flag_values=values)
  types = field_types(config_class)
  assert types
  for field in dataclasses.fields(config_class):
    if field.name not in types:
      assert not field.metadata.get("flag", True), field.name
      continue
    flag = values[field.name]
    assert flag.default == field.default, field.name
    assert flag.help.endswith(field.metadata["help"]), field.name
    if field.metadata["choices"]:
      assert list(flag.parser.enum_values) == list(field.metadata["choices"])
  values.mark_as_parsed()
  # The flags' values build the config's defaults back.
  assert config_class(**{n: values[n].value for n in types}) == config_class()


def _help(module):
  result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout


def test_each_experiment_shows_its_own_family_flags_by_topic():
  gan_help, vae_help = _help("experiments.mnist_gan"), _help(
      "experiments.mnist_vae")
  for text in (gan_help, vae_help):
    topics = [line for line in text.splitlines() if line.endswith(":")
              and not line.startswith(" ")]
    assert topics[:3] == ["data:", "model:", "optimisation:"], topics
    assert "--dataset (default: mnist)" in text and "--eval_every" in text
  assert "--loss (default: non_saturating)" in gan_help
  assert "--likelihood" not in gan_help
  assert "--likelihood (default: bernoulli)" in vae_help
  assert "--loss" not in vae_help and "--d_steps" not in vae_help
  # The family's own run defaults: the VAE's batch is the flax example's.
  assert "--batch_size (default: 128)" in vae_help
  assert "--batch_size (default: 64)" in gan_help


def test_flags_given_override_the_preset(idx_dir, tmp_path):
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "experiments.mnist_vae", f"--workdir={workdir}",
       f"--data_dir={idx_dir}", "--preset=tiny", "--latent_dim=3",
       "--num_steps=2", "--log_every=1"], cwd=REPO, capture_output=True,
      text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  from gan_jax import runs  # pylint: disable=g-import-not-at-top
  run = runs.load(str(workdir))
  assert run.model.arch == "mlp_tiny"  # From the preset,
  assert run.model.latent_dim == 3  # but the flag wins,
  assert run.run.batch_size == 8  # and the preset sets run settings too.
  bad = subprocess.run(
      [sys.executable, "-m", "experiments.mnist_vae", "--preset=huge"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert bad.returncode != 0 and "--preset" in bad.stderr
  assert "Traceback" not in bad.stderr
