"""The whole jaxgan train step against PyTorch, every model family, side by side.

  .venv/bin/python benchmarks/steps/train_step.py [--case dcgan_mnist,dcgan64,pix2pix256,
      pix2pix128,cyclegan64,cyclegan256] [--rounds 3] [--steps 5] [--threads N]
      [--pipeline] [--torch-compile] [--device cpu|cuda] [--peak-tflops T] [--out FILE]

For each case (benchmarks/harness.py CASES: a config of configs/ and what it is), in one
process: jaxgan's jitted step exactly as the training loop builds it (`jaxgan.train`:
state replicated and donated, batch sharded) and the same networks' step in PyTorch,
written here from the references (tests/torch_reference/torch_dcgan.py: the PyTorch DCGAN tutorial;
torch_pix2pix.py and torch_cyclegan.py: junyanz/pytorch-CycleGAN-and-pix2pix's
`optimize_parameters`), with the same batch (synthetic, uniform in [-1, 1]), batch size and
parameter counts (checked equal: the script stops when they differ). JAX is compiled ahead
of time (compile time reported apart), both sides warm up, then `--rounds` rounds each
time `--steps` JAX steps and then `--steps` PyTorch steps. Interleaving matters: on a small
shared CPU timings drift over minutes, so only times taken close together are compared. Per round and overall: median s/step, images/s, and
ratio = JAX images/s / PyTorch images/s (> 1: JAX is faster); per side also the kernel
(system) time and minor page faults per step.

`BENCH_KEEP_FREED_MEMORY=1` in the environment: glibc keeps freed memory in the process
(benchmarks/harness.py `keep_freed_memory`), for both sides alike (what it does:
docs/performance.md).

`--pipeline`: the input pipeline (`jaxgan.datasets.streams`, the loop's) on the real local
data (benchmarks/harness.py `DATA`) alone, in images/s, against the images/s the step consumes; and in
each round also `--steps` JAX steps fed by that pipeline (the loop's `next` and
`shard_batch` inside the timing) next to the steps on one fixed batch: if the pipeline kept
up, the two agree.

`--threads` sets PyTorch's intra-op threads; XLA:CPU uses its own pool over all cores.
PyTorch's OpenMP threads wait on each other at every op, so anything else running on the
machine slows PyTorch more than JAX: the load average at start and end is in the JSON.

GPU (not measured here): `--device cuda` puts the PyTorch side on the GPU (JAX runs on its
default backend); `--torch-compile` adds a third contender, the PyTorch nets under
`torch.compile`; every run reports XLA's FLOP count of the step (`cost_analysis`) and the
achieved FLOP/s, and `--peak-tflops` the fraction of that peak.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)
import numpy as np  # noqa: E402
import torch  # noqa: E402

# The PyTorch reference nets, which the faithfulness tests load too.
sys.path.insert(0, os.path.join(harness.REPO, "tests", "torch_reference"))

import torch_cyclegan  # noqa: E402
import torch_dcgan  # noqa: E402
import torch_pix2pix  # noqa: E402


def _nchw(x: np.ndarray, device: str) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)


def _adam(net):
  return torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))


def _compiled(net, compile_nets: bool):
  return torch.compile(net) if compile_nets else net


def torch_gan(config, batch, device, compile_nets):
  """The PyTorch DCGAN tutorial's step on tests/torch_reference/torch_dcgan.py's nets."""
  model = {28: "mnist", 64: "64"}[config.data.image_size]
  g, d = (net.to(device) for net in torch_dcgan.build(model))
  counts = {"generator": torch_dcgan.count_params(g),
            "discriminator": torch_dcgan.count_params(d)}
  step = torch_dcgan.make_torch_step(_compiled(g, compile_nets), _compiled(d, compile_nets),
                                     config.batch_size, torch_dcgan.SPECS[model].nz)
  real = _nchw(batch["image"], device)
  return (lambda: [loss.item() for loss in step(real)]), counts


def torch_pix2pix_step(config, batch, device, compile_nets):
  """`Pix2PixModel.optimize_parameters` (tests/torch_reference/torch_pix2pix.py)."""
  m = config.model
  g = torch_pix2pix.unet_generator(int(m.generator.split("_")[1]).bit_length() - 1,
                                   ngf=m.ngf, norm=m.norm, use_dropout=m.dropout > 0).to(device)
  d = torch_pix2pix.patch_discriminator(2 * config.data.channels, ndf=m.ndf,
                                        n_layers=m.n_layers, norm=m.norm).to(device)
  counts = {"generator": torch_pix2pix.count(g), "discriminator": torch_pix2pix.count(d)}
  g_opt, d_opt = _adam(g), _adam(d)
  g, d = _compiled(g, compile_nets), _compiled(d, compile_nets)
  a, b = _nchw(batch["input"], device), _nchw(batch["target"], device)
  return (lambda: torch_pix2pix.train_step(g, d, g_opt, d_opt, a, b, config.loss.lambda_l1),
          counts)


def torch_cyclegan_step(config, batch, device, compile_nets):
  """`CycleGANModel.optimize_parameters` (tests/torch_reference/torch_cyclegan.py)."""
  m = config.model
  if m.generator == "cycle_generator_64":
    generator = lambda: torch_cyclegan.cycle_generator_64(ngf=m.ngf, norm=m.norm)
  else:
    n_blocks = int(m.generator.removeprefix("resnet_").removesuffix("blocks"))
    generator = lambda: torch_cyclegan.resnet_generator(n_blocks, ngf=m.ngf, norm=m.norm)
  disc = lambda: torch_cyclegan.patch_discriminator(config.data.channels, ndf=m.ndf,
                                                    n_layers=m.n_layers, norm=m.norm)
  nets = [net().to(device) for net in (generator, generator, disc, disc)]
  counts = dict(zip(("G_A", "G_B", "D_A", "D_B"), map(torch_cyclegan.count, nets)))
  loss = config.loss
  model = torch_cyclegan.CycleGAN(*(_compiled(n, compile_nets) for n in nets),
                                  pool_size=loss.pool_size, lambda_a=loss.lambda_a,
                                  lambda_b=loss.lambda_b, lambda_identity=loss.lambda_identity)
  a, b = _nchw(batch["A"], device), _nchw(batch["B"], device)
  return (lambda: model.optimize_parameters(a, b)), counts


TORCH_STEPS = {"gan": torch_gan, "pix2pix": torch_pix2pix_step, "cyclegan": torch_cyclegan_step}


def _summary(times, batch):
  s = harness.median(times)
  return {"s_per_step": s, "images_per_s": batch / s, "step_times": times}


def bench_case(name: str, args) -> dict:
  case = harness.CASES[name]
  config = harness.load_config(case.config, case.overrides)
  b = config.batch_size
  if config.family not in TORCH_STEPS:
    raise SystemExit(f"{name}: no PyTorch step for family {config.family!r}")
  print(f"\n== {name}: {case.note}; {config.data.image_size}x{config.data.image_size}, "
        f"batch {b}", flush=True)
  batch = harness.synthetic_batch(config)
  jax_step = harness.JaxStep(config, batch)
  flops = jax_step.flops()
  print(f"jax: init {jax_step.init_s:.1f} s, compile {jax_step.compile_s:.1f} s, "
        f"{flops or 0:.3g} FLOP/step", flush=True)

  contenders = {"jax": jax_step}
  counts = {"jax": jax_step.param_counts()}
  torch.manual_seed(0)
  compile_options = [False, True] if args.torch_compile else [False]
  for compile_nets in compile_options:
    key = "torch_compile" if compile_nets else "torch"
    fn, counts[key] = TORCH_STEPS[config.family](config, batch, args.device, compile_nets)
    if args.device == "cuda":
      contenders[key] = lambda fn=fn: (fn(), torch.cuda.synchronize())
    else:
      contenders[key] = fn
    if counts[key] != counts["jax"]:
      raise SystemExit(f"{name}: parameter counts differ: jax {counts['jax']}, "
                       f"{key} {counts[key]}: not the same networks")
  print(f"parameters (equal): {counts['jax']}", flush=True)

  pipeline = None
  if args.pipeline and case.data is not None:
    iterator = harness.train_iterator(config, case)
    harness.timed(lambda: next(iterator), args.pipeline_warmup)  # preparation, buffers
    n = max(args.pipeline_batches, 1)
    times = harness.timed(lambda: next(iterator), n)
    pipeline = {"batches": n, "images_per_s_alone": n * b / sum(times),
                "s_per_batch_median": harness.median(times)}
    contenders["jax_fed"] = lambda: jax_step(jax_step.shard(next(iterator)))
    print(f"pipeline alone: {pipeline['images_per_s_alone']:.1f} images/s", flush=True)

  warmup = {k: sum(harness.timed(fn, args.warmup)) for k, fn in contenders.items()}
  rounds = []
  for r in range(args.rounds):
    times = {}
    for key, fn in contenders.items():
      step_times, usage = harness.timed_with_usage(fn, args.steps)
      times[key] = {**_summary(step_times, b), "system_s_per_step": usage["system_s_per_step"],
                    "minor_page_faults_per_step": usage["minor_page_faults_per_step"]}
    rd = {**times, "load_average": os.getloadavg()}
    for key in counts:
      if key != "jax":
        rd[f"ratio_vs_{key}"] = times["jax"]["images_per_s"] / times[key]["images_per_s"]
    rounds.append(rd)
    print(f"round {r + 1}/{args.rounds}: " + ", ".join(
        f"{k} {v['s_per_step']:.3f} s/step" for k, v in times.items()) + "; " + ", ".join(
        f"{k} {v:.2f}" for k, v in rd.items() if k.startswith("ratio")), flush=True)

  overall = {}
  for key in contenders:
    s = _summary([t for rd in rounds for t in rd[key]["step_times"]], b)
    del s["step_times"]
    for field in ("system_s_per_step", "minor_page_faults_per_step"):
      s[field] = harness.median([rd[key][field] for rd in rounds])
    overall[key] = s
  for key in counts:
    if key != "jax":
      overall[f"ratio_vs_{key}"] = (overall["jax"]["images_per_s"] /
                                    overall[key]["images_per_s"])
      overall[f"median_round_ratio_vs_{key}"] = harness.median(
          [rd[f"ratio_vs_{key}"] for rd in rounds])
  if flops:
    overall["jax_flops_per_step"] = flops
    overall["jax_tflop_per_s"] = flops / overall["jax"]["s_per_step"] / 1e12
    if args.peak_tflops:
      overall["jax_fraction_of_peak"] = overall["jax_tflop_per_s"] / args.peak_tflops
  if pipeline:
    pipeline["step_consumes_images_per_s"] = overall["jax"]["images_per_s"]
    pipeline["headroom"] = pipeline["images_per_s_alone"] / overall["jax"]["images_per_s"]
    pipeline["fed_over_fixed_s_per_step"] = (overall["jax_fed"]["s_per_step"] /
                                             overall["jax"]["s_per_step"])
  metrics = {k: float(v) for k, v in (jax_step.metrics or {}).items() if np.ndim(v) == 0}
  return {
      "note": case.note, "config": case.config, "overrides": list(case.overrides),
      "image_size": config.data.image_size, "batch": b, "param_counts": counts["jax"],
      "jax_init_s": jax_step.init_s, "jax_compile_s": jax_step.compile_s,
      "warmup_s": warmup, "rounds": rounds, "overall": overall, "pipeline": pipeline,
      "jax_last_metrics": metrics,
      "losses_finite": bool(all(np.isfinite(v) for v in metrics.values())),
  }


def markdown(out: dict) -> str:
  """The markdown tables of a result (docs/performance.md): the steps, and the pipeline
  where it was timed."""
  rows = ["| case | resolution | batch | jaxgan s/step | PyTorch s/step | jaxgan / PyTorch "
          "(median of rounds) | rounds | load average (1 min) |", "|---|---|---|---|---|---|---|---|"]
  pipe = ["| case | pipeline alone, images/s | the step consumes, images/s | headroom | "
          "step fed by the pipeline / on a fixed batch |", "|---|---|---|---|---|"]
  for name, res in out["results"].items():
    o, rounds = res["overall"], res["rounds"]
    per_round = ", ".join(f"{rd['ratio_vs_torch']:.2f}" for rd in rounds)
    loads = ", ".join(f"{rd['load_average'][0]:.0f}" for rd in rounds)
    rows.append(f"| {name} | {res['image_size']}x{res['image_size']} | {res['batch']} | "
                f"{o['jax']['s_per_step']:.3f} | {o['torch']['s_per_step']:.3f} | "
                f"**{o['median_round_ratio_vs_torch']:.2f}x** | {per_round} | {loads} |")
    if res["pipeline"]:
      p = res["pipeline"]
      pipe.append(f"| {name} | {p['images_per_s_alone']:,.0f} | "
                  f"{p['step_consumes_images_per_s']:,.1f} | {p['headroom']:,.0f}x | "
                  f"{p['fed_over_fixed_s_per_step']:.2f} |")
  return "\n".join(rows) + "\n\n" + "\n".join(pipe) + "\n"


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--case", default=",".join(harness.CASES),
                      help=f"comma-separated, from {', '.join(harness.CASES)}")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=5, help="timed steps per round and side")
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--threads", type=int, default=os.cpu_count(),
                      help="torch.set_num_threads (default: all cores)")
  parser.add_argument("--pipeline", action="store_true",
                      help="also time the input pipeline on the real local data")
  parser.add_argument("--pipeline-batches", type=int, default=20)
  parser.add_argument("--pipeline-warmup", type=int, default=5)
  parser.add_argument("--torch-compile", action="store_true",
                      help="also time the PyTorch nets under torch.compile")
  parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                      help="PyTorch's device (JAX uses its default backend)")
  parser.add_argument("--peak-tflops", type=float, default=None,
                      help="the chip's peak, for the fraction the JAX step reaches")
  parser.add_argument("--out", default=None, help="write the JSON here")
  parser.add_argument("--markdown", default=None, metavar="JSON",
                      help="only print the markdown tables of an earlier result")
  args = parser.parse_args(argv)
  if args.markdown:
    with open(args.markdown) as f:
      print(markdown(json.load(f)))
    return {}
  names = [n.strip() for n in args.case.split(",") if n.strip()]
  for n in names:
    if n not in harness.CASES:
      parser.error(f"unknown case {n!r}; choose from {', '.join(harness.CASES)}")

  torch.set_num_threads(args.threads)
  info = harness.machine_info(torch=torch.__version__, torch_threads=args.threads,
                              torch_device=args.device)
  print(f"{info['cpu_model']}, {info['cpu_count']} CPUs, load {info['load_average_start']}; "
        f"jax {info['jax']} ({info['jax_device']}), torch {info['torch']} "
        f"({args.threads} threads, {args.device})", flush=True)
  out = {"machine": info, "settings": vars(args), "results": {}}
  for n in names:  # the JSON is rewritten after each case: a run cut short keeps its cases
    out["results"][n] = bench_case(n, args)
    info["load_average_end"] = os.getloadavg()
    if args.out:
      with open(args.out, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")
  print("\n" + markdown(out))
  if args.out:
    print(f"wrote {args.out}")
  return out


if __name__ == "__main__":
  main()
