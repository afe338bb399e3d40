import os

import jax

from gan_jax import compilation_cache


def test_the_cache_is_per_machine_and_respects_the_users_choice(monkeypatch):
  # The test session's own cache (conftest) is a choice: left as it is.
  chosen = jax.config.jax_compilation_cache_dir
  assert chosen and compilation_cache.enable() == chosen
  monkeypatch.setenv(compilation_cache.ENV_SWITCH, "off")
  assert compilation_cache.enable() is None
  monkeypatch.delenv(compilation_cache.ENV_SWITCH)
  try:
    jax.config.update("jax_compilation_cache_dir", None)
    directory = compilation_cache.enable()
    assert directory == os.path.join(os.environ["GAN_JAX_CACHE"], "xla",
                                     compilation_cache.machine_key())
    assert jax.config.jax_compilation_cache_dir == directory
  finally:
    jax.config.update("jax_compilation_cache_dir", chosen)
  key = compilation_cache.machine_key()
  assert len(key) == 16 and key == compilation_cache.machine_key()
