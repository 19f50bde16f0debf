"""DCGAN train step: jaxgan (JAX) against the same nets and step in PyTorch, side by side.

  python benchmarks/dcgan_step.py [--models mnist,64] [--batch 128] [--rounds 3]
                                  [--steps 5] [--threads N] [--out results.json]

Both run in this process on the CPU with the same thread count, batch and networks
(benchmarks/torch_dcgan.py; parameter counts are checked equal). Timings drift by
~15% on this kind of machine, so rounds interleave: JAX steps, then PyTorch steps, per
round. Prints a table and one JSON object; `ratio` = JAX images/s / PyTorch images/s
(> 1: JAX faster), the median over rounds.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jaxgan  # noqa: E402  (CPU XLA flags before JAX starts)
import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import torch_dcgan  # noqa: E402
from jaxgan import config as config_lib, families  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"mnist": "dcgan_mnist.py", "64": "dcgan64.py"}


def make_jax_step(model: str, batch: int):
  config = config_lib.load(os.path.join(REPO, "configs", CONFIGS[model]))
  config.batch_size = batch
  family = families.create(config)
  state = family.init_state(jax.random.PRNGKey(0))
  step = jax.jit(family.train_step, donate_argnums=0)
  size, channels = config.data.image_size, config.data.channels
  images = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, channels)).astype(np.float32)
  data = {"image": jax.device_put(images), "label": jax.device_put(np.zeros(batch, np.int32))}
  holder = {"state": state}

  def run(n):
    for _ in range(n):
      holder["state"], metrics = step(holder["state"], data)
    jax.block_until_ready(metrics)

  return run, family.param_counts(state), (size, channels)


def make_torch_step(size: int, channels: int, batch: int):
  step, (g, d) = torch_dcgan.make_step(size, channels, batch)
  real = torch.rand(batch, channels, size, size) * 2 - 1

  def run(n):
    for _ in range(n):
      step(real)

  return run, {"generator": torch_dcgan.count(g), "discriminator": torch_dcgan.count(d)}


def timed(run, n):
  start = time.perf_counter()
  run(n)
  return (time.perf_counter() - start) / n


def bench(model, args):
  jax_run, jax_counts, (size, channels) = make_jax_step(model, args.batch)
  torch_run, torch_counts = make_torch_step(size, channels, args.batch)
  assert jax_counts == torch_counts, (jax_counts, torch_counts)
  start = time.perf_counter()
  jax_run(1)
  compile_s = time.perf_counter() - start
  jax_run(args.warmup)
  torch_run(args.warmup)
  rounds = []
  for r in range(args.rounds):
    j = timed(jax_run, args.steps)
    t = timed(torch_run, args.steps)
    rounds.append({"jax_s_per_step": j, "torch_s_per_step": t, "ratio": t / j})
    print(f"  {model} round {r}: jax {j:.3f} s/step, torch {t:.3f} s/step, ratio {t / j:.2f}",
          flush=True)
  j = statistics.median(r["jax_s_per_step"] for r in rounds)
  t = statistics.median(r["torch_s_per_step"] for r in rounds)
  return {"model": model, "batch": args.batch, "params": jax_counts,
          "jax_compile_s": compile_s, "jax_s_per_step": j, "torch_s_per_step": t,
          "jax_images_per_s": args.batch / j, "torch_images_per_s": args.batch / t,
          "ratio": statistics.median(r["ratio"] for r in rounds), "rounds": rounds}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="mnist,64")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  parser.add_argument("--out")
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  results = [bench(m, args) for m in args.models.split(",")]
  report = {
      "benchmark": "dcgan_train_step",
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "machine": {"platform": platform.platform(), "processor": platform.processor() or
                  platform.machine(), "cpu_count": os.cpu_count(), "threads": args.threads,
                  "jax_backend": jax.default_backend()},
      "versions": {"jax": jax.__version__, "torch": torch.__version__},
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "results": results,
  }
  print(f"{'model':>6} {'batch':>5} {'jax s/step':>10} {'torch s/step':>12} {'jax img/s':>9} "
        f"{'torch img/s':>11} {'ratio':>6}")
  for r in results:
    print(f"{r['model']:>6} {r['batch']:>5} {r['jax_s_per_step']:>10.3f} {r['torch_s_per_step']:>12.3f} "
          f"{r['jax_images_per_s']:>9.1f} {r['torch_images_per_s']:>11.1f} {r['ratio']:>6.2f}")
  print(json.dumps(report))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(report, f, indent=2)


if __name__ == "__main__":
  main()
