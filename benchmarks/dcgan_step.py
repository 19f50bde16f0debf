"""One DCGAN train step, jaxgan (JAX on the CPU) against the PyTorch tutorial, side by side.

  .venv/bin/python benchmarks/dcgan_step.py [--models mnist,64] [--batch 128] [--rounds 3]
      [--steps 5] [--warmup 2] [--threads N] [--out results.json]

Both run in this process on the same synthetic batch (uniform in [-1, 1]). For each model:
build both steps; JAX is compiled ahead of time (its compile time is reported apart) and
both run `--warmup` steps; then `--rounds` rounds, each timing `--steps` JAX steps
(`block_until_ready` after each) and then `--steps` PyTorch steps. Interleaving matters:
on a small shared CPU timings drift by 10-20% over minutes, so only times taken close
together are compared. Per round and overall: median seconds/step, images/s, and
ratio = jax_images_per_s / torch_images_per_s (> 1: JAX is faster).

`--threads` sets PyTorch's intra-op threads; XLA:CPU uses its own pool over all cores.
Anything else running on the machine skews both sides, PyTorch's most: its OpenMP threads
wait on each other at every op, so with 2 threads on 2 busy cores an MNIST step measured
6x slower than with 1 thread. The script warns when the load average is high at start.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

# XLA reads its flags when the backend starts: set the package's CPU flags before jax.
try:
  from jaxgan import xla_flags
  xla_flags.configure()
except ImportError:
  pass

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import torch  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_dcgan  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"mnist": "configs/dcgan_mnist.py", "64": "configs/dcgan64.py"}


def make_jax_step(model: str, batch: int):
  """-> (jitted step, initial state, param counts {name: n}): the only jaxgan-specific code."""
  from jaxgan import config as config_lib, families  # pylint: disable=import-outside-toplevel
  config = config_lib.load(os.path.join(REPO, CONFIGS[model]))
  config.batch_size = batch
  family = families.create(config)
  state = family.init_state(jax.random.PRNGKey(0))
  step = jax.jit(family.train_step, donate_argnums=0)
  return step, state, family.param_counts(state)


def machine_info(threads: int) -> dict:
  cpu_model = ""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          cpu_model = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  import jaxlib  # pylint: disable=import-outside-toplevel
  return {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "processor": platform.processor(),
      "cpu_model": cpu_model,
      "uname": " ".join(platform.uname()),
      "cpu_count": os.cpu_count(),
      "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
      "python": platform.python_version(),
      "jax": jax.__version__,
      "jaxlib": jaxlib.__version__,
      "jax_backend": jax.default_backend(),
      "torch": torch.__version__,
      "torch_threads": threads,
      "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
  }


def _median(xs):
  return statistics.median(xs)


def _summary(times, batch):
  med = _median(times)
  return {"s_per_step": med, "images_per_s": batch / med, "step_times": times}


def bench_model(model: str, args) -> dict:
  spec = torch_dcgan.SPECS[model]
  b = args.batch
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (b, spec.image_size, spec.image_size, spec.nc)).astype(np.float32)
  print(f"\n== {model}: {spec.image_size}x{spec.image_size}x{spec.nc}, batch {b}", flush=True)

  # JAX: build, compile ahead of time (timed), warm up.
  t0 = time.perf_counter()
  jstep, state, jax_counts = make_jax_step(model, b)
  jbatch = {"image": jax.device_put(images), "label": jax.device_put(np.zeros((b,), np.int32))}
  build_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  compiled = jstep.lower(state, jbatch).compile()
  compile_s = time.perf_counter() - t0
  print(f"jax: built in {build_s:.1f} s, compiled in {compile_s:.1f} s; "
        f"params {jax_counts}", flush=True)

  def run_jax(state):
    state, metrics = compiled(state, jbatch)
    jax.block_until_ready((state, metrics))
    return state, metrics

  # PyTorch: the same batch in NCHW.
  torch.manual_seed(0)
  g, d = torch_dcgan.build(model)
  torch_counts = {"generator": torch_dcgan.count_params(g),
                  "discriminator": torch_dcgan.count_params(d)}
  tstep = torch_dcgan.make_torch_step(g, d, b, spec.nz)
  treal = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
  same_nets = {k: int(v) for k, v in jax_counts.items()} == torch_counts
  if not same_nets:
    print(f"WARNING: parameter counts differ: jax {jax_counts} vs torch {torch_counts}; "
          "the nets are not the same (see SPECS in benchmarks/torch_dcgan.py)", flush=True)

  t0 = time.perf_counter()
  for _ in range(args.warmup):
    state, metrics = run_jax(state)
  jax_warmup_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(args.warmup):
    tstep(treal)
  torch_warmup_s = time.perf_counter() - t0
  print(f"warm-up ({args.warmup} steps): jax {jax_warmup_s:.2f} s, torch {torch_warmup_s:.2f} s",
        flush=True)

  rounds = []
  for r in range(args.rounds):
    jt, tt = [], []
    for _ in range(args.steps):
      t = time.perf_counter()
      state, metrics = run_jax(state)
      jt.append(time.perf_counter() - t)
    time.sleep(args.pause)  # let the other runtime's spinning worker threads go idle
    for _ in range(args.steps):
      t = time.perf_counter()
      losses = tstep(treal)
      tt.append(time.perf_counter() - t)
    time.sleep(args.pause)
    jr, tr = _summary(jt, b), _summary(tt, b)
    ratio = jr["images_per_s"] / tr["images_per_s"]
    rounds.append({"jax": jr, "torch": tr, "ratio": ratio})
    print(f"round {r + 1}/{args.rounds}: jax {jr['s_per_step']:.3f} s/step, "
          f"torch {tr['s_per_step']:.3f} s/step, ratio {ratio:.2f}", flush=True)

  all_j = [t for rd in rounds for t in rd["jax"]["step_times"]]
  all_t = [t for rd in rounds for t in rd["torch"]["step_times"]]
  jo, to = _summary(all_j, b), _summary(all_t, b)
  del jo["step_times"], to["step_times"]
  jax_losses = {k: float(v) for k, v in metrics.items() if k in ("d_loss", "g_loss")}
  torch_losses = {"d_loss": float(losses[0]), "g_loss": float(losses[1])}
  finite = all(np.isfinite(v) for v in [*jax_losses.values(), *torch_losses.values()])
  return {
      "image_shape": [spec.image_size, spec.image_size, spec.nc],
      "batch": b,
      "param_counts": {"jax": {k: int(v) for k, v in jax_counts.items()}, "torch": torch_counts},
      "same_param_counts": same_nets,
      "jax_build_s": build_s,
      "jax_compile_s": compile_s,
      "warmup_s": {"jax": jax_warmup_s, "torch": torch_warmup_s},
      "rounds": rounds,
      "overall": {"jax": jo, "torch": to, "ratio": jo["images_per_s"] / to["images_per_s"],
                  "median_round_ratio": _median([rd["ratio"] for rd in rounds])},
      "last_losses": {"jax": jax_losses, "torch": torch_losses},
      "losses_finite": finite,
  }


def print_table(results: dict) -> None:
  print("\nmodel  impl   " + "  ".join(f"round{i + 1:<3}" for i in
                                       range(len(next(iter(results.values()))["rounds"])))
        + "  median s/step  images/s  ratio(jax/torch)")
  for model, res in results.items():
    for impl in ("jax", "torch"):
      per_round = "  ".join(f"{rd[impl]['s_per_step']:8.3f}" for rd in res["rounds"])
      o = res["overall"][impl]
      ratio = f"{res['overall']['ratio']:.2f}" if impl == "jax" else ""
      print(f"{model:<6} {impl:<6} {per_round}  {o['s_per_step']:13.3f}  "
            f"{o['images_per_s']:8.1f}  {ratio}")
    ratios = " ".join(f"{rd['ratio']:.2f}" for rd in res["rounds"])
    print(f"{model:<6} ratio per round: {ratios}; jax compile {res['jax_compile_s']:.1f} s")


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="mnist,64",
                      help=f"comma-separated, from {sorted(CONFIGS)}")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=5, help="timed steps per round and side")
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--threads", type=int, default=os.cpu_count(),
                      help="torch.set_num_threads (default: all cores)")
  parser.add_argument("--pause", type=float, default=0.5,
                      help="seconds of sleep between the JAX and PyTorch blocks")
  parser.add_argument("--out", default=None, help="also write the JSON result here")
  args = parser.parse_args(argv)
  models = [m.strip() for m in args.models.split(",") if m.strip()]
  for m in models:
    if m not in CONFIGS:
      parser.error(f"unknown model {m!r}; choose from {sorted(CONFIGS)}")

  torch.set_num_threads(args.threads)
  info = machine_info(args.threads)
  print(f"{info['cpu_model'] or info['processor']}, {info['cpu_count']} CPUs, "
        f"load {info['load_average']}; jax {info['jax']} ({info['jax_backend']}), "
        f"torch {info['torch']} ({args.threads} threads); XLA_FLAGS={info['XLA_FLAGS']!r}")
  load = info["load_average"]
  if load and load[0] > 0.5 * (os.cpu_count() or 1):
    print(f"WARNING: 1-minute load average {load[0]:.2f} on {os.cpu_count()} CPUs: something "
          "else is running, and these timings (PyTorch's especially) will be skewed.",
          flush=True)

  results = {m: bench_model(m, args) for m in models}
  print_table(results)
  out = {"machine": info,
         "settings": {k: getattr(args, k) for k in
                      ("models", "batch", "rounds", "steps", "warmup", "threads", "pause")},
         "results": results}
  out["machine"]["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
  text = json.dumps(out, indent=1)
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")
  return out


if __name__ == "__main__":
  main()
