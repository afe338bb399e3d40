"""Can this folder be written? One probe for the workdir, sample outputs and
the caches, so each command refuses an unwritable path before its work."""

import os
import tempfile
from typing import Optional


def file_in_the_way(path: str) -> Optional[str]:
  """The nearest existing ancestor of `path` if it is a file, else None."""
  parent = os.path.dirname(os.path.abspath(path))
  while parent and not os.path.exists(parent):
    parent = os.path.dirname(parent)
  return parent if os.path.isfile(parent) else None


def unwritable_folder(folder: str) -> Optional[str]:
  """None if `folder` exists or can be created and a file written in it;
  else why not, as a phrase ("/a/b is a file", "Permission denied")."""
  if os.path.isfile(folder):
    return f"{folder} is a file"
  blocker = file_in_the_way(folder)
  if blocker:
    return f"{blocker} is a file"
  try:
    os.makedirs(folder, exist_ok=True)
    # A unique name: every process of a multi-host run may probe one folder.
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_test"):
      pass
  except OSError as e:
    return e.strerror or str(e)
  return None
