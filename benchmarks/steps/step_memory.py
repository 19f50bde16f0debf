"""Peak memory of one jaxgan train step, with and without the options that trade compute
for memory: rematerialising the generator (`config.model.remat`) and donated state buffers.

  .venv/bin/python benchmarks/steps/step_memory.py [--case pix2pix256,dcgan64] [--steps 3]
      [--out FILE]

For each case (benchmarks/harness.py CASES) and variant, in a fresh process (so that
nothing of another variant is resident): the step as the loop builds it (harness.JaxStep),
compiled ahead of time for one synthetic batch, then `--steps` steps. Two measures:
- XLA's buffer assignment of the compiled step (`Compiled.memory_analysis()`): arguments
  (state and batch), outputs, the bytes where outputs reuse donated arguments (alias),
  and temporaries (activations and everything else live inside the step); total =
  arguments + outputs - alias + temporaries, the step's peak device memory as XLA plans it.
- The process's resident set: before the steps (state, batch, compiled code, Python, JAX
  and TensorFlow loaded) and its peak during the steps (`VmHWM` of /proc/self/status,
  reset after compilation through /proc/self/clear_refs so that compilation's own peak is
  not counted), Linux only.
Variants: `default` (the loop's: state donated), `remat` (`--set model.remat=true`),
`no_donation` (the state's buffers not reused for the new state). Also the step time
(median of the steps) of each, which is what remat costs.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/

VARIANTS = {"default": ((), True), "remat": (("model.remat=true",), True),
            "no_donation": ((), False)}
BATCHES = {"pix2pix256": 1, "dcgan64": 128}  # the batches their experiments train with


def _status_kb(field: str) -> int | None:
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1])
  except OSError:
    pass
  return None


def measure(case_name: str, variant: str, steps: int, batch: int | None) -> dict:
  import harness  # pylint: disable=import-outside-toplevel
  case = harness.CASES[case_name]
  overrides, donate = VARIANTS[variant]
  sizes = (f"batch_size={batch}",) if batch else ()
  config = harness.load_config(case.config, case.overrides + sizes + overrides)
  step = harness.JaxStep(config, harness.synthetic_batch(config), donate=donate)
  memory = step.memory()
  rss_before = _status_kb("VmRSS")
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")  # resets VmHWM to the current RSS
    reset = True
  except OSError:
    reset = False
  times = harness.timed(step, steps)
  mib = lambda kb: None if kb is None else round(kb / 1024, 1)
  return {
      "case": case_name, "variant": variant, "batch": config.batch_size,
      "image_size": config.data.image_size, "remat": bool(config.model.get("remat")),
      "donated": donate, "xla_memory_bytes": memory,
      "xla_total_mib": round(memory["total_bytes"] / 2**20, 1) if memory else None,
      "rss_before_steps_mib": mib(rss_before),
      "peak_rss_during_steps_mib": mib(_status_kb("VmHWM")) if reset else None,
      "s_per_step_median": harness.median(times[1:] or times), "compile_s": step.compile_s,
  }


def markdown(out: dict) -> str:
  """The markdown table of a result (docs/performance.md)."""
  rows = ["| case | batch | variant | XLA: arguments + outputs - aliased + temporaries = "
          "total, MiB | process RSS before the steps, MiB | peak RSS during the steps, MiB | "
          "s/step |", "|---|---|---|---|---|---|---|"]
  mib = lambda b: b / 2**20
  for r in out["results"]:
    m = r["xla_memory_bytes"]
    rows.append(
        f"| {r['case']} | {r['batch']} | {r['variant']} | {mib(m['argument_size_in_bytes']):.0f}"
        f" + {mib(m['output_size_in_bytes']):.0f} - {mib(m['alias_size_in_bytes']):.0f} + "
        f"{mib(m['temp_size_in_bytes']):.0f} = **{mib(m['total_bytes']):.0f}** | "
        f"{r['rss_before_steps_mib']:.0f} | {r['peak_rss_during_steps_mib']:.0f} | "
        f"{r['s_per_step_median']:.2f} |")
  return "\n".join(rows) + "\n"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--case", default=",".join(BATCHES))
  parser.add_argument("--variants", default=",".join(VARIANTS))
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--batch", type=int, default=None,
                      help="override the batch (default: the case's, BATCHES)")
  parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # case:variant, in-process
  parser.add_argument("--out", default=None)
  parser.add_argument("--markdown", default=None, metavar="JSON",
                      help="only print the markdown table of an earlier result")
  args = parser.parse_args()
  if args.markdown:
    with open(args.markdown) as f:
      print(markdown(json.load(f)))
    return
  if args.one:
    case_name, variant = args.one.split(":")
    batch = args.batch or BATCHES.get(case_name)
    print(json.dumps(measure(case_name, variant, args.steps, batch)))
    return
  import harness  # pylint: disable=import-outside-toplevel
  info = harness.machine_info()
  results = []
  for case_name in args.case.split(","):
    for variant in args.variants.split(","):
      cmd = [sys.executable, os.path.abspath(__file__), "--one", f"{case_name}:{variant}",
             "--steps", str(args.steps)] + (["--batch", str(args.batch)] if args.batch else [])
      proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
      if proc.returncode:
        raise SystemExit(f"{case_name}:{variant} failed:\n{proc.stderr[-3000:]}")
      res = json.loads(proc.stdout.strip().splitlines()[-1])
      results.append(res)
      print(f"{case_name:<11} {variant:<12} batch {res['batch']:>4}: XLA total "
            f"{res['xla_total_mib']} MiB (temp "
            f"{res['xla_memory_bytes']['temp_size_in_bytes'] / 2**20:.1f}), RSS before "
            f"{res['rss_before_steps_mib']} MiB, peak during steps "
            f"{res['peak_rss_during_steps_mib']} MiB, {res['s_per_step_median']:.3f} s/step",
            flush=True)
  info["load_average_end"] = os.getloadavg()
  out = {"machine": info, "settings": vars(args), "results": results}
  if args.out:
    with open(args.out, "w") as f:
      f.write(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
