"""What each of the train step's speed choices is worth: the step with one choice undone.

  .venv/bin/python benchmarks/steps/step_variants.py --config configs/pix2pix_facades.py
      [--variants default,no_kernel_bound,...] [--rounds 3] [--steps 4] [--out FILE]

Every variant is the loop's jitted step (benchmarks/harness.py `JaxStep`) built under one
setting that jaxgan exposes for this: the implementation switch (`config.implementation`,
`jaxgan.implementation`) or one of `jaxgan.layers_cpu`'s thresholds moved
(`layers_cpu.thresholds`). All are compiled first, then timed in interleaved rounds
(`--steps` steps each per round, median over all):

- `default`: jaxgan as it is;
- `portable`: every layer in its portable form (XLA's own ops), as on an accelerator;
- `kernel_bound_F` (F a number, e.g. `kernel_bound_1`): layers take the matrix-product
  forms when positions <= F * min(C_in, C_out) (`layers_cpu.KERNEL_BOUND`);
  `no_kernel_bound` is F = 0: the space-to-depth and sub-pixel forms everywhere;
- `xla_narrow`: stride-1 convolutions with few input or output channels as XLA's (its
  convolution and autodiff's gradients) in place of `layers_cpu.conv_narrow`
  (`NARROW` = 0);
- `one_subpixel_conv`: a transposed convolution's phases from one convolution on every
  map (`UNION_WASTE` out of reach);
- `side_by_side_taps`: every transposed convolution's weight gradient as one product with
  its k*k tap views side by side (`WIDE_PRODUCT` out of reach);
- `space_to_depth_weight_grad`: strided convolutions' weight gradient from the
  space-to-depth form at every batch (`BATCHED_WEIGHT_GRAD` out of reach);
- `xla_weight_grad`: strided convolutions' weight gradient as XLA's at every batch
  (`BATCHED_WEIGHT_GRAD` = 1).

Variants that replaced a private function of the layers, the divergence guard or the
optimizers have no such setting and are not offered (benchmarks/README.md).
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)

from jaxgan import layers_cpu  # noqa: E402

# name -> (config overrides, `layers_cpu.thresholds` values).
VARIANTS = {
    "default": ((), {}),
    "portable": (("implementation=portable",), {}),
    "no_kernel_bound": ((), {"KERNEL_BOUND": 0.0}),
    "xla_narrow": ((), {"NARROW": 0}),
    "one_subpixel_conv": ((), {"UNION_WASTE": math.inf}),
    "side_by_side_taps": ((), {"WIDE_PRODUCT": sys.maxsize}),
    "space_to_depth_weight_grad": ((), {"BATCHED_WEIGHT_GRAD": sys.maxsize}),
    "xla_weight_grad": ((), {"BATCHED_WEIGHT_GRAD": 1}),
}


def variant(name: str) -> tuple[tuple[str, ...], dict]:
  """(config overrides, thresholds) of a variant; an unknown name exits with the list."""
  if name.startswith("kernel_bound_"):
    try:
      return (), {"KERNEL_BOUND": float(name.removeprefix("kernel_bound_"))}
    except ValueError:
      pass
  if name not in VARIANTS:
    raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)} or "
                     "kernel_bound_F")
  return VARIANTS[name]


def build(config_path: str, overrides, name: str, batch) -> harness.JaxStep:
  """The variant's step, traced and compiled under its settings."""
  config_overrides, thresholds = variant(name)
  config = harness.load_config(config_path, [*overrides, *config_overrides])
  with layers_cpu.thresholds(**thresholds):
    return harness.JaxStep(config, batch)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--variants", default="default,portable,no_kernel_bound")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=4)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--set", action="append", default=[], help="config override key=value")
  parser.add_argument("--out", default=None, help="write the JSON here")
  args = parser.parse_args()
  names = args.variants.split(",")
  for name in names:
    variant(name)  # every name checked before anything compiles
  config = harness.load_config(args.config, args.set)
  batch = harness.synthetic_batch(config)
  steps = {}
  for name in names:
    steps[name] = build(args.config, args.set, name, batch)
    harness.timed(steps[name], args.warmup)
    print(f"{name}: compiled in {steps[name].compile_s:.1f} s", flush=True)
  times = {name: [] for name in steps}
  for r in range(args.rounds):
    for name, step in steps.items():
      times[name] += harness.timed(step, args.steps)
    print(f"round {r + 1}/{args.rounds}: " + ", ".join(
        f"{n} {harness.median(t[-args.steps:]):.3f}" for n, t in times.items()), flush=True)
  base = harness.median(times[next(iter(times))])
  result = {"config": args.config, "overrides": args.set, "batch": config.batch_size,
            "machine": harness.machine_info(), "rounds": args.rounds, "steps": args.steps,
            "s_per_step": {n: harness.median(t) for n, t in times.items()},
            "relative_to_first": {n: harness.median(t) / base for n, t in times.items()}}
  print(json.dumps(result, indent=1))
  if args.out:
    with open(args.out, "w") as f:
      f.write(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
  main()
