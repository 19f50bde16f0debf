"""Where a jaxgan train step spends its time: ops of a `jax.profiler` trace, by kind.

  python benchmarks/profile_step.py [--config configs/dcgan_mnist.py] [--batch 128] [--steps 3]

Traces `--steps` jitted steps after warm-up and prints the XLA ops' time per step,
summed by op kind (the fusion name without its number), plus the wall time per step.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jaxgan  # noqa: E402,F401  (CPU XLA flags before JAX starts)
import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import config as config_lib, families, input_pipeline  # noqa: E402


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="configs/dcgan_mnist.py")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--top", type=int, default=15)
  args = parser.parse_args()
  config = config_lib.load(args.config)
  config.batch_size = args.batch
  family = families.create(config)
  state = family.init_state(jax.random.PRNGKey(0))
  size, channels = config.data.image_size, config.data.channels
  rng = np.random.default_rng(0)
  batch = {key: jax.device_put(rng.uniform(-1, 1, (args.batch, size, size, channels)).astype(
               np.float32)) for key in input_pipeline.image_features(config.data)}
  batch["label"] = jax.device_put(np.zeros(args.batch, np.int32))
  step = jax.jit(family.train_step, donate_argnums=0)
  for _ in range(3):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  logdir = tempfile.mkdtemp()
  start = time.perf_counter()
  with jax.profiler.trace(logdir, create_perfetto_trace=True):
    for _ in range(args.steps):
      state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
  wall = (time.perf_counter() - start) / args.steps
  trace = json.load(gzip.open(glob.glob(f"{logdir}/**/perfetto_trace.json.gz", recursive=True)[0]))
  kinds = collections.Counter()
  for event in trace["traceEvents"] if isinstance(trace, dict) else trace:
    name = event.get("name", "")
    # XLA ops only: not Python frames ($...), runtime bookkeeping or "end: op" markers.
    if event.get("ph") == "X" and "dur" in event and re.fullmatch(r"[\w.-]+", name):
      kinds[re.sub(r"[._]\d+$", "", name)] += event["dur"] / 1e3 / args.steps
  total = sum(kinds.values())
  for kind, ms in kinds.most_common(args.top):
    print(f"{ms:8.1f} ms  {100 * ms / total:5.1f}%  {kind}")
  print(f"ops {total:.1f} ms/step; wall {1e3 * wall:.1f} ms/step (traced)")
  print(json.dumps({"config": args.config, "batch": args.batch, "ops_ms_per_step": total,
                    "wall_ms_per_step": 1e3 * wall, "by_kind_ms": dict(kinds.most_common())}))


if __name__ == "__main__":
  main()
