"""Data parallelism: the step on 8 devices equals the step on 1 device, same global batch.

JAX fixes its device count when its backend starts, so the comparison runs in a child
process started with `--xla_force_host_platform_device_count=8` (one for all the configs);
inside it, one mesh spans all 8 CPU devices and another only the first.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

CHILD = textwrap.dedent("""
    import json, sys
    import jaxgan
    import jax, jax.numpy as jnp, numpy as np
    from jaxgan import config as config_lib, families, train

    def compare(path):
      config = config_lib.load(path)
      if config.family == "ddpm":  # a small U-Net: 8 devices compile slowly
        config.model.ch, config.model.ch_mult, config.model.num_res_blocks = 8, (1, 2), 1
      else:
        config.model.ngf = config.model.ndf = 8
      config.batch_size = 16
      family = families.create(config, "cpu")
      size, ch = config.data.image_size, config.data.channels
      rng = np.random.default_rng(0)
      batches = [{"image": rng.uniform(-1, 1, (16, size, size, ch)).astype(np.float32),
                  "label": np.zeros(16, np.int32)} for _ in range(2)]

      def run(devices):
        mesh = train.make_mesh(devices)
        state = train.create_train_state(family, config, mesh)
        step = train.compile_train_step(family, mesh)
        for batch in batches:
          state, metrics, _ = step(state, train.shard_batch(batch, mesh))
        return state, metrics, mesh

      s8, m8, mesh8 = run(jax.devices())
      s1, m1, _ = run(jax.devices()[:1])
      leaves8 = jax.tree.leaves(jax.device_get(s8))
      leaves1 = jax.tree.leaves(jax.device_get(s1))
      diff = max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
                 for a, b in zip(leaves8, leaves1))
      loss = family.loss_metrics[0]
      print(json.dumps({"devices": mesh8.size, "max_state_diff": diff,
                        "loss": [float(m8[loss]), float(m1[loss])],
                        "sharded": str(train.shard_batch(batches[0], mesh8)["image"].sharding.spec)}))

    for path in sys.argv[1:]:
      compare(path)
""")


CONFIGS = ["dcgan_mnist.py", "ddpm_mnist_conditional.py"]


@pytest.fixture(scope="module")
def results():
  """{config file: the child's comparison}, all from one child process."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8")
  out = subprocess.run([sys.executable, "-c", CHILD, *[str(REPO / "configs" / c) for c in CONFIGS]],
                       env=env, capture_output=True, text=True, timeout=600, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  lines = out.stdout.strip().splitlines()[-len(CONFIGS):]
  return dict(zip(CONFIGS, (json.loads(line) for line in lines)))


@pytest.mark.parametrize("config_name", CONFIGS)
def test_eight_devices_equal_one_device(config_name, results):
  result = results[config_name]
  assert result["devices"] == 8
  assert result["sharded"] in ("P('data',)", "PartitionSpec('data',)")
  # Same math, different reduction order across devices: float32 round-off only. With
  # 2 images per device, per-device BatchNorm statistics would break this.
  assert result["max_state_diff"] < 1e-4, result
  assert abs(result["loss"][0] - result["loss"][1]) < 1e-5
