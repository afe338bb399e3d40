"""What data is this? Its content, not the name a user typed.

Caches (classifiers, reference features) and results are keyed by
`hashing.dataset_sha256`, an order-independent hash of images and labels.
Splits whose hashes are listed in KNOWN_SPLITS are recognised whatever folder
or source they come from, so `--dataset=mnist` over Fashion-MNIST files is an
error rather than a mislabelled result.

    identity = identify(dataset.sha256)   # Identity(sha256="f489a1e8...",
                                          #   known_as=("mnist", "train"))
"""

from typing import NamedTuple, Optional, Tuple

from absl import logging

from gan_jax.errors import DataError

# dataset_sha256 of the genuine splits. Measured on the IDX files and on the
# same files prepared by TFDS 4.9.10 (identical); tests/test_data.py pins the
# function that computes them.
KNOWN_SPLITS = {
    "f489a1e86c4bbfeef5ef1e7b5d687716be8f8a96c20d757acd57c16517a5300f":
        ("mnist", "train"),
    "852bfbc7a2c83ed55748ece4fa336545f1365740121d0ddd2d3c0eb4bfec4561":
        ("mnist", "test"),
    "9295a0241124e82bc174cc92c577f9e001ca651813dd1b0ff1d4b6416142711c":
        ("fashion_mnist", "train"),
    "d5bcda06ed363bce108d15bbaf00df904b5d441ec1898d6ee82c30097d0c0ee7":
        ("fashion_mnist", "test"),
}
KNOWN_NAMES = frozenset(name for name, _ in KNOWN_SPLITS.values())


class Identity(NamedTuple):
  """A labelled image set's content hash, and the split it is, if known."""
  sha256: str
  known_as: Optional[Tuple[str, str]] = None  # (dataset, split)

  def to_dict(self):
    return {"sha256": self.sha256,
            "known_as": "/".join(self.known_as) if self.known_as else None}


def identify(sha256: str) -> Identity:
  """The identity of the data whose `hashing.dataset_sha256` (or
  `data.Dataset.sha256`) is `sha256`."""
  return Identity(sha256, KNOWN_SPLITS.get(sha256))


def check_name(name: str, split: str, identity: Identity,
               data_dir: str) -> None:
  """DataError if files in `data_dir` are a known dataset other than `name`.

  Unrecognised content under a known name (a subset, a re-labelling) is
  allowed with a warning: caches and results are keyed by its hash anyway.
  """
  if identity.known_as is None:
    if name in KNOWN_NAMES:
      logging.warning(
          "The %s images in --data_dir=%s are not the genuine %s (content "
          "sha256 %s...); caches and results are keyed by their content.",
          split, data_dir, name, identity.sha256[:12])
    return
  known_name, known_split = identity.known_as
  if known_name != name:
    raise DataError(
        f"--data_dir={data_dir} holds {known_name} (its {known_split} split, "
        f"recognised by content) but --dataset={name}: pass "
        f"--dataset={known_name}, since --dataset names the data in "
        "--data_dir.")
