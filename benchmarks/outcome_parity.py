"""Outcome parity: the DCGAN MNIST recipe (configs/dcgan_mnist.py) trained in jaxgan and in
the PyTorch reference (reference/dcgan_mnist_torch.py: the DCGAN tutorial's loop on the
same nets) for several seeds, every run judged on the same number of samples by the same
classifier (`jaxgan.evaluate`: digit FID against MNIST's test set and the confident share),
and the two distributions side by side.

  .venv/bin/python benchmarks/outcome_parity.py --root runs/parity_5ep \\
      --data ../shared/data/mnist --seeds 0 1 2 --epochs 5 \\
      --out benchmarks/results/outcome_parity_5ep_cpu.json

Each seed trains `<root>/jax_s<seed>` (`python -m jaxgan.main`, `--config.seed`) and
`<root>/torch_s<seed>` (the reference script, `--seed`), one after the other, never side by
side (two cores). jaxgan's runs keep a moving average of G (`--ema_decay`, default 0.999;
0 turns it off): the average is read by no step, so what trains is the recipe, and each run
is judged twice: with its trained weights (`eval_raw.json`, the parity row) and with the
average (`eval_ema.json`, what the option is worth). The reference's samples come from G in
evaluation mode, as `jaxgan.evaluate` draws jaxgan's (`samples.npz`, judged with `--npz`).

`--also_at 8500 9000` judges both sides of every finished run at those earlier checkpoints
too (jaxgan keeps its last three; the reference saves every 500 steps), trained weights
only: a run's last step is one draw of a curve that moves from checkpoint to checkpoint,
and a gap between the sides that holds at every checkpoint is not that noise.

A run or a judgement whose output is already under --root is not redone, so the script
picks up after an interruption. Wall times are each run's own `timings.json`: start-up and
the loop (the loop logs, draws grids and saves checkpoints at the same cadence on both
sides). The JSON records the judge (its folder and test accuracy) and the machine; compare
only figures judged by one classifier, since a retrained judge moves every FID a little.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/
import harness  # noqa: E402  (jaxgan's CPU XLA flags before JAX starts)

import numpy as np  # noqa: E402

from jaxgan import evaluate, visualize  # noqa: E402

SIDES = ("jaxgan", "pytorch")
TORCH_SCRIPT = os.path.join(harness.REPO, "benchmarks", "reference", "dcgan_mnist_torch.py")


def recipe_steps(epochs: int) -> int:
  """The recipe's steps for `epochs` (configs/dcgan_mnist.py's count: 5 epochs are 2,343
  steps of 128 images)."""
  return epochs * 60_000 // 128


def done(path: str) -> bool:
  return os.path.exists(path)


def trained(workdir: str, steps: int) -> bool:
  """Whether a jaxgan run has its final checkpoint (a run stopped early has written its
  timings.json too, and resumes when trained again)."""
  return os.path.isdir(os.path.join(workdir, "checkpoints", str(steps)))


def run(cmd: list[str], log: str) -> None:
  """Runs `cmd` from the repository root with its output added to `log`."""
  with open(log, "a") as f:  # a resumed run adds to its log
    code = subprocess.run(cmd, cwd=harness.REPO, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
  if code:
    raise SystemExit(f"error: {' '.join(cmd[:4])} ... exited with {code}; see {log}")


def train_jaxgan(workdir: str, args, seed: int) -> None:
  cmd = [sys.executable, "-m", "jaxgan.main", "--config", "configs/dcgan_mnist.py",
         "--workdir", workdir, f"--config.data.manual_dir={args.data}",
         f"--config.seed={seed}", f"--config.num_train_steps={recipe_steps(args.epochs)}"]
  if args.ema_decay:
    cmd.append(f"--config.ema_decay={args.ema_decay}")
  run(cmd, workdir + ".log")


def train_torch(workdir: str, args, seed: int) -> None:
  run([sys.executable, TORCH_SCRIPT, "--workdir", workdir, "--data", args.data,
       "--seed", str(seed), "--steps", str(recipe_steps(args.epochs)),
       "--samples", str(args.samples)], workdir + ".log")


def judge(target: list[str], out: str, args) -> None:
  run([sys.executable, "-m", "jaxgan.evaluate", *target, f"--num={args.samples}",
       f"--out={out}"], out[:-len(".json")] + ".log")


def judged_grids(jax_dir: str, torch_dir: str, steps: int, raw: bool) -> None:
  """`judged_grid.png` in each run folder: 64 samples drawn as the judged ones are (jaxgan:
  `jaxgan.sample`, G in evaluation mode, its trained weights when `raw`; PyTorch: the first
  64 of its samples.npz), so that the two pictures show what the two FIDs measure."""
  if trained(jax_dir, steps) and not done(os.path.join(jax_dir, "judged_grid.png")):
    run([sys.executable, "-m", "jaxgan.sample", "--workdir", jax_dir, "--num", "64",
         "--out", os.path.join(jax_dir, "judged_grid.npz"),
         "--grid", os.path.join(jax_dir, "judged_grid.png")] + (["--raw_weights"] if raw else []),
        os.path.join(jax_dir, "judged_grid.log"))
  npz = os.path.join(torch_dir, "samples.npz")
  if done(npz) and not done(os.path.join(torch_dir, "judged_grid.png")):
    with np.load(npz) as f:
      visualize.save_png(visualize.image_grid(f["images"][:64]),
                         os.path.join(torch_dir, "judged_grid.png"))


def wall(workdir: str) -> dict:
  """Start-up and loop seconds of a run, from its timings.json (of its last session: a
  resumed jaxgan run's `first_step` is past 1)."""
  with open(os.path.join(workdir, "timings.json")) as f:
    t = json.load(f)
  return {"startup_s": t["startup"]["total"], "loop_s": t["loop"]["seconds"],
          "first_step": t["loop"].get("first_step", 1), "steps": t["loop"]["steps"],
          "steps_per_sec": t["loop"]["steps_per_sec"]}


def judged_row(target: list[str], eval_path: str, workdir: str, seed: int, args) -> dict:
  """The run's figures: `jaxgan.evaluate` of `target` into `eval_path` unless it is there,
  and the run's wall times."""
  if not done(eval_path):
    judge(target, eval_path, args)
  with open(eval_path) as f:
    result = json.load(f)
  return {"seed": seed, "fid": result["fid"], "confident_share": result["confident_share"],
          "class_entropy_bits": result["class_entropy_bits"],
          "fid_train_reference": result["fid_train_reference"],
          "num_samples": result["num_samples"],
          **wall(workdir)}


def judged_jaxgan(workdir: str, run_dir: str, seed: int, args, ema: bool = False) -> dict:
  """A jaxgan run judged from `workdir` (the run folder, or a view of one of its
  checkpoints): its trained weights into `eval_raw.json`, or with `ema` its moving average
  into `eval_ema.json`; wall times from `run_dir`."""
  raw = ["--raw_weights"] if args.ema_decay and not ema else []
  return judged_row(["--workdir", workdir, *raw],
                    os.path.join(workdir, "eval_ema.json" if ema else "eval_raw.json"),
                    run_dir, seed, args)


def judged_torch(folder: str, run_dir: str, seed: int, args) -> dict:
  """The reference's `<folder>/samples.npz` judged into `<folder>/eval.json`; wall times
  from `run_dir`."""
  return judged_row(["--npz", os.path.join(folder, "samples.npz"), f"--manual_dir={args.data}"],
                    os.path.join(folder, "eval.json"), run_dir, seed, args)


def judged_at(step: int, jax_dir: str, torch_dir: str, seed: int, args) -> dict:
  """Both sides of one seed judged at an earlier checkpoint `step` (`--also_at`): jaxgan's
  trained weights through a folder that holds only that checkpoint (and the run's config),
  the reference's G from its `<step>.pt` (`--sample_from`). {} where a side lacks it."""
  rows = {}
  checkpoint = os.path.join(jax_dir, "checkpoints", str(step))
  if os.path.isdir(checkpoint):
    view = f"{jax_dir}_at{step}"
    os.makedirs(os.path.join(view, "checkpoints"), exist_ok=True)
    for name, target in (("config.json", os.path.join(jax_dir, "config.json")),
                         (os.path.join("checkpoints", str(step)), checkpoint)):
      if not os.path.lexists(os.path.join(view, name)):
        os.symlink(target, os.path.join(view, name))
    rows["jaxgan"] = judged_jaxgan(view, jax_dir, seed, args)
  pt = os.path.join(torch_dir, "checkpoints", f"{step}.pt")
  if os.path.exists(pt):
    view = f"{torch_dir}_at{step}"
    if not done(os.path.join(view, "samples.npz")):
      run([sys.executable, TORCH_SCRIPT, "--workdir", view, "--data", args.data,
           "--seed", str(seed), "--samples", str(args.samples), "--sample_from", pt],
          view + ".log")
    rows["pytorch"] = judged_torch(view, torch_dir, seed, args)
  return rows


def spread(rows: list[dict]) -> dict:
  """Mean, sample standard deviation, min and max of FID and confident share."""
  out = {}
  for key in ("fid", "confident_share"):
    values = [r[key] for r in rows]
    out[key] = {"mean": statistics.mean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values), "max": max(values)}
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", required=True, help="folder of the runs (one per side and seed)")
  parser.add_argument("--data", required=True, help="folder of the four MNIST .gz files")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--epochs", type=int, default=5)
  parser.add_argument("--samples", type=int, default=10_000)
  parser.add_argument("--ema_decay", type=float, default=0.999)
  parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES),
                      help="train and judge only these (the other's runs, where present, "
                      "are still summarised)")
  parser.add_argument("--also_at", type=int, nargs="*", default=[],
                      help="earlier checkpoints (steps) of every finished run to judge too, "
                           "on both sides: the end of a run is one draw of a noisy curve")
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  args.data = os.path.abspath(args.data)
  os.makedirs(args.root, exist_ok=True)
  steps = recipe_steps(args.epochs)
  sides = {"jaxgan": [], "jaxgan_ema": [], "pytorch": []}
  at_steps = {}  # --also_at: {step: {side: rows}}
  for seed in args.seeds:
    jax_dir = os.path.abspath(os.path.join(args.root, f"jax_s{seed}"))
    if "jaxgan" in args.sides and not trained(jax_dir, steps):
      print(f"jaxgan seed {seed}: training", flush=True)
      train_jaxgan(jax_dir, args, seed)
    if trained(jax_dir, steps):
      sides["jaxgan"].append(judged_jaxgan(jax_dir, jax_dir, seed, args))
      if args.ema_decay:
        sides["jaxgan_ema"].append(judged_jaxgan(jax_dir, jax_dir, seed, args, ema=True))
    torch_dir = os.path.abspath(os.path.join(args.root, f"torch_s{seed}"))
    finished = done(os.path.join(torch_dir, "timings.json"))  # written at its end only
    if "pytorch" in args.sides and not finished:
      print(f"pytorch seed {seed}: training", flush=True)
      train_torch(torch_dir, args, seed)
      finished = True
    if finished:
      sides["pytorch"].append(judged_torch(torch_dir, torch_dir, seed, args))
    for step in args.also_at:
      for name, row in judged_at(step, jax_dir, torch_dir, seed, args).items():
        at_steps.setdefault(str(step), {}).setdefault(name, []).append(row)
    judged_grids(jax_dir, torch_dir, steps, raw=bool(args.ema_decay))
    print(f"seed {seed}: " + ", ".join(f"{name} FID {rows[-1]['fid']:.2f}"
                                        for name, rows in sides.items()
                                        if rows and rows[-1]["seed"] == seed), flush=True)
  sides = {k: v for k, v in sides.items() if v}
  judge_dir = evaluate.default_classifier_dir()
  with open(os.path.join(judge_dir, "eval.json")) as f:
    judge_accuracy = json.load(f)["test_accuracy"]
  result = {
      "recipe": {"config": "configs/dcgan_mnist.py", "epochs": args.epochs,
                 "steps": steps, "batch_size": 128,
                 "ema_decay": args.ema_decay or None},
      "judge": {"folder": judge_dir, "test_accuracy": judge_accuracy,
                "samples_per_run": args.samples},
      "runs": sides,
      "summary": {k: spread(v) for k, v in sides.items()},
      "also_at": {step: {name: {"runs": rows, "summary": spread(rows)}
                         for name, rows in by_side.items()}
                  for step, by_side in at_steps.items()},
      "machine": harness.machine_info(),
  }
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)
  print("| side | seed | FID | confident share | class entropy (bits) | start-up s | loop s | steps/s |")
  print("|---|---|---|---|---|---|---|---|")
  for name, rows in sides.items():
    for r in rows:
      print(f"| {name} | {r['seed']} | {r['fid']:.2f} | {r['confident_share']:.3f} | "
            f"{r['class_entropy_bits']:.3f} | {r['startup_s']:.1f} | {r['loop_s']:.0f} | "
            f"{r['steps_per_sec']:.2f} |")
  for name, s in result["summary"].items():
    print(f"{name:>11}: FID {s['fid']['mean']:.2f} +- {s['fid']['std']:.2f} "
          f"[{s['fid']['min']:.2f}, {s['fid']['max']:.2f}], confident share "
          f"{s['confident_share']['mean']:.3f} +- {s['confident_share']['std']:.3f}")
  for step, by_side in result["also_at"].items():
    print(f"at step {step}: " + ", ".join(
        f"{name} FID {v['summary']['fid']['mean']:.2f} +- {v['summary']['fid']['std']:.2f}"
        for name, v in by_side.items()))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
