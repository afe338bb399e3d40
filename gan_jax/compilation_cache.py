"""JAX's persistent compilation cache, on by default for the commands.

A restart, a resume or a second command on the same run (sample, evaluate)
loads its compiled programs from disk instead of compiling them again
(README, "Compile time"). Entries are keyed by JAX on the program, the
compiler options and the JAX/XLA versions; this module adds a directory per
machine type, because XLA:CPU compiles for the host's instruction set and a
home directory shared by different machines would otherwise hold executables
that the other machines reject.
"""

import hashlib
import os
import platform
from typing import Optional

import jax

from gan_jax import hashing

# Set to 0 (or off/false) to compile every program afresh.
ENV_SWITCH = "GAN_JAX_COMPILATION_CACHE"


def machine_key() -> str:
  """A short hash of this host's architecture and CPU model and features."""
  description = [platform.machine()]
  try:
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
      for line in f:
        if line.startswith(("model name", "flags")):
          description.append(line.strip())
        if len(description) == 3:  # The first processor's two lines.
          break
  except OSError:
    description.append(platform.processor())
  return hashlib.sha256("\n".join(description).encode()).hexdigest()[:16]


def enable(directory: Optional[str] = None) -> Optional[str]:
  """Turns on the persistent cache in `directory`, by default
  <gan_jax cache>/xla/<machine_key>; returns the directory in use, or None
  if it is off.

  A cache the user chose (JAX_COMPILATION_CACHE_DIR, or
  jax.config.update("jax_compilation_cache_dir", ...)) is left as it is.
  """
  if os.environ.get(ENV_SWITCH, "1").lower() in ("0", "off", "false", "no"):
    return None
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  directory = directory or os.path.join(hashing.cache_dir("xla"),
                                        machine_key())
  jax.config.update("jax_compilation_cache_dir", directory)
  return directory
