"""The command-line entry points, run as a user would run them."""

import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import REPO, run_module
from gan_jax import runs
from gan_jax.preemption import Preemption

_run = run_module


def test_train_then_sample_from_the_command_line(idx_dir, tmp_path):
  workdir = str(tmp_path / "run")
  result = _run("experiments.mnist_gan", f"--workdir={workdir}",
                f"--data_dir={idx_dir}", "--arch=dcgan_tiny", "--num_steps=4",
                "--batch_size=8", "--log_every=2", "--sample_every=2",
                "--checkpoint_every=2", "--lr=1e-3")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "step 4/4" in result.stderr
  assert "ETA" in result.stderr
  # Progress a user needs, and none of the libraries' chatter.
  assert "Compiling the gan step" in result.stderr
  assert "Done: step 4" in result.stderr and "experiments.sample" in (
      result.stderr)
  for chatter in ("oneDNN", "xla_bridge", "orbax", "absl::InitializeLog"):
    assert chatter not in result.stderr, chatter
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]
  assert os.path.exists(os.path.join(workdir, "samples", "step_0000004.png"))

  output, grid = str(tmp_path / "s.npz"), str(tmp_path / "s.png")
  result = _run("experiments.sample", f"--workdir={workdir}",
                "--num_samples=10", f"--output={output}", f"--grid={grid}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
  images = np.load(output)["images"]
  assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
  assert os.path.getsize(grid) > 0


def test_bad_flags_get_one_line_errors(tmp_path):
  result = _run("experiments.mnist_gan", "--lr=-1",
                f"--workdir={tmp_path}")
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
      "error: --lr must be positive and finite, got -1.0.")
  result = _run("experiments.mnist_gan", "--arch=vit")
  assert result.returncode != 0
  assert "flag --arch=vit" in result.stderr
  assert "Traceback" not in result.stderr
  result = _run("experiments.mnist_gan", f"--data_dir={tmp_path}/nothing",
                f"--workdir={tmp_path}/run")
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: --data_dir=") and "does not exist" in last
  result = _run("experiments.sample", f"--workdir={tmp_path}/empty",
                f"--output={tmp_path}/x.npz")
  assert result.returncode != 0
  assert "No checkpoint" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("signum,name", [(signal.SIGTERM, "SIGTERM"),
                                         (signal.SIGINT, "Ctrl-C")])
def test_signal_saves_a_checkpoint_and_resume_continues(idx_dir, tmp_path,
                                                        signum, name):
  """SIGTERM (preemption) and Ctrl-C: finish the step, save, one line."""
  workdir = str(tmp_path / "run")
  flags = [f"--workdir={workdir}", f"--data_dir={idx_dir}", "--arch=mlp_tiny",
           "--batch_size=8", "--log_every=1000", "--sample_every=100000",
           "--checkpoint_every=100000"]
  process = subprocess.Popen(
      [sys.executable, "-m", "experiments.mnist_gan", *flags,
       "--num_steps=1000000"], cwd=REPO, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while not os.path.exists(os.path.join(workdir, "checkpoints")):
    assert time.time() < deadline and process.poll() is None
    time.sleep(0.5)
  time.sleep(3)  # Let it train some steps.
  process.send_signal(signum)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 128 + signum, stderr[-3000:]
  assert "Traceback" not in stderr
  last = stderr.strip().splitlines()[-1]
  assert last.startswith(f"Stopped by {name} after step ")
  stopped_at = int(last.split("after step ")[1].split(";")[0])
  assert os.listdir(os.path.join(workdir, "checkpoints")) == [str(stopped_at)]

  result = _run("experiments.mnist_gan", *flags,
                f"--num_steps={stopped_at + 2}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"Resuming from the checkpoint at step {stopped_at}" in result.stderr
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints")), key=int)[
      -1] == str(stopped_at + 2)


def test_a_second_ctrl_c_stops_at_once():
  before = signal.getsignal(signal.SIGINT)
  preemption = Preemption()
  try:
    preemption._handle(signal.SIGINT, None)  # pylint: disable=protected-access
    assert preemption.reached(1) and preemption.reason == "Ctrl-C"
    with pytest.raises(KeyboardInterrupt):
      preemption._handle(signal.SIGINT, None)  # pylint: disable=protected-access
  finally:
    preemption.restore()
  assert signal.getsignal(signal.SIGINT) is before


def _final_state(workdir):
  run = runs.load(workdir)
  return run.step, run.state


def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(idx_dir,
                                                                  tmp_path):
  """kill -9 mid-run (maybe mid-save); the rerun ends where a straight run
  ends, bit for bit."""
  workdir = str(tmp_path / "killed")
  flags = [f"--data_dir={idx_dir}", "--arch=mlp_tiny", "--batch_size=8",
           "--log_every=10", "--sample_every=100000", "--checkpoint_every=7"]
  process = subprocess.Popen(
      [sys.executable, "-m", "experiments.mnist_gan", f"--workdir={workdir}",
       *flags, "--num_steps=1000000"], cwd=REPO, stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL)
  deadline = time.time() + 180
  checkpoints = os.path.join(workdir, "checkpoints")
  while not (os.path.isdir(checkpoints)
             and any(d.isdigit() for d in os.listdir(checkpoints))):
    assert time.time() < deadline and process.poll() is None
    time.sleep(0.2)
  time.sleep(random.uniform(0.0, 2.0))
  assert process.poll() is None
  process.kill()
  process.wait()
  # Steps that had finished saving; a save cut short leaves no step folder.
  saved = sorted(int(d) for d in os.listdir(checkpoints) if d.isdigit())
  target = saved[-1] + 5
  result = _run("experiments.mnist_gan", f"--workdir={workdir}", *flags,
                f"--num_steps={target}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"Resuming from the checkpoint at step {saved[-1]}" in result.stderr
  result = _run("experiments.mnist_gan", f"--workdir={tmp_path}/straight",
                *flags, f"--num_steps={target}")
  assert result.returncode == 0, result.stderr[-3000:]
  (step_a, resumed), (step_b, straight) = (
      _final_state(workdir), _final_state(str(tmp_path / "straight")))
  assert step_a == step_b == target
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight)):
    np.testing.assert_array_equal(a, b)


def _truncate_checkpoint(workdir, step):
  """Halves the largest array file of checkpoint `step`."""
  state_dir = os.path.join(workdir, "checkpoints", str(step), "state")
  files = [os.path.join(root, name) for root, _, names in os.walk(state_dir)
           for name in names if os.sep + "d" + os.sep in root + os.sep]
  path = max(files, key=os.path.getsize)
  os.truncate(path, os.path.getsize(path) // 2)


def test_sample_and_evaluate_fall_back_from_a_corrupt_checkpoint(
    idx_dir, tmp_path):
  from conftest import tiny_run_config  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  tiny_run_config(idx_dir).train(workdir)
  _truncate_checkpoint(workdir, 6)
  output = str(tmp_path / "s.npz")
  sampled = _run("experiments.sample", f"--workdir={workdir}",
                 "--num_samples=4", f"--output={output}")
  assert sampled.returncode == 0, sampled.stderr[-3000:]
  assert "step 6" in sampled.stderr and "trying step 3" in sampled.stderr
  assert "of step 3" in sampled.stderr
  assert "Traceback" not in sampled.stderr, sampled.stderr[-3000:]
  assert len(sampled.stderr.strip().splitlines()) <= 4, sampled.stderr
  evaluated = _run("experiments.evaluate", f"--workdir={workdir}",
                   "--metrics=fd", "--num_samples=16",
                   f"--output={tmp_path / 'e.json'}")
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  assert '"step": 3' in evaluated.stdout
  assert "Traceback" not in evaluated.stderr

  _truncate_checkpoint(workdir, 3)  # Now none can be restored.
  sampled = _run("experiments.sample", f"--workdir={workdir}",
                 "--num_samples=4", f"--output={output}")
  assert sampled.returncode == 1
  lines = sampled.stderr.strip().splitlines()
  assert lines[-1].startswith("error: No checkpoint in"), sampled.stderr
  assert len(lines) <= 4, sampled.stderr  # Two warnings and the error.
