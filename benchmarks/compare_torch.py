r"""gan_jax against its PyTorch twins, side by side: alternate runs, ratios.

    python benchmarks/compare_torch.py --torch_python=/path/to/venv/bin/python \
        --rows=vae:mlp:128,vae:conv:128 --rounds=3
    python benchmarks/compare_torch.py --torch_python=... \
        --rows=gan:dcgan:64,gan:resnet:64:32 --steps=20
    python benchmarks/compare_torch.py --torch_python=... --steps=6 \
        --rows=gan:resnet_pyramid_small:64:64
    python benchmarks/compare_torch.py --torch_python=... \
        --rows=gan:dcgan:64:28:conditional,gan:dcgan:64:28:acgan,gan:dcgan:64:28:diffaugment
    python benchmarks/compare_torch.py --torch_python=... \
        --rows=gan:dcgan_critic:64:28:r1,gan:dcgan_critic:64:28:wgan_gp
    python benchmarks/compare_torch.py --torch_python=... --steps=10 \
        --rows=pix2pix:default:64:28,cyclegan:default:16:64

Each row is family:arch:batch[:image size[:variant]] (default 28x28, the
library as shipped; variants: train_speed.py's MODEL_VARIANTS, whose twins
are torch_dcgan.py's --conditional, --diffaugment and --penalty, and
torch_compile: the library as shipped against the twin's networks under
torch.compile). Issue 12's DCGAN rows in one command:

    python benchmarks/compare_torch.py --torch_python=... --rounds=3 \
        --rows=gan:dcgan:64,gan:dcgan:256,gan:dcgan:64:64,gan:dcgan:256:64,gan:dcgan:64:64:torch_compile,gan:dcgan:256:64:torch_compile

Each round runs the JAX step
(benchmarks/train_speed.py's child, in its own process) and the PyTorch twin
(benchmarks/torch_<family>.py, in its own process, with the interpreter of
--torch_python, where torch is installed) one after the other, so both see
the same machine state. Prints one JSON line per row with every round's
images/sec, the medians and their ratio (gan_jax / PyTorch).

--preload runs both sides with a shared library preloaded, e.g. tcmalloc:
with glibc's malloc both page-fault their step's large temporary buffers
afresh every step (~25k faults a step for the DCGAN at 28x28, batch 256),
which tcmalloc avoids (README, Performance).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TWINS = {"vae": "torch_vae.py", "gan": "torch_dcgan.py",
         "gan:resnet": "torch_resnet_gan.py",
         "pix2pix": "torch_translation.py", "cyclegan": "torch_translation.py"}
# The twin's flags for each of train_speed.py's model variants.
TWIN_VARIANTS = {"fast": [], "conditional": ["--conditional=projection"],
                 "acgan": ["--conditional=acgan"],
                 "diffaugment": ["--diffaugment"], "r1": ["--penalty=r1"],
                 "wgan_gp": ["--penalty=wgan_gp"],
                 # gan_jax as shipped against the twin under torch.compile.
                 "torch_compile": ["--compile"]}


def _last_json(command, env=None):
  result = subprocess.run(command, capture_output=True, text=True, check=False,
                          env=env)
  if result.returncode:
    sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--torch_python", required=True,
                      help="A Python interpreter that can import torch.")
  parser.add_argument("--rows", default="vae:mlp:128,vae:conv:128")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=None,
                      help="Timed steps per window (default: about 4,096 "
                      "28x28-image equivalents, at least 3).")
  parser.add_argument("--preload", default="",
                      help="A shared library both sides run with "
                      "(LD_PRELOAD), e.g. tcmalloc's.")
  args = parser.parse_args()
  env = dict(os.environ)
  if args.preload:
    if not os.path.exists(args.preload):
      sys.exit(f"--preload={args.preload} does not exist; install it (e.g. "
               "apt-get install libtcmalloc-minimal4) or fix the path.")
    env["LD_PRELOAD"] = args.preload

  for row in args.rows.split(","):
    family, arch, batch, *rest = row.split(":")
    size, variant = (rest + ["28", "fast"][len(rest):])[:2]
    steps = args.steps or max(3, round(4096 / int(batch)
                                       / (int(size) / 28) ** 2))
    jax_rates, torch_rates, jax_compile = [], [], []
    for _ in range(args.rounds):
      jax_result = _last_json(
          [sys.executable, os.path.join(HERE, "train_speed.py"),
           f"--child={family}:{arch}:{size}:{batch}:{variant}",
           f"--steps={steps}",
           "--repeats=3"], env)
      jax_rates.append(jax_result["images_per_sec"])
      jax_compile.append(jax_result["compile_seconds"])
      twin_script = TWINS.get(f"{family}:{arch.split('_')[0]}",
                              TWINS[family])
      twin = [args.torch_python, os.path.join(HERE, twin_script),
              f"--batch_size={batch}", f"--steps={steps}",
              *TWIN_VARIANTS[variant]]
      if family == "vae":
        twin.append(f"--arch={arch}")
      if family in ("pix2pix", "cyclegan"):
        twin += [f"--family={family}", f"--image_size={size}"]
      if family == "gan" and arch == "dcgan":
        twin += [f"--image_size={size}", f"--warmup={min(10, steps)}"]
      if family == "gan" and arch.startswith("resnet"):
        twin += [f"--arch={arch}", f"--image_size={size}"]
      result = _last_json(twin, env)
      torch_rates.append(result["images_per_sec"])
    jax_median = statistics.median(jax_rates)
    torch_median = statistics.median(torch_rates)
    print(json.dumps({
        "row": row, "gan_jax_images_per_sec": jax_rates,
        "gan_jax_compile_seconds": jax_compile,
        "torch_images_per_sec": torch_rates, "torch": result["framework"],
        "torch_threads": result["threads"],
        "torch_compile": result.get("compile", False),
        "preload": args.preload or None,
        "ratio": round(jax_median / torch_median, 2)}), flush=True)


if __name__ == "__main__":
  main()
