"""Steps and training loop on a batch sharded over 8 (fake CPU) devices.

XLA_FLAGS must be set before jax starts, so the check runs in a subprocess.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from conftest import tiny_run_config, with_xla_flags
from gan_jax import runs


def _fake_devices(count):
  """XLA_FLAGS for `count` fake CPU devices, keeping the session's flags."""
  return with_xla_flags(f"--xla_force_host_platform_device_count={count}")


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import gan_jax
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from gan_jax import steps
    from gan_jax.config import GANConfig
    from gan_jax.state import create_state

    assert jax.device_count() == 8, jax.devices()
    mesh = jax.make_mesh((8,), ("data",))
    state = create_state(GANConfig(arch="dcgan_tiny"), (28, 28, 1))
    images = jax.random.uniform(jax.random.key(0), (16, 28, 28, 1),
                                minval=-1.0, maxval=1.0)
    single, single_metrics = jax.jit(steps.train_step)(
        state, {"image": images})

    replicated = NamedSharding(mesh, P())
    sharded_images = jax.device_put(images, NamedSharding(mesh, P("data")))
    assert len(sharded_images.sharding.device_set) == 8
    step = jax.jit(steps.train_step, donate_argnums=0)
    sharded, metrics = step(jax.device_put(state, replicated),
                            {"image": sharded_images})
    for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(single)):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    for name in metrics:
      np.testing.assert_allclose(metrics[name], single_metrics[name],
                                 rtol=2e-4, atol=2e-5)
    # Further sharded steps reuse the first compilation.
    import chex
    traced = jax.jit(chex.assert_max_traces(steps.train_step, n=1))
    state = jax.device_put(create_state(GANConfig(arch="dcgan_tiny"),
                                        (28, 28, 1)), replicated)
    for _ in range(3):
      state, _ = traced(state, {"image": sharded_images})
    assert all(leaf.sharding.is_fully_replicated
               for leaf in jax.tree.leaves(state))
    print("OK")
""")


def test_train_step_on_a_batch_sharded_over_8_devices():
  env = dict(os.environ,
             XLA_FLAGS=_fake_devices(8),
             JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("OK")


LOOP_SCRIPT = textwrap.dedent("""
    import json, sys
    import gan_jax
    import jax, numpy as np
    sys.path.insert(0, "tests")
    from conftest import tiny_run_config
    from gan_jax.errors import ConfigError

    idx_dir, workdir, changes, out = sys.argv[1:]
    assert jax.device_count() == 8
    config = tiny_run_config(idx_dir, num_steps=4, sample_every=4,
                             checkpoint_every=4, **json.loads(changes))
    try:
      config.replace(batch_size=12).train(workdir + "_x")
      raise SystemExit("batch 12 on 8 devices was accepted")
    except ConfigError as e:
      assert "--batch_size=12 must divide by the 8 devices" in str(e), e
    state = config.train(workdir)
    leaves = jax.tree.leaves(state)
    assert all(len(leaf.sharding.device_set) == 8 for leaf in leaves)
    np.savez(out, *[np.asarray(leaf) for leaf in leaves])
    print("OK")
""")


# The DCGAN case has DiffAugment (its shifts are einsums over the sharded
# batch) and R1 (a penalty's double backward through convolution.conv2d);
# the MLP cases are class-conditional (labels sharded with the images) and
# conditioned on clusters (G draws its own for the grids).
@pytest.mark.parametrize("changes", [
    dict(arch="dcgan_tiny", diffaugment="color,translation,cutout",
         penalty="r1"),
    dict(arch="mlp_tiny", conditional=True),
    dict(arch="mlp_tiny", clusters=3)])
def test_training_on_8_devices_matches_1_device(idx_dir, tmp_path, changes):
  out = str(tmp_path / "eight.npz")
  env = dict(os.environ,
             XLA_FLAGS=_fake_devices(8),
             JAX_PLATFORMS="cpu")
  result = subprocess.run(
      [sys.executable, "-c", LOOP_SCRIPT, idx_dir, str(tmp_path / "eight"),
       json.dumps(changes), out], cwd=REPO, env=env, capture_output=True,
      text=True,
      timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("OK")

  single = tiny_run_config(idx_dir, num_steps=4, sample_every=4,
                           checkpoint_every=4, **changes).train(tmp_path / "one")
  eight = np.load(out)
  leaves = jax.tree.leaves(single)
  assert len(leaves) == len(eight.files)
  # The penalty's double backward sums the sharded batch in another order,
  # and its second derivatives amplify that rounding.
  atol = 1e-4 if "penalty" in changes else 2e-5
  for i, leaf in enumerate(leaves):
    np.testing.assert_allclose(eight[f"arr_{i}"], leaf, rtol=2e-4, atol=atol)


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one_process(idx_dir, tmp_path):
  """2 processes x 4 fake CPU devices, jax.distributed on localhost."""
  workdir = str(tmp_path / "two")
  flags = [f"--workdir={workdir}", f"--data_dir={idx_dir}",
           "--preset=tiny", "--batch_size=16", "--num_steps=4",
           "--log_every=2", "--sample_every=4", "--checkpoint_every=4",
           "--num_grid_samples=4", "--multihost",
           f"--coordinator_address=localhost:{_free_port()}",
           "--num_processes=2"]
  env = dict(os.environ, XLA_FLAGS=_fake_devices(4),
             JAX_PLATFORMS="cpu")
  processes = [subprocess.Popen(
      [sys.executable, "-m", "experiments.mnist_gan", *flags,
       f"--process_id={i}"], cwd=REPO, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True) for i in range(2)]
  for process in processes:
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
  # Only process 0 writes sample grids.
  assert os.listdir(os.path.join(workdir, "samples")) == ["step_0000004.png"]

  run = runs.load(workdir)
  single = tiny_run_config(idx_dir, num_steps=4, sample_every=4,
                           checkpoint_every=4).train(tmp_path / "one")
  assert run.step == 4
  for a, b in zip(jax.tree.leaves(run.state), jax.tree.leaves(single)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_sigterm_on_one_host_stops_all_at_the_same_step(idx_dir, tmp_path):
  """JAX's preemption sync point: host 1 gets SIGTERM, both hosts save the
  same step and exit 143; a rerun resumes from it.

  One fake device per process: with several, 2-core machines can starve the
  CPU collectives' threads over long runs (the 4-device test above is short).
  """
  workdir = str(tmp_path / "run")
  flags = [f"--workdir={workdir}", f"--data_dir={idx_dir}",
           "--preset=tiny", "--batch_size=16", "--log_every=1000",
           "--sample_every=100000", "--checkpoint_every=100000", "--multihost",
           "--num_processes=2"]
  env = dict(os.environ, XLA_FLAGS=_fake_devices(1),
             JAX_PLATFORMS="cpu")

  def launch(num_steps):
    port = _free_port()
    return [subprocess.Popen(
        [sys.executable, "-m", "experiments.mnist_gan", *flags,
         f"--num_steps={num_steps}", f"--coordinator_address=localhost:{port}",
         f"--process_id={i}"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True) for i in range(2)]

  processes = launch(1_000_000)
  deadline = time.time() + 240
  while not os.path.isdir(os.path.join(workdir, "checkpoints")):
    assert time.time() < deadline
    assert all(p.poll() is None for p in processes)
    time.sleep(0.5)
  time.sleep(5)  # Let them train some steps.
  processes[1].send_signal(signal.SIGTERM)
  stopped = []
  for process in processes:
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("Stopped by SIGTERM after step "), last
    stopped.append(int(last.split("after step ")[1].split(";")[0]))
  assert stopped[0] == stopped[1] > 0
  assert os.listdir(os.path.join(workdir, "checkpoints")) == [str(stopped[0])]

  for process in launch(stopped[0] + 2):
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr[-3000:]
    assert f"Resuming from the checkpoint at step {stopped[0]}" in stderr
