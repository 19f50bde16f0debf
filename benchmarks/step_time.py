"""Seconds per train step of an experiment config, as `jaxgan.main` would run it.

  .venv/bin/python benchmarks/step_time.py --config configs/pix2pix_facades_cpu.py [--steps 10]
      [--warmup 2] [--set model.ngf=32 ...]

Builds the config's family, state and jitted step exactly as the training loop does
(`jaxgan.train`, through benchmarks/harness.py) and times `--steps` steps on one synthetic
batch (uniform in [-1, 1], shaped as the config's data), after `--warmup` steps;
initialisation and compilation are reported apart. Prints the median and the implied time
per epoch when the config names its epoch length (`config.data.num_train_examples`). No
data is read. Timings on a shared machine drift: compare only figures taken close together
on an idle one (benchmarks/train_step.py interleaves jaxgan and PyTorch).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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
  times = harness.timed(step, args.steps)
  median = harness.median(times)
  b = config.batch_size
  result = {"config": args.config, "overrides": args.set, "batch_size": b,
            "image_size": config.data.image_size,
            "init_and_compile_s": round(step.init_s + step.compile_s, 1), "steps": args.steps,
            "seconds_per_step": round(median, 3), "min": round(min(times), 3),
            "max": round(max(times), 3), "device": harness.jax.devices()[0].device_kind,
            "load_average_1min": round(os.getloadavg()[0], 2)}
  examples = config.data.get("num_train_examples")
  if examples:
    result["minutes_per_epoch"] = round(median * -(-examples // b) / 60, 1)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
