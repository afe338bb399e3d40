import configparser
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _requirements():
  with open(os.path.join(REPO, "requirements.txt")) as f:
    return sorted(line.strip() for line in f
                  if line.strip() and not line.startswith("#"))


def test_setup_cfg_and_requirements_list_the_same_dependencies():
  config = configparser.ConfigParser()
  config.read(os.path.join(REPO, "setup.cfg"))
  install_requires = sorted(
      line.strip()
      for line in config["options"]["install_requires"].splitlines()
      if line.strip())
  assert install_requires == _requirements()
