r"""The loss x regulariser study on one protocol (after Lucic et al. 2018).

    python benchmarks/gan_study.py --out=/tmp/gan_study --num_steps=2000 \
        --seeds=0,1,2 --top=3

Trains every pair of an adversarial loss and a regulariser at an equal
budget with `benchmarks/quality.py` (DCGAN networks, batch 64, Adam 2e-4,
0.5, 0.999, real Fashion-MNIST from Debian's dataset-fashion-mnist), each
scored on 10k samples: FD on the domain classifier, precision and recall.
Every pair runs with the first seed; the `--top` pairs by FD then run with
the other seeds too. Each run is one JSON line in OUT/results.jsonl, and a
run already there is not repeated: the study resumes where it stopped.
Prints the README's markdown table (mean +- std over the seeds run).

The regulariser sets D's normalisation too, as the papers do: BatchNorm
without one, none under a gradient penalty (a penalty on a batch-normalised
D mixes the samples' gradients; Gulrajani et al. 2017, sec. 4), and
spectral norm in place of BatchNorm. Minutes are wall-clock training time:
run the study alone on the machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

LOSSES = ("non_saturating", "minimax", "hinge", "wasserstein",
          "least_squares", "relativistic_average")
REGULARIZERS = {
    "none": [],
    "r1": ["--arch=dcgan_critic", "--penalty=r1", "--penalty_weight=10"],
    "r2": ["--arch=dcgan_critic", "--penalty=r2", "--penalty_weight=10"],
    "wgan_gp": ["--arch=dcgan_critic", "--penalty=wgan_gp",
                "--penalty_weight=10"],
    "spectral_norm": ["--spectral_norm"],
}
QUALITY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "quality.py")


def run_key(loss: str, regulariser: str, seed: int, extra) -> str:
  """What identifies a run's result: every flag it was trained with."""
  return json.dumps([loss, regulariser, seed, list(extra)])


def train_one(out, loss, regulariser, seed, extra) -> dict:
  """Trains and scores one pair: quality.py's record, or {"error": its last
  line} when the run stopped (a non-finite loss: the pair diverged)."""
  name = f"{loss}-{regulariser}-seed{seed}"
  workdir = os.path.join(out, "runs", name)
  if os.path.exists(workdir):  # An interrupted run: start it again.
    subprocess.run(["rm", "-rf", workdir], check=True)
  command = [sys.executable, QUALITY, f"--workdir={workdir}",
             f"--loss={loss}", f"--seed={seed}", *REGULARIZERS[regulariser],
             *extra]
  print(" ".join(command), flush=True)
  done = subprocess.run(command, capture_output=True, text=True, check=False)
  if done.returncode:
    lines = done.stderr.strip().splitlines() or ["no output"]
    print(f"  {name} stopped: {lines[-1]}", flush=True)
    return {"error": lines[-1]}
  return json.loads(done.stdout.strip().splitlines()[-1])


def _fd(row) -> float:
  return float("inf") if "error" in row else row["fd"]


def table(results) -> str:
  """Markdown rows sorted by mean FD: mean +- std over the seeds run; a
  pair with a stopped run reads "stopped" (its reason is in results.jsonl)."""
  pairs = {}
  for r in results:
    pairs.setdefault((r["loss"], r["regulariser"]), []).append(r)

  def cell(runs, name, digits, scale=1.0):
    if any("error" in run for run in runs):
      return "stopped"
    values = [run[name] * scale for run in runs]
    if len(values) == 1:
      return f"{values[0]:.{digits}f}"
    return (f"{statistics.mean(values):.{digits}f} ± "
            f"{statistics.stdev(values):.{digits}f}")

  lines = ["| loss | regulariser | seeds | FD | precision | recall | "
           "minutes |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
  for (loss, reg), runs in sorted(
      pairs.items(), key=lambda kv: statistics.mean(map(_fd, kv[1]))):
    lines.append(f"| {loss} | {reg} | {len(runs)} | {cell(runs, 'fd', 2)} | "
                 f"{cell(runs, 'precision', 2)} | {cell(runs, 'recall', 2)} "
                 f"| {cell(runs, 'train_seconds', 1, 1 / 60)} |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="Results and workdirs.")
  parser.add_argument("--num_steps", type=int, default=2000)
  parser.add_argument("--seeds", default="0", help="Comma-separated.")
  parser.add_argument("--top", type=int, default=3,
                      help="Pairs (by first-seed FD) run with every seed.")
  parser.add_argument("--losses", default=",".join(LOSSES))
  parser.add_argument("--regularizers", default=",".join(REGULARIZERS))
  args, extra = parser.parse_known_args()
  extra = [f"--num_steps={args.num_steps}"] + extra
  seeds = [int(s) for s in args.seeds.split(",")]
  unknown = set(args.regularizers.split(",")) - set(REGULARIZERS)
  if unknown:
    sys.exit(f"error: --regularizers {sorted(unknown)} are not among "
             f"{', '.join(REGULARIZERS)}.")
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, "results.jsonl")
  results = {}
  if os.path.exists(path):
    with open(path) as f:
      results = {r["key"]: r for r in map(json.loads, f)}

  def ensure(loss, reg, seed):
    key = run_key(loss, reg, seed, extra)
    if key not in results:
      record = train_one(args.out, loss, reg, seed, extra)
      row = {"key": key, "loss": loss, "regulariser": reg, "seed": seed,
             **{k: record[k] for k in ("fd", "precision", "recall",
                                       "train_seconds", "steps", "protocol",
                                       "error") if k in record}}
      with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
      results[key] = row
    return results[key]

  pairs = [(loss, reg) for reg in args.regularizers.split(",")
           for loss in args.losses.split(",")]
  first = {pair: ensure(*pair, seeds[0]) for pair in pairs}
  for pair in sorted(pairs, key=lambda p: _fd(first[p]))[:args.top]:
    for seed in seeds[1:]:
      ensure(*pair, seed)
  chosen = [r for r in results.values()
            if (r["loss"], r["regulariser"]) in first and json.loads(
                r["key"])[3] == extra]
  protocol = next((r["protocol"] for r in chosen if "protocol" in r), None)
  print(f"flags {' '.join(extra)}; seeds {args.seeds}; protocol: "
        f"{json.dumps(protocol)}")
  print(table(chosen))


if __name__ == "__main__":
  main()
