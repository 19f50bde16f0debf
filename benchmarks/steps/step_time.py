"""Seconds per train step of an experiment config, as `jaxgan.main` would run it.

  .venv/bin/python benchmarks/steps/step_time.py --config configs/pix2pix_facades_cpu.py [--steps 10]
      [--warmup 2] [--set model.ngf=32 ...]

Builds the config's family, state and jitted step exactly as the training loop does
(`jaxgan.train`, through benchmarks/harness.py) and times `--steps` steps on one synthetic
batch (uniform in [-1, 1], shaped as the config's data), after `--warmup` steps;
initialisation and compilation are reported apart. Prints the median and the implied time
per epoch when the config names its epoch length (`config.data.num_train_examples`), the
process's minor page faults and system and user CPU seconds per timed step
(`getrusage`), and XLA's temporary buffer of the step; `BENCH_KEEP_FREED_MEMORY=1` (see
benchmarks/harness.py) has glibc keep freed memory in the process. No data is read. Timings on a
shared machine drift: compare only figures taken close together on an idle one
(benchmarks/steps/train_step.py interleaves jaxgan and PyTorch).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--set", action="append", default=[], help="config override key=value")
  args = parser.parse_args()
  config = harness.load_config(args.config, args.set)
  step = harness.JaxStep(config, harness.synthetic_batch(config))
  harness.timed(step, args.warmup)
  times, usage = harness.timed_with_usage(step, args.steps)
  median = harness.median(times)
  b = config.batch_size
  result = {"config": args.config, "overrides": args.set, "batch_size": b,
            "image_size": config.data.image_size,
            "init_and_compile_s": round(step.init_s + step.compile_s, 1), "steps": args.steps,
            "seconds_per_step": round(median, 3), "min": round(min(times), 3),
            "max": round(max(times), 3), "device": harness.jax.devices()[0].device_kind,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "minor_page_faults_per_step": round(usage["minor_page_faults_per_step"]),
            "system_s_per_step": round(usage["system_s_per_step"], 4),
            "user_s_per_step": round(usage["user_s_per_step"], 4),
            "xla_temp_mib": round((step.memory() or {}).get("temp_size_in_bytes", 0) / 2**20, 1),
            "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", ""),
            "keep_freed_memory": harness.KEEP_FREED_MEMORY}
  examples = config.data.get("num_train_examples")
  if examples:
    result["minutes_per_epoch"] = round(median * -(-examples // b) / 60, 1)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
