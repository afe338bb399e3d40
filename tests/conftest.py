"""Shared fixtures: small synthetic datasets written by the tests themselves."""

import dataclasses
import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from typing import Any

def with_xla_flags(*flags: str) -> str:
  """This process's XLA_FLAGS with `flags` appended (for subprocesses)."""
  return " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()


# Before jax starts (the subprocesses and xdist workers inherit it): LLVM at
# -O0, and XLA:CPU's older elemental emitters in place of its fusion
# emitters. The tests' programs are tiny and run for milliseconds, but
# compiling them takes seconds: a tiny DCGAN's train step compiles in 4.3 s
# by default, 2.2 s at -O0 and 0.9 s with both flags.
os.environ["XLA_FLAGS"] = with_xla_flags(
    "--xla_backend_optimization_level=0",
    "--xla_cpu_use_fusion_emitters=false")
# Programs that take a quarter second to compile go in the session's
# persistent cache (JAX's default keeps only those over a second, which at
# -O0 is almost none): the many tests and commands that train the same tiny
# models then compile each step once. Cheaper programs, mostly op-by-op
# dispatch, cost more to write than to compile again.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.25")

import jax  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gan_jax  # noqa: F401,E402  (sets XLA flags before jax starts)
from gan_jax import train
from gan_jax.config import RunConfig
from gan_jax.family import Family
from gan_jax.families import gan


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
  """One persistent compilation cache for the whole session, new each run:
  the many tests (and the commands they run) that compile the same tiny
  steps compile them once. It is shared with pytest-xdist's workers and the
  subprocesses through the environment, so the controller sets it before
  they start; nothing is reused from an earlier run."""
  if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    config.gan_jax_xla_cache = tempfile.mkdtemp(prefix="gan_jax_tests_xla_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = config.gan_jax_xla_cache
  jax.config.update("jax_compilation_cache_dir",
                    os.environ["JAX_COMPILATION_CACHE_DIR"])


def pytest_unconfigure(config):
  if getattr(config, "gan_jax_xla_cache", None):
    shutil.rmtree(config.gan_jax_xla_cache, ignore_errors=True)


def run_module(module, *flags, timeout=300, env=None):
  """`python -m module flags...` from the repository root, as a user runs
  it; the CompletedProcess with stdout and stderr as text."""
  return subprocess.run([sys.executable, "-m", module, *flags], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout,
                        env=None if env is None else dict(os.environ, **env))


@pytest.fixture(autouse=True)
def hermetic(monkeypatch, tmp_path):
  """Each test has its own cache (classifiers, reference features; inherited
  by the commands it runs) and its own temporary folder (TFDS leaves an
  empty `tmp*tfds` folder behind for each mock dataset it opens), and TFDS's
  reachability probe answers "reachable" without opening a socket (the
  offline test overrides it)."""
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv("GAN_JAX_CACHE", str(tmp_path / "gan_jax_cache"))
  temporary = tmp_path.parent / f"{tmp_path.name}_tmp"
  temporary.mkdir()
  monkeypatch.setenv("TMPDIR", str(temporary))
  monkeypatch.setattr(tempfile, "tempdir", str(temporary))
  monkeypatch.setattr(data, "_reachable", lambda *args, **kwargs: None)


def write_idx(path, array):
  """Writes `array` (uint8) as an IDX file, gzipped if path ends in .gz."""
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(
      f">{array.ndim}I", *array.shape)
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(header + array.tobytes())


def make_digits(n, seed=0):
  """n 28x28 uint8 images of class-dependent bars, and their labels."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 10, n).astype(np.uint8)
  images = np.zeros((n, 28, 28), np.uint8)
  for i, label in enumerate(labels):
    images[i, 4:24, 2 + 2 * label:4 + 2 * label] = 255
  return images, labels


@pytest.fixture
def make_idx_dir(tmp_path):
  """make_idx_dir(seed=0, invert=False) -> a new folder with train (96
  images) and test (32) splits in IDX format; `invert` flips the pixels, so
  the content differs from the default's."""
  made = []

  def make(seed=0, invert=False):
    folder = tmp_path / f"idx{len(made) or ''}"
    folder.mkdir()
    made.append(folder)
    for prefix, n, ext in (("train", 96, ".gz"), ("t10k", 32, "")):
      images, labels = make_digits(n, seed=len(prefix) + seed)
      if invert:
        images = 255 - images
      write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{ext}"),
                images)
      write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{ext}"),
                labels)
    return str(folder)

  return make


@pytest.fixture
def idx_dir(make_idx_dir):
  """A folder with train (96 images) and test (32) splits in IDX format."""
  return make_idx_dir()


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A family, its model config and a run config: one training command."""
  family: Family
  model: Any
  run: RunConfig

  def replace(self, **changes):
    """Changes fields of the model or the run config, by name."""
    model_fields = {f.name for f in dataclasses.fields(self.model)}
    return dataclasses.replace(
        self,
        model=self.model.replace(**{k: v for k, v in changes.items()
                                    if k in model_fields}),
        run=self.run.replace(**{k: v for k, v in changes.items()
                                if k not in model_fields}))

  def train(self, workdir):
    return train.train_and_evaluate(self.family, self.model, self.run,
                                    str(workdir))


def tiny_run_config(idx_dir, family=gan.FAMILY, preset="tiny", **changes):
  """A few steps of a tiny model (default: the DCGAN of preset "tiny") on
  `idx_dir`: checkpoints at 3 and 6."""
  tiny = family.presets[preset]
  experiment = Experiment(
      family, family.config(**tiny.model),
      RunConfig(data_dir=idx_dir, batch_size=16, num_steps=6, log_every=2,
                sample_every=3, checkpoint_every=3, num_grid_samples=4))
  return experiment.replace(**changes)


def assert_same_state(a, b):
  """Bitwise equal arrays (static parts such as optimizers are not compared)."""
  a_leaves, b_leaves = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(a_leaves) == len(b_leaves)
  for x, y in zip(a_leaves, b_leaves):
    np.testing.assert_array_equal(x, y)
