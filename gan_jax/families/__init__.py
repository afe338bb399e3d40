"""The model families, by the name their checkpoints record.

    from gan_jax import families
    family = families.get("vae")      # a gan_jax.family.Family

Each family is one module: `gan` (gan.py; its step is gan_jax/steps.py),
`vae` (vae.py), `pix2pix` (pix2pix.py) and `cyclegan`
(cyclegan.py). The training loop never imports
this package; commands that open a saved run use it to find the family the
run recorded. A family of your own needs no entry here: pass it to
`train.train_and_evaluate` and to `runs.load(..., family=...)`.
"""

from typing import Dict

from gan_jax.errors import ConfigError
from gan_jax.family import Family
from gan_jax.families import cyclegan, gan, pix2pix, vae

FAMILIES: Dict[str, Family] = {
    gan.FAMILY.name: gan.FAMILY,
    vae.FAMILY.name: vae.FAMILY,
    pix2pix.FAMILY.name: pix2pix.FAMILY,
    cyclegan.FAMILY.name: cyclegan.FAMILY,
}


def get(name: str) -> Family:
  if name not in FAMILIES:
    raise ConfigError(f"Unknown model family {name!r}; known: "
                      f"{', '.join(sorted(FAMILIES))}. A run of your own "
                      "family is opened by passing family=... .")
  return FAMILIES[name]
