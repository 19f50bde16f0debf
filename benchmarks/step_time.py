"""Seconds per train step of an experiment config, as `jaxgan.main` would run it.

  .venv/bin/python benchmarks/step_time.py --config configs/pix2pix_facades_cpu.py [--steps 10]
      [--warmup 2] [--set model.ngf=32 ...]

Builds the config's family, state and jitted step exactly as the training loop does
(`jaxgan.train`) and times `--steps` steps on one synthetic batch (uniform in [-1, 1],
shaped as the config's data), after `--warmup` steps; compilation is reported apart.
Prints the median and the implied time per epoch when the config names its epoch length
(`config.data.num_train_examples`). No data is read. Timings on a shared machine drift:
compare only figures taken close together on an idle one.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jaxgan  # noqa: E402,F401  (CPU XLA flags before JAX starts)
import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import config as config_lib, families, input_pipeline, train  # noqa: E402


def override(config, assignment: str) -> None:
  key, value = assignment.split("=", 1)
  node = config
  *parents, leaf = key.split(".")
  for p in parents:
    node = node[p]
  current = node[leaf]
  node[leaf] = value.lower() in ("1", "true") if isinstance(current, bool) else type(current)(value)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--set", action="append", default=[], help="config override key=value")
  args = parser.parse_args()
  config = config_lib.load(args.config)
  for assignment in args.set:
    override(config, assignment)

  family, mesh = families.create(config), train.make_mesh()
  start = time.time()
  state = jax.block_until_ready(train.create_train_state(family, config, mesh))
  step = train.compile_train_step(family, mesh)
  size, channels, b = config.data.image_size, config.data.channels, config.batch_size
  rng = np.random.default_rng(0)
  batch = {key: rng.uniform(-1, 1, (b, size, size, channels)).astype(np.float32)
           for key in input_pipeline.image_features(config.data)}
  batch["label"] = np.zeros(b, np.int32)
  batch = train.shard_batch(batch, mesh)
  state, metrics, _ = step(state, batch)
  jax.block_until_ready(metrics)
  compile_s = time.time() - start

  times = []
  for i in range(args.warmup + args.steps):
    t = time.time()
    state, metrics, _ = step(state, batch)
    jax.block_until_ready(metrics)
    if i >= args.warmup:
      times.append(time.time() - t)
  median = statistics.median(times)
  result = {"config": args.config, "overrides": args.set, "batch_size": b, "image_size": size,
            "init_and_compile_s": round(compile_s, 1), "steps": args.steps,
            "seconds_per_step": round(median, 3), "min": round(min(times), 3),
            "max": round(max(times), 3), "device": jax.devices()[0].device_kind,
            "load_average_1min": round(os.getloadavg()[0], 2)}
  examples = config.data.get("num_train_examples")
  if examples:
    result["minutes_per_epoch"] = round(median * -(-examples // b) / 60, 1)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
