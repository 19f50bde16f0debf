"""The whole training run against its bare step, every family, and the PyTorch reference's
run of the same recipe, side by side.

  .venv/bin/python benchmarks/whole_run.py [--case dcgan_mnist,classifier,pix2pix128,
      cyclegan64,ddpm_cpu] [--steps N] [--bare_steps 20] [--overhead_steps 1000,3000]
      [--torch_steps N] [--out benchmarks/results/whole_run_cpu.json [--update]]

For each case (a config of configs/ on the local copy of its data, `CASES`):
- the real loop: `python -m jaxgan.main` in a child process, `--steps` steps (default:
  the config's largest cadence, at most 500) with logging, grids and checkpoints at the
  config's own cadence (every run also draws and saves at its last step), a fresh
  workdir and an empty compilation cache ("cold"); then the same command to 10 steps in
  another workdir with the cache the first left ("warm"). Each run's `timings.json`
  (`jaxgan.train`) gives its start-up split into data preparation, the state, restore,
  the input pipeline's first batches, compilation, and the first grid; its loop time
  (first step to the last checkpoint written, everything periodic included) and steps/s.
  The child's wall time adds the process's start (imports) and the final figures.
- the bare step in this process: the same config's jitted step (benchmarks/harness.py
  `JaxStep`, as the loop builds it) on one fixed synthetic batch, `--bare_steps` calls
  dispatched back to back and waited for once, before and after the loop;
  `fraction_of_bare` = loop steps/s / bare steps/s (the mean of the two bare timings).

Per-step host overhead: DCGAN MNIST at width 4 and batch 8 (a step of a few milliseconds
on this CPU, so that the loop's own work shows): the loop at two lengths
(`--overhead_steps`), with its cadences beyond the run ("per step": only what every step
does, the run's end cancels in the difference) and at the config's own (log 50, grid
250, checkpoint 500: the periodic work amortised), each at 1 and 10 steps per call. Two
measures of the host's work h per step, each a difference of the two lengths over the
step difference:
- `host_overhead_us`: the loop's wall seconds minus the bare step's (of one step per call,
  or of the scanned program of 10, timed the same way). On a CPU this counts everything
  that shares the cores with the step: the input pipeline's threads too, which on a GPU or
  TPU host run on cores of their own. An upper bound here.
- `loop_thread_us`: the CPU seconds of the loop's thread (`timings.json`'s
  `loop.thread_seconds`, `time.thread_time`): dispatch and the loop's bookkeeping; the
  input is read, converted and transferred on its own thread (`train.device_calls`) and
  prepared on tf.data's, and a wait sleeps, so none of these counts. XLA:CPU also runs
  part of each program on the calling thread, so on a CPU this is an upper bound on the
  loop thread's work; beside it,
  `bare_thread_us_per_step` (the bare step's calling-thread CPU, calls back to back) and
  `call_of_nothing_thread_us` (a call of a program that computes nothing on the same state
  and batch: the dispatch by itself).
- `input_thread_us`: the CPU seconds of the input's thread (`timings.json`'s
  `loop.input_thread_seconds`): reading the batches from tf.data, converting them and
  putting them on the mesh, calls ahead of the loop.
The bounds: a device step of d seconds behind h seconds of the loop thread's work that does
not overlap it runs at d / (d + h) of its speed, so d = 1 ms runs at >= 90% while h <= 111
microseconds, as long as the input's thread keeps up (its work per step under d + h: it
runs beside the loop's, calls ahead). Where the loop thread's work overlaps the device's
(asynchronous dispatch) a step takes max(d, h, the input thread's), and d = 1 ms runs at
full speed while both threads work under 1 ms per step.

PyTorch: benchmarks/reference/dcgan_mnist_torch.py (the tutorial's loop on the same nets,
the same MNIST files through a DataLoader, the same logging, grid and checkpoint cadence)
to `--torch_steps` (default: DCGAN MNIST's --steps) in a child process, beside jaxgan's
DCGAN MNIST run: steps/s of each loop, start-up, and end-to-end wall seconds. Run it alone
on the machine: the cases run one after another, and each ratio is of two timings taken
minutes apart.
"""

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)
import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import families, train  # noqa: E402

MNIST = (f"data.manual_dir={harness.DATA}/mnist",)
CASES = {
    "dcgan_mnist": harness.CASES["dcgan_mnist"],
    "classifier": harness.Case("configs/mnist_classifier.py", (), MNIST,
                               "the MNIST classifier (the judge), batch 64"),
    "pix2pix128": harness.CASES["pix2pix128"],
    "cyclegan64": harness.CASES["cyclegan64"],
    "ddpm_cpu": harness.Case("configs/ddpm_mnist_cpu.py", (), MNIST,
                             "DDPM, the CPU-sized U-Net, batch 64, DDIM-50 grids"),
}
# The overhead case: DCGAN MNIST at width 4, batch 8.
TINY = ("model.ngf=4", "model.ndf=4", "batch_size=8")
CADENCES = ("log_every_steps", "sample_every_steps", "checkpoint_every_steps")
MAX_STEPS = 500
WARM_STEPS = 10


def loop_run(case: harness.Case, steps: int, workdir: str, cache: str, extra=()) -> dict:
  """`jaxgan.main` of the case to `steps` in `workdir`; its timings.json, wall seconds."""
  overrides = [f"num_train_steps={steps}", *case.overrides, *(case.data or ()), *extra]
  command = [sys.executable, "-m", "jaxgan.main", f"--config={case.config}",
             f"--workdir={workdir}", *[f"--config.{o}" for o in overrides]]
  env = {**os.environ, "JAXGAN_COMPILATION_CACHE": cache}
  start = time.perf_counter()
  result = subprocess.run(command, cwd=harness.REPO, env=env, capture_output=True, text=True,
                          check=False)
  wall = time.perf_counter() - start
  if result.returncode:
    raise SystemExit(f"error: {' '.join(command)} failed:\n{result.stderr[-2000:]}")
  with open(os.path.join(workdir, "timings.json")) as f:
    return {"wall_seconds": round(wall, 3), **json.load(f)}


def back_to_back(run, state, batch, calls: int) -> tuple[float, float]:
  """Seconds per call of `run(state, batch) -> (state, metrics, finite)`, and the CPU
  seconds of this (the calling) thread per call: two calls to warm up, then `calls`
  dispatched back to back and waited for once."""
  for _ in range(2):
    state, metrics, _ = run(state, batch)
  jax.block_until_ready(state)
  start, thread = time.perf_counter(), time.thread_time()
  for _ in range(calls):
    state, metrics, _ = run(state, batch)
  jax.block_until_ready((state, metrics))
  return (time.perf_counter() - start) / calls, (time.thread_time() - thread) / calls


def bare_seconds(config, steps: int) -> float:
  """Seconds per step of the jitted step, `steps` calls dispatched back to back."""
  return bare_timings(config, 1, steps)[0]


def bare_timings(config, k: int, calls: int, nothing: bool = False) -> tuple[float, float]:
  """Seconds and calling-thread CPU seconds per step of `k` steps per call (k = 1: the
  loop's jitted step; k > 1: `train.compile_train_steps` on one fixed batch repeated k
  times), `calls` calls dispatched back to back. `nothing`: a program that takes the same
  state and batch and gives the state back, computing nothing: what a call costs the
  calling thread by itself."""
  if k == 1 and not nothing:
    step = harness.JaxStep(config, harness.synthetic_batch(config))
    return back_to_back(step.compiled, step.state, step.batch, calls)
  mesh = train.make_mesh()
  family = families.create(config, train.mesh_platform(mesh))
  state = train.create_train_state(family, config, mesh)
  batch = harness.synthetic_batch(config)
  if k == 1:
    batches = train.shard_batch(batch, mesh)
  else:
    batches = train.shard_batches({key: np.stack([v] * k) for key, v in batch.items()}, mesh)
  if nothing:
    program = jax.jit(lambda state, batch: (state, {}, {}), donate_argnums=0)
  else:
    program = train.compile_train_steps(family, mesh)
  run = program.lower(state, batches).compile()
  wall, thread = back_to_back(run, state, batches, calls)
  return wall / k, thread / k


def default_steps(config) -> int:
  return min(MAX_STEPS, max(config[c] for c in CADENCES))


def measure_case(name: str, case: harness.Case, steps: int | None, bare_steps: int,
                 scratch: str) -> dict:
  config = harness.load_config(case.config, case.overrides + (case.data or ()))
  steps = steps or default_steps(config)
  cache = os.path.join(scratch, f"{name}_cache")
  bare_before = bare_seconds(config, bare_steps)
  cold = loop_run(case, steps, os.path.join(scratch, f"{name}_cold"), cache)
  warm = loop_run(case, WARM_STEPS, os.path.join(scratch, f"{name}_warm"), cache)
  bare_after = bare_seconds(config, bare_steps)
  bare = (bare_before + bare_after) / 2
  rate = cold["loop"]["steps_per_sec"]
  row = {"note": case.note, "config": case.config, "steps": steps,
         "cadence": {c: config[c] for c in CADENCES},
         "bare_seconds_per_step": {"before": round(bare_before, 5), "after": round(bare_after, 5)},
         "bare_steps_per_sec": round(1 / bare, 4),
         "loop_steps_per_sec": rate, "fraction_of_bare": round(rate * bare, 4),
         "cold": cold, "warm": warm}
  print(f"{name}: loop {rate:.3f} steps/s, bare {1 / bare:.3f} steps/s "
        f"({rate * bare:.1%}); start-up cold {cold['startup']['total']:.1f} s, warm "
        f"{warm['startup']['total']:.1f} s", flush=True)
  return row


def fraction_of_a_1ms_step(host_seconds: float) -> float:
  """The bound d / (d + h) at d = 1 ms (module docstring)."""
  return round(1e-3 / (1e-3 + max(host_seconds, 0.0)), 4)


def per_step_between(runs: list[dict], key: str) -> float:
  """`key` of two runs' `loop` (timings.json) per step between them: their difference over
  the difference of their steps, so that what both runs do once (start, end) cancels."""
  short, long_ = runs
  return (long_[key] - short[key]) / (long_["steps"] - short["steps"])


def overhead(lengths: list[int], bare_steps: int, scratch: str) -> dict:
  """Per-step host overhead of the loop on the tiny DCGAN (module docstring)."""
  case = harness.CASES["dcgan_mnist"]
  tiny = harness.Case(case.config, case.overrides + TINY, case.data, "DCGAN MNIST, width 4, batch 8")
  config = harness.load_config(tiny.config, tiny.overrides + tiny.data)
  long_ = lengths[1]
  calls = max(bare_steps, 500)
  timed = {1: bare_timings(config, 1, calls), 10: bare_timings(config, 10, calls // 10)}
  bares = {k: wall for k, (wall, _) in timed.items()}
  out = {"bare_seconds_per_step": {f"k{k}": round(b, 7) for k, b in bares.items()},
         "bare_thread_us_per_step": {f"k{k}": round(1e6 * t, 1) for k, (_, t) in timed.items()},
         "call_of_nothing_thread_us": round(1e6 * bare_timings(config, 1, calls, True)[1], 1),
         "lengths": lengths}
  cache = os.path.join(scratch, "tiny_cache")
  for k, bare in bares.items():
    for cadence_name, cadence in (("per_step", [f"{c}={long_}" for c in CADENCES]),
                                  ("default_cadence", [])):
      extra = [f"steps_per_call={k}", *cadence]
      runs = [loop_run(tiny, n, os.path.join(scratch, f"tiny_{k}_{cadence_name}_{n}"), cache,
                       extra)["loop"] for n in lengths]
      per_step = per_step_between(runs, "seconds")
      host = per_step - bare
      thread = per_step_between(runs, "thread_seconds")
      input_thread = per_step_between(runs, "input_thread_seconds")
      out[f"{cadence_name}_k{k}"] = {
          "loop_seconds": [r["seconds"] for r in runs], "seconds_per_step": round(per_step, 7),
          "host_overhead_us": round(1e6 * host, 1),
          "fraction_of_a_1ms_step": fraction_of_a_1ms_step(host),
          "loop_thread_seconds": [r["thread_seconds"] for r in runs],
          "loop_thread_us": round(1e6 * thread, 1),
          "input_thread_seconds": [r["input_thread_seconds"] for r in runs],
          "input_thread_us": round(1e6 * input_thread, 1),
          "fraction_of_a_1ms_step_by_thread": fraction_of_a_1ms_step(thread)}
      print(f"overhead, {cadence_name}, {k} steps per call: {1e6 * host:.0f} us per step "
            f"over the bare step, {1e6 * thread:.0f} us of the loop thread's CPU, "
            f"{1e6 * input_thread:.0f} us of the input thread's", flush=True)
  return out


def torch_reference(steps: int, scratch: str) -> dict:
  workdir = os.path.join(scratch, "torch_dcgan_mnist")
  command = [sys.executable, os.path.join(harness.REPO, "benchmarks", "reference",
                                          "dcgan_mnist_torch.py"),
             f"--workdir={workdir}", f"--data={harness.DATA}/mnist", f"--steps={steps}"]
  start = time.perf_counter()
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - start
  if result.returncode:
    raise SystemExit(f"error: {' '.join(command)} failed:\n{result.stderr[-2000:]}")
  with open(os.path.join(workdir, "timings.json")) as f:
    return {"wall_seconds": round(wall, 3), **json.load(f)}


def updated(earlier: dict, result: dict) -> dict:
  """`earlier` (a JSON of this script) with what `result` measured in its place (`--update`):
  each case on its own, and each other part; each keeps the machine facts of the run that
  measured it (`updates`)."""
  earlier, result = copy.deepcopy(earlier), dict(result)
  for name, row in result.pop("cases", {}).items():
    earlier.setdefault("cases", {})[name] = row
    earlier.setdefault("updates", {})[f"cases.{name}"] = result["machine"]
  for key in [k for k in result if k != "machine" and result[k]]:
    earlier[key] = result[key]
    earlier.setdefault("updates", {})[key] = result["machine"]
  return earlier


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--case", default=",".join(CASES))
  parser.add_argument("--steps", type=int, default=None)
  parser.add_argument("--bare_steps", type=int, default=20)
  parser.add_argument("--overhead_steps", default="1000,3000")
  parser.add_argument("--torch_steps", type=int, default=None,
                      help="default: DCGAN MNIST's steps; 0: no PyTorch run")
  parser.add_argument("--out", default=None)
  parser.add_argument("--update", action="store_true",
                      help="replace only what this run measured in --out's JSON")
  args = parser.parse_args()
  names = [n for n in args.case.split(",") if n]
  unknown = [n for n in names if n not in CASES]
  if unknown:
    raise SystemExit(f"error: unknown --case {unknown[0]}; known: {', '.join(CASES)}")
  lengths = [int(n) for n in args.overhead_steps.split(",") if n]
  if len(lengths) not in (0, 2) or (lengths and lengths[0] >= lengths[1]):
    raise SystemExit("error: --overhead_steps takes two lengths, shorter first (or nothing)")
  result = {"machine": harness.machine_info(), "cases": {}}
  scratch = tempfile.mkdtemp(prefix="whole_run_")
  try:
    for name in names:
      result["cases"][name] = measure_case(name, CASES[name], args.steps, args.bare_steps,
                                           scratch)
    if lengths:
      result["host_overhead"] = overhead(lengths, args.bare_steps, scratch)
    if "dcgan_mnist" in result["cases"] and args.torch_steps != 0:
      jax_row = result["cases"]["dcgan_mnist"]
      reference = torch_reference(args.torch_steps or jax_row["steps"], scratch)
      result["torch_dcgan_mnist"] = reference
      result["dcgan_mnist_vs_torch"] = {
          "loop_ratio": round(jax_row["loop_steps_per_sec"] / reference["loop"]["steps_per_sec"], 4),
          "wall_ratio": round(reference["wall_seconds"] / jax_row["cold"]["wall_seconds"], 4),
          "note": "> 1: jaxgan faster (loop: steps/s; wall: end to end, start-up included, "
                  "jaxgan's with a cold compilation cache)"}
      print(f"DCGAN MNIST loop: jaxgan {jax_row['loop_steps_per_sec']:.3f}, PyTorch "
            f"{reference['loop']['steps_per_sec']:.3f} steps/s", flush=True)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  result["machine"]["load_average_end"] = os.getloadavg()
  if args.update and args.out and os.path.exists(args.out):
    with open(args.out) as f:
      result = updated(json.load(f), result)
  text = json.dumps(result, indent=2)
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
      f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  main()
