"""The steps run unchanged on a batch sharded over 8 (fake CPU) devices.

XLA_FLAGS must be set before jax starts, so the check runs in a subprocess.
"""

import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import gan_jax
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from gan_jax import steps
    from gan_jax.config import GANConfig
    from gan_jax.state import create_state

    assert jax.device_count() == 8, jax.devices()
    mesh = jax.make_mesh((8,), ("data",))
    state = create_state(GANConfig(arch="dcgan_tiny"), (28, 28, 1))
    images = jax.random.uniform(jax.random.key(0), (16, 28, 28, 1),
                                minval=-1.0, maxval=1.0)
    single, single_metrics = jax.jit(steps.train_step)(
        state, {"image": images})

    replicated = NamedSharding(mesh, P())
    sharded_images = jax.device_put(images, NamedSharding(mesh, P("data")))
    assert len(sharded_images.sharding.device_set) == 8
    step = jax.jit(steps.train_step, donate_argnums=0)
    sharded, metrics = step(jax.device_put(state, replicated),
                            {"image": sharded_images})
    for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(single)):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    for name in metrics:
      np.testing.assert_allclose(metrics[name], single_metrics[name],
                                 rtol=2e-4, atol=2e-5)
    print("OK")
""")


def test_train_step_on_a_batch_sharded_over_8_devices():
  env = dict(os.environ,
             XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("OK")
