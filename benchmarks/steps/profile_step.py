"""Where a jaxgan train step spends its time: ops of a `jax.profiler` trace, by kind.

  python benchmarks/steps/profile_step.py [--config configs/dcgan_mnist.py] [--batch N] [--steps 3]
      [--set key=value ...]

Traces `--steps` steps of the loop's jitted step (benchmarks/harness.py) after warm-up and
prints the XLA ops' time per step, summed by op kind (the fusion name without its number), plus the wall time per step.
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)
import jax  # noqa: E402


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="configs/dcgan_mnist.py")
  parser.add_argument("--batch", type=int, default=None, help="default: the config's")
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--top", type=int, default=15)
  parser.add_argument("--set", action="append", default=[], help="config override key=value")
  args = parser.parse_args()
  config = harness.load_config(args.config, args.set)
  if args.batch:
    config.batch_size = args.batch
  args.batch = config.batch_size
  step = harness.JaxStep(config, harness.synthetic_batch(config))
  harness.timed(step, 3)
  logdir = tempfile.mkdtemp()
  start = time.perf_counter()
  with jax.profiler.trace(logdir, create_perfetto_trace=True):
    harness.timed(step, args.steps)
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
