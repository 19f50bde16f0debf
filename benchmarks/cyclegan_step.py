"""One CycleGAN train step, jaxgan (JAX on the CPU) against the reference's in PyTorch.

  .venv/bin/python benchmarks/cyclegan_step.py [--config configs/cyclegan_apple2orange64.py]
      [--rounds 3] [--steps 10] [--threads N]

The same networks on both sides (the config's generator and PatchGAN, built in PyTorch by
benchmarks/torch_cyclegan.py, parameter counts checked equal) and the same synthetic batch
(one A and one B image, uniform in [-1, 1]); jaxgan's jitted `train_step` against
`CycleGANModel.optimize_parameters`. Rounds interleave the two (timings on a shared CPU
drift by 10-20% over minutes); per round the median seconds per step of each and
ratio = torch / jax (> 1: JAX is faster).
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
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_cyclegan  # noqa: E402
from jaxgan import config as config_lib, families  # noqa: E402


def torch_model(config):
  m = config.model
  if m.generator == "cycle_generator_64":
    generator = lambda: torch_cyclegan.cycle_generator_64(ngf=m.ngf)
  else:
    generator = lambda: torch_cyclegan.resnet_generator(int(m.generator[7]), ngf=m.ngf)
  disc = lambda: torch_cyclegan.patch_discriminator(3, ndf=m.ndf, n_layers=m.n_layers,
                                                    norm="instance")
  return torch_cyclegan.CycleGAN(generator(), generator(), disc(), disc(),
                                 pool_size=config.loss.pool_size)


def timed(fn, steps):
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/cyclegan_apple2orange64.py")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  config = config_lib.load(args.config)
  config.batch_size = 1
  family = families.create(config)
  state = family.init_state(jax.random.PRNGKey(0))
  model = torch_model(config)
  counts = family.param_counts(state)
  assert counts["G_A"] == torch_cyclegan.count(model.g_a), counts
  assert counts["D_A"] == torch_cyclegan.count(model.d_a), counts
  size = config.data.image_size
  rng = np.random.default_rng(0)
  a, b = (rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32) for _ in range(2))
  batch = {"A": jax.device_put(a), "B": jax.device_put(b)}
  ta, tb = torch.from_numpy(a.transpose(0, 3, 1, 2)), torch.from_numpy(b.transpose(0, 3, 1, 2))
  step = jax.jit(family.train_step, donate_argnums=0)
  start = time.perf_counter()
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - start

  def jax_step():
    nonlocal state
    state, m = step(state, batch)
    jax.block_until_ready(m)

  torch_step = lambda: model.optimize_parameters(ta, tb)
  jax_step(), torch_step()  # warm-up
  rounds = []
  for _ in range(args.rounds):
    j, t = timed(jax_step, args.steps), timed(torch_step, args.steps)
    rounds.append({"jax_s": round(j, 4), "torch_s": round(t, 4), "ratio": round(t / j, 2)})
  print(json.dumps({"config": args.config, "image_size": size, "params": counts,
                    "jax_compile_s": round(compile_s, 1), "torch_threads": args.threads,
                    "rounds": rounds, "load_average_1min": round(os.getloadavg()[0], 2)},
                   indent=2))


if __name__ == "__main__":
  main()
