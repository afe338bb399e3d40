"""Every ```python snippet of README.md runs as written.

Each runs in a fresh namespace, under tfds.testing.mock_data (TFDS names
give small random datasets instead of downloads), with /tmp/ paths moved
into the test's own folder and the cache in there too.
"""

import os
import re

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "README.md")


def _snippets():
  with open(README) as f:
    text = f.read()
  blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
  titles = []
  for block in blocks:
    heading = text[:text.index(block)].rfind("\n#")
    titles.append(text[heading:].split("\n")[1].strip("# "))
  return list(zip(titles, blocks))


SNIPPETS = _snippets()


def test_the_readme_has_python_snippets():
  assert len(SNIPPETS) >= 4
  assert any(title == "Your own loss and networks in ten lines"
             for title, _ in SNIPPETS)


@pytest.mark.parametrize("title,code", SNIPPETS,
                         ids=[f"{i}-{t[:30]}" for i, (t, _) in
                              enumerate(SNIPPETS)])
def test_snippet_runs(title, code, tmp_path, monkeypatch):
  del title
  monkeypatch.setenv("GAN_JAX_CACHE", str(tmp_path / "cache"))
  monkeypatch.chdir(tmp_path)
  code = code.replace("/tmp/", f"{tmp_path}/")
  namespace = {"__name__": "readme"}
  with tfds.testing.mock_data(num_examples=64):
    exec(compile(code, README, "exec"), namespace)  # pylint: disable=exec-used
  # Every snippet computes arrays (images, features, states, metrics), and
  # none of them is NaN or infinite.
  arrays = [leaf for name, value in namespace.items()
            if not name.startswith("__")
            for leaf in jax.tree.leaves(value)
            if isinstance(leaf, (np.ndarray, jax.Array))]
  assert arrays, "the snippet computed no arrays"
  for leaf in arrays:
    if jax.dtypes.issubdtype(leaf.dtype, np.floating):
      assert np.isfinite(np.asarray(leaf)).all()
