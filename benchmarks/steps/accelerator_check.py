"""One command for the day a GPU or TPU is at hand: every family's step on the accelerator
against the same steps on the CPU, from the same state and batch.

  python benchmarks/steps/accelerator_check.py --device gpu [--peak-tflops 989] [--steps 3]
      [--timed-steps 20] [--cases configs/dcgan_mnist.py,...] [--set key=value ...]
      [--out benchmarks/results/accelerator_check_gpu.json]

For each case (an experiment config at its own size, with `--set` overrides) and each compute
dtype (float32, bfloat16 where the models have it) it initialises the state once on the CPU,
then runs `--steps` train steps on one synthetic batch on the device and the same steps on
the CPU, each side with `config.implementation="auto"`: the portable XLA ops on the device,
the CPU forms on the CPU. It reports
- agreement: the largest relative difference of each loss over those steps, and of the
  parameters' total update (||p_device - p_cpu|| / ||p_cpu - p_0||), with the tolerance
  each must meet (float32 at `config.precision="highest"`; bfloat16 against the float32 run
  on the same device) and whether it did;
- compile time and steps/s on the device (`--timed-steps` steps, one wait at the end);
- XLA's FLOP count of one step (`Compiled.cost_analysis()`), the achieved TFLOP/s and, with
  `--peak-tflops`, the fraction of that peak.
Results go to JSON. `--device cpu` lets the CPU stand in for the device (the tests run it
that way); there both sides run the same program.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)
import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import families  # noqa: E402
from jaxgan.config import ConfigError  # noqa: E402

CASES = ("configs/dcgan_mnist.py", "configs/gan_mnist.py", "configs/cdcgan_mnist.py",
         "configs/cgan_multiclass_mnist.py", "configs/celeba_dcgan.py",
         "configs/dcgan_grumpycat.py", "configs/pix2pix_facades.py",
         "configs/cyclegan_apple2orange.py", "configs/ddpm_mnist.py",
         "configs/ddpm_mnist_conditional.py", "configs/mnist_classifier.py")
# The agreement each comparison must meet (relative; see the module docstring).
TOLERANCE = {"float32": {"loss": 1e-3, "update": 5e-2},
             "bfloat16": {"loss": 5e-2, "update": 0.5}}


def parameters(state) -> np.ndarray:
  """The trained parameters of a state, flattened (not optimizer moments nor EMA copies)."""
  leaves = [np.ravel(np.asarray(x, np.float64))
            for p, x in jax.tree_util.tree_flatten_with_path(state)[0]
            if "params" in (k := jax.tree_util.keystr(p)) and "opt_state" not in k
            and "ema" not in k]
  return np.concatenate(leaves)


def run(family, state0, batch, device, steps: int, timed_steps: int) -> dict:
  """`steps` steps from state0 on `device`: losses per step, final parameters, compile time,
  FLOPs; then `timed_steps` more, timed."""
  state, batch = jax.device_put((state0, batch), device)
  start = time.perf_counter()
  compiled = jax.jit(family.train_step).lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  losses = []
  for _ in range(steps):
    state, metrics = compiled(state, batch)
    losses.append({k: float(metrics[k]) for k in family.loss_metrics if k in metrics})
  params = parameters(jax.device_get(state))
  start = time.perf_counter()
  for _ in range(timed_steps):
    state, metrics = compiled(state, batch)
  jax.block_until_ready((state, metrics))
  seconds = (time.perf_counter() - start) / max(timed_steps, 1)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost["flops"]) if cost and "flops" in cost else None
  return {"losses": losses, "params": params, "compile_s": compile_s,
          "seconds_per_step": seconds, "flops": flops}


def loss_difference(a: list[dict], b: list[dict]) -> float:
  return max((abs(x[k] - y[k]) / max(abs(y[k]), 1e-3) for x, y in zip(a, b) for k in y),
             default=0.0)


def check(path: str, overrides: list[str], device, args) -> dict:
  cpu = jax.devices("cpu")[0]
  out, reference = {}, None
  for dtype in ("float32", "bfloat16"):
    config = harness.load_config(path, [*overrides, f"dtype={dtype}"])
    try:
      family = families.create(config)
    except ConfigError as e:  # a model that computes in float32 only
      out[dtype] = {"skipped": str(e)}
      continue
    batch = harness.synthetic_batch(config)
    with jax.default_device(cpu):
      state0 = jax.device_get(jax.jit(family.init_state)(jax.random.PRNGKey(config.seed)))
    p0 = parameters(state0)
    on_device = run(family, state0, batch, device, args.steps, args.timed_steps)
    tol = TOLERANCE[dtype]
    if dtype == "float32":
      on_cpu = run(family, state0, batch, cpu, args.steps, 0)
      reference = on_device
    else:  # against the float32 steps on the same device
      on_cpu = reference
    if on_cpu is None:
      continue
    update = np.linalg.norm(on_cpu["params"] - p0)
    result = {
        "compared_with": "cpu" if dtype == "float32" else "float32 on the device",
        "loss_rel_diff": loss_difference(on_device["losses"], on_cpu["losses"]),
        "update_rel_diff": float(np.linalg.norm(on_device["params"] - on_cpu["params"])
                                 / max(update, 1e-12)),
        "tolerance": tol,
        "losses_device": on_device["losses"], "losses_reference": on_cpu["losses"],
        "compile_s": round(on_device["compile_s"], 2),
        "steps_per_s": round(1 / on_device["seconds_per_step"], 3) if args.timed_steps else None,
        "flops_per_step": on_device["flops"],
    }
    result["agrees"] = (result["loss_rel_diff"] <= tol["loss"]
                        and result["update_rel_diff"] <= tol["update"])
    if on_device["flops"] and args.timed_steps:
      tflops = on_device["flops"] / on_device["seconds_per_step"] / 1e12
      result["achieved_tflops"] = round(tflops, 4)
      if args.peak_tflops:
        result["fraction_of_peak"] = round(tflops / args.peak_tflops, 4)
    out[dtype] = result
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--device", default="gpu", help="the backend to check: gpu, tpu or cpu")
  parser.add_argument("--cases", default=",".join(CASES), help="comma-separated config files")
  parser.add_argument("--set", action="append", default=[], help="config override key=value")
  parser.add_argument("--steps", type=int, default=3, help="steps compared with the CPU")
  parser.add_argument("--timed-steps", type=int, default=20)
  parser.add_argument("--peak-tflops", type=float, default=None,
                      help="the device's peak TFLOP/s for the compute dtype")
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  if args.steps < 1 or args.timed_steps < 0:
    parser.error("--steps must be >= 1 and --timed-steps >= 0")
  try:
    device = jax.devices(args.device)[0]
  except RuntimeError as e:
    raise SystemExit(f"error: no {args.device} device here ({str(e).splitlines()[0]}); "
                     "pass --device cpu to let the CPU stand in") from None
  out_path = args.out or os.path.join(harness.REPO, "benchmarks", "results",
                                      f"accelerator_check_{args.device}.json")
  results = {"machine": harness.machine_info(device=device.device_kind, platform=device.platform),
             "steps": args.steps, "timed_steps": args.timed_steps, "overrides": args.set,
             "peak_tflops": args.peak_tflops, "cases": {}}
  for path in args.cases.split(","):
    print(f"{path} ...", file=sys.stderr, flush=True)
    results["cases"][path] = check(path, args.set, device, args)
  results["all_agree"] = all(r.get("agrees", True) for case in results["cases"].values()
                             for r in case.values())
  with open(out_path, "w") as f:
    json.dump(results, f, indent=2)
  print(json.dumps({p: {d: r.get("agrees", r.get("skipped")) for d, r in c.items()}
                    for p, c in results["cases"].items()}, indent=2))
  print(f"wrote {out_path}")


if __name__ == "__main__":
  main()
