"""What each of the train step's speed choices is worth: the step with one choice undone.

  .venv/bin/python benchmarks/step_variants.py --config configs/pix2pix_facades.py
      [--variants default,no_kernel_bound,...] [--rounds 3] [--steps 4] [--out FILE]

Every variant is the loop's jitted step (benchmarks/harness.py `JaxStep`) built with one
piece of jaxgan swapped for the alternative it was chosen against; all are compiled first,
then timed in interleaved rounds (`--steps` steps each per round, median over all):

- `default`: jaxgan as it is;
- `kernel_bound_F` (F a number, e.g. `kernel_bound_1`): layers take the matrix-product
  forms when positions <= F * min(C_in, C_out) (`jaxgan.layers_cpu.kernel_bound` uses F = 0.5;
  `no_kernel_bound` is F = 0: the space-to-depth and sub-pixel forms everywhere);
- `isfinite_flags`: the divergence guard's finiteness of each leaf of the state as
  `all(isfinite(x))`, the form `jaxgan.layers_cpu.leaf_finite` replaced;
- `no_flags`: no finiteness flags at all (what the guard costs);
- `sum_flags`: that finiteness as a float sum of x * 0 per leaf (`alternatives.py`);
- `strided_weight_grad`: strided convolutions' weight gradient as matrix products at
  every batch (`alternatives.conv_space_to_depth_matmul_weight_grad` in place of the
  space-to-depth form `layers_cpu.conv_strided` takes gradients from, and
  `layers_cpu.BATCHED_WEIGHT_GRAD` out of reach) in place of XLA's or space-to-depth's;
- `phases_weight_grad`: the transposed convolution's weight gradient in its form before
  (`alternatives.weight_grad_phases`: `big`'s phases, a product per kernel shift) in
  place of `layers_cpu.weight_grad`'s per-tap views;
- `batched_spatial_sum`: InstanceNorm's per-image sums as a product batched over images
  (`alternatives.spatial_sum_batched`) in place of `layers_cpu.spatial_sum`'s;
- `autodiff_bias`: a convolution's bias added as plain `y + b`, its gradient autodiff's
  reduction (before), in place of `layers.add_bias`;
- `xla_strided_grads`: strided convolutions with XLA's own gradients
  (`alternatives.conv_strided_xla`; before `layers_cpu.conv_strided`, a kernel side not a
  multiple of the stride had these) in place of `layers_cpu.conv_strided`'s;
- `space_to_depth_strided`: strided convolutions as before `layers_cpu.conv_strided` took
  XLA's forward (`alternatives.conv_strided_space_to_depth`: the space-to-depth form in
  every direction where the kernel side is a multiple of the stride);
- `xla_narrow`: stride-1 convolutions with 4 or fewer input or output channels as XLA's
  (its convolution and autodiff's gradients) in place of `layers_cpu.conv_narrow`;
- `one_subpixel_conv`: a transposed convolution's phases from one convolution on every
  map, as before `layers_cpu.UNION_WASTE` gave small maps a convolution per phase;
- `side_by_side_taps`: every transposed convolution's weight gradient as one product with
  its k*k tap views side by side (`layers_cpu.WIDE_PRODUCT` out of reach), the form
  `_weight_grad` keeps for outputs under 64 channels;
- `no_transposed_weight_grad`: the transposed convolutions' weight gradients replaced by
  zeros (`layers_cpu.weight_grad`): what they cost inside the step (the step is then wrong;
  a measurement only);
- `sgd`: plain SGD in place of the families' Adam pair (what the Adam update costs;
  pix2pix and CycleGAN, whose optimizers `jaxgan.schedules.adam_pair` builds);
- `flat_adam`: that Adam under `optax.flatten` (one vector for all parameters).
"""

import argparse
import contextlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)
import alternatives  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from jaxgan import divergence, layers_cpu, schedules  # noqa: E402
from jaxgan.families import cyclegan, pix2pix  # noqa: E402


@contextlib.contextmanager
def patched(*patches):
  """Sets (module, name, value) for the duration, then restores every one."""
  saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
  for module, name, value in patches:
    setattr(module, name, value)
  try:
    yield
  finally:
    for module, name, value in saved:
      setattr(module, name, value)


def _optimizers(wrap):
  """Patches making every `adam_pair` user build (schedule, wrap(G's), wrap(D's))."""
  original = schedules.adam_pair

  def pair(config):
    schedule, g_tx, d_tx = original(config)
    return schedule, wrap(g_tx), wrap(d_tx)
  return [(module, "adam_pair", pair) for module in (schedules, pix2pix, cyclegan)]


def variant_patches(name: str):
  if name == "default":
    return []
  if name == "no_kernel_bound" or name.startswith("kernel_bound_"):
    factor = 0.0 if name == "no_kernel_bound" else float(name.removeprefix("kernel_bound_"))
    return [(layers_cpu, "kernel_bound", lambda m, c_in, c_out: m <= factor * min(c_in, c_out))]
  if name == "isfinite_flags":
    return [(layers_cpu, "leaf_finite", alternatives.leaf_isfinite)]
  if name == "sum_flags":
    return [(layers_cpu, "leaf_finite", alternatives.leaf_sum_times_zero)]
  if name == "strided_weight_grad":
    return [(layers_cpu, "conv_space_to_depth",
             alternatives.conv_space_to_depth_matmul_weight_grad),
            (layers_cpu, "BATCHED_WEIGHT_GRAD", sys.maxsize)]
  if name == "xla_narrow":
    return [(layers_cpu, "NARROW", 0)]
  if name == "one_subpixel_conv":
    return [(layers_cpu, "UNION_WASTE", float("inf"))]
  if name == "phases_weight_grad":
    return [(layers_cpu, "weight_grad", alternatives.weight_grad_phases)]
  if name == "batched_spatial_sum":
    return [(layers_cpu, "spatial_sum", alternatives.spatial_sum_batched)]
  if name == "xla_strided_grads":
    return [(layers_cpu, "conv_strided", alternatives.conv_strided_xla)]
  if name == "space_to_depth_strided":
    return [(layers_cpu, "conv_strided", alternatives.conv_strided_space_to_depth),
            (layers_cpu, "BATCHED_WEIGHT_GRAD", sys.maxsize)]
  if name == "autodiff_bias":
    return [(layers_cpu, "add_bias", alternatives.add_bias_autodiff)]
  if name == "no_flags":
    return [(divergence, "finite_flags", lambda state, metrics: {})]
  if name == "side_by_side_taps":
    return [(layers_cpu, "WIDE_PRODUCT", sys.maxsize)]
  if name == "no_transposed_weight_grad":
    def zeros(big, small, k, s):
      del s
      # `* 0` of one element keeps the operands live without the products (XLA does not
      # fold x * 0 for floats: NaN * 0 is NaN).
      return jnp.zeros((k, k, small.shape[-1], big.shape[-1]), small.dtype) + big[0, 0, 0, 0] * 0
    return [(layers_cpu, "weight_grad", zeros)]
  if name == "sgd":
    return _optimizers(lambda tx: optax.sgd(2e-4))
  if name == "flat_adam":
    return _optimizers(optax.flatten)
  raise SystemExit(f"unknown variant {name!r}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--variants", default="default,no_kernel_bound,isfinite_flags,no_flags")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=4)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--set", action="append", default=[], help="config override key=value")
  parser.add_argument("--out", default=None, help="write the JSON here")
  args = parser.parse_args()
  config = harness.load_config(args.config, args.set)
  batch = harness.synthetic_batch(config)
  steps = {}
  for name in args.variants.split(","):
    with patched(*variant_patches(name)):  # the step is traced and compiled in here
      steps[name] = harness.JaxStep(config, batch)
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
