import configparser
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _requirements():
  with open(os.path.join(REPO, "requirements.txt")) as f:
    return sorted(line.strip() for line in f
                  if line.strip() and not line.startswith("#"))


def _lines(text):
  return [line.strip() for line in text.splitlines() if line.strip()]


def test_requirements_are_the_core_and_the_optional_extras():
  """requirements.txt: everything (the light install's dependencies, and
  the tfds and tensorboard extras), as setup.cfg lists them."""
  config = configparser.ConfigParser()
  config.read(os.path.join(REPO, "setup.cfg"))
  extras = config["options.extras_require"]
  expected = (_lines(config["options"]["install_requires"])
              + _lines(extras["tfds"]) + _lines(extras["tensorboard"]))
  assert sorted(expected) == _requirements()
  assert not any("tensorflow" in line
                 for line in _lines(config["options"]["install_requires"]))
