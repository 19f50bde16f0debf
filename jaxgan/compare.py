"""Train several experiments on an equal footing and compare them by their eval numbers.

  python -m jaxgan.compare --workdir runs/conditional_mnist \
      --configs configs/gan_mnist.py,configs/cgan_mnist.py,configs/cdcgan_mnist.py,configs/cgan_multiclass_mnist.py \
      --set data.manual_dir=../shared/data/mnist

GANs against diffusion, the same judge and number of samples for all (the table adds the
sampler and its seconds per 1,000 images, apart from compilation):

  python -m jaxgan.compare --workdir runs/gan_vs_diffusion \
      --configs configs/cdcgan_mnist.py,configs/cgan_multiclass_mnist.py,configs/ddpm_mnist_cpu.py,configs/ddpm_mnist_conditional_cpu.py \
      --set data.manual_dir=../shared/data/mnist

Each config trains in `<workdir>/<config name>` with `python -m jaxgan.main` (a child
process, so one run's memory and compiled code never leak into the next), is evaluated
with `jaxgan.evaluate`, and lands as a row of `<workdir>/results.md` and
`results.csv`; `<workdir>/grids.png` puts the final sample grids side by side.
Resumable: a run whose `eval.json` is at its last step is not trained or evaluated
again, and an interrupted one continues from its checkpoint. `--set name=value`
overrides a config field in every run (the same budget for all: e.g.
`--set num_train_steps=2000`). Training wall time (child process, compilation
included) is summed over sessions in `<run>/wall_time.json`.

For models without an evaluation (faces: no FID here), `--noevaluate` trains and compares
by what the runs wrote: the last logging interval's losses and D scores in the table,
`<workdir>/losses.png` with each run's D and G loss curves side by side, and
`--grid_steps` (comma-separated steps, e.g. one per epoch) puts each run's grids at those
steps in a row of `grids.png`:

  python -m jaxgan.compare --workdir runs/celeba --noevaluate \
      --configs configs/celeba_gan.py,configs/celeba_dcgan.py --grid_steps 0,93,186
"""

import csv
import json
import os
import subprocess
import sys
import time

from absl import app, flags

import jaxgan  # noqa: F401  (sets CPU XLA flags before JAX starts its backend)
from jaxgan import config as config_lib, errors

FLAGS = flags.FLAGS

# (column, how to read it from a row, format)
COLUMNS = (
    ("model", lambda r: r["name"], "{}"),
    ("steps", lambda r: r["steps"], "{}"),
    ("batch", lambda r: r["batch_size"], "{}"),
    ("train wall time (s)", lambda r: r["wall_seconds"], "{:.0f}"),
    ("sampler", lambda r: sampler_name(r), "{}"),
    # eval.json's `generation`: the generator's seconds, apart from its compilation.
    ("s per 1,000 samples", lambda r: r.get("generation", {}).get("seconds_per_1000"), "{:.1f}"),
    ("FID", lambda r: r.get("fid"), "{:.2f}"),
    ("FID of real train images", lambda r: r.get("fid_train_reference"), "{:.2f}"),
    ("accuracy", lambda r: r.get("accuracy"), "{:.3f}"),
    ("3->7", lambda r: r.get("pair_confusion", {}).get("3_vs_7", {}).get("3->7"), "{:.3f}"),
    ("7->3", lambda r: r.get("pair_confusion", {}).get("3_vs_7", {}).get("7->3"), "{:.3f}"),
    ("4->9", lambda r: r.get("pair_confusion", {}).get("4_vs_9", {}).get("4->9"), "{:.3f}"),
    ("9->4", lambda r: r.get("pair_confusion", {}).get("4_vs_9", {}).get("9->4"), "{:.3f}"),
    ("class entropy (bits)", lambda r: r.get("class_entropy_bits"), "{:.3f}"),
    ("confident share", lambda r: r.get("confident_share"), "{:.3f}"),
    # The last logging interval's means (metrics.jsonl).
    ("final D loss", lambda r: r.get("last_metrics", {}).get("d_loss"), "{:.3f}"),
    ("final G loss", lambda r: r.get("last_metrics", {}).get("g_loss"), "{:.3f}"),
    ("final D(x)", lambda r: r.get("last_metrics", {}).get("d_real"), "{:.3f}"),
    ("final D(G(z))", lambda r: r.get("last_metrics", {}).get("d_fake"), "{:.3f}"),
)


def sampler_name(row: dict) -> str | None:
  """How an evaluation drew its images: a diffusion run's sampler and steps (and guidance
  where it is conditional), a GAN's one generator pass; None before an evaluation."""
  if "num_samples" not in row:
    return None
  s = row.get("sampling")
  if not s:
    return "one G pass"
  name = "ancestral" if s["sampler"] == "ddpm" else "DDIM"
  guided = f", w {s['guidance']:g}" if row.get("accuracy") is not None else ""
  return f"{name} {s['steps']}{guided}"


def define_flags() -> None:
  """The command line's flags (only when run as a command)."""
  flags.DEFINE_string("workdir", None, "Folder of the runs and the results.")
  flags.DEFINE_list("configs", None, "Experiment config files, comma-separated.")
  flags.DEFINE_multi_string("set", [], "name=value: a config override for every run.")
  flags.DEFINE_integer("num", 10_000, "Generated images per evaluation.")
  flags.DEFINE_string("classifier_dir", None, "Workdir of the MNIST classifier.")
  flags.DEFINE_bool("evaluate", True, "Evaluate each run (jaxgan.evaluate); --noevaluate "
                    "for models without an evaluation: train and compare losses and grids.")
  flags.DEFINE_list("grid_steps", [], "Steps whose grids grids.png shows for each run "
                    "(default: the last grid).")
  flags.mark_flags_as_required(["workdir", "configs"])


def _read_json(path: str):
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  return None


def train(config_path: str, run_dir: str, overrides: list[str]) -> float:
  """Trains (or resumes) one run in a child process; returns its total wall seconds."""
  wall_path = os.path.join(run_dir, "wall_time.json")
  sessions = (_read_json(wall_path) or {}).get("sessions", [])
  command = [sys.executable, "-m", "jaxgan.main", f"--config={config_path}",
             f"--workdir={run_dir}", *[f"--config.{o}" for o in overrides]]
  print(" ".join(command), flush=True)
  start = time.time()
  result = subprocess.run(command, check=False)
  if result.returncode:
    raise SystemExit(f"error: training {config_path} failed (exit {result.returncode}); rerun "
                     "this command to resume it")
  sessions.append(time.time() - start)
  os.makedirs(run_dir, exist_ok=True)
  with open(wall_path, "w") as f:
    json.dump({"sessions": sessions, "seconds": sum(sessions)}, f, indent=2)
  return sum(sessions)


def _last_metrics(run_dir: str) -> dict:
  """The last row of the run's metrics.jsonl ({} before its first log)."""
  from jaxgan import visualize  # pylint: disable=import-outside-toplevel
  path = os.path.join(run_dir, "metrics.jsonl")
  rows = visualize.read_metrics(path) if os.path.exists(path) else []
  return rows[-1] if rows else {}


def run_one(config_path: str, workdir: str, overrides: list[str], num: int,
            classifier_dir: str | None, evaluate_run: bool = True) -> dict:
  """Trains and (with `evaluate_run`) evaluates one config in `<workdir>/<config name>`
  unless already done; returns its results row."""
  name = os.path.splitext(os.path.basename(config_path))[0]
  return train_and_evaluate(config_path, os.path.join(workdir, name), name, overrides, num,
                            classifier_dir, evaluate_run=evaluate_run)


def finished(run_dir: str, num: int, num_train_steps: int | None = None,
             evaluate_run: bool = True) -> dict | None:
  """The run's `eval.json` when it is at its last step (`num_train_steps`, default: the one
  its saved config asks for) with `num` samples, else None; without `evaluate_run`, {} when
  its metrics.jsonl has reached that step."""
  saved = _read_json(os.path.join(run_dir, "config.json"))
  if num_train_steps is None and saved:
    num_train_steps = saved["num_train_steps"]
  if not saved:
    return None
  if not evaluate_run:
    return {} if _last_metrics(run_dir).get("step") == num_train_steps else None
  done = _read_json(os.path.join(run_dir, "eval.json"))
  if done and done["step"] == num_train_steps and done.get("num_samples") == num:
    return done
  return None


def train_and_evaluate(config_path: str, run_dir: str, name: str, overrides: list[str],
                       num: int, classifier_dir: str | None,
                       num_train_steps: int | None = None, evaluate_run: bool = True) -> dict:
  """Trains (or resumes) and, with `evaluate_run`, evaluates one run unless `finished`;
  returns its results row."""
  from jaxgan import evaluate  # pylint: disable=import-outside-toplevel
  done = finished(run_dir, num, num_train_steps, evaluate_run)
  if done is None:
    train(config_path, run_dir, overrides)
    done = (evaluate.evaluate(run_dir, num=num, classifier_dir=classifier_dir)
            if evaluate_run else {})
  config = config_lib.load_json(run_dir)
  wall = _read_json(os.path.join(run_dir, "wall_time.json")) or {"seconds": float("nan")}
  # The run's own fields last: an evaluation's keys never stand in for them.
  return {**done, "name": name, "steps": config.num_train_steps,
          "batch_size": config.batch_size, "wall_seconds": wall["seconds"], "run_dir": run_dir,
          "last_metrics": _last_metrics(run_dir)}


def _cell(row, read, fmt) -> str:
  value = read(row)
  return "-" if value is None else fmt.format(value)


def markdown_table(rows: list[dict], columns=COLUMNS) -> str:
  """`rows` as a Markdown table of `columns` ((header, read, format) each)."""
  header = [c[0] for c in columns]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(_cell(r, read, fmt) for _, read, fmt in columns) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def write_results(rows: list[dict], workdir: str, columns=COLUMNS, notes: str = "") -> str:
  """results.md (returned; the table, then `notes`) and results.csv (the table) in `workdir`."""
  text = markdown_table(rows, columns) + notes
  with open(os.path.join(workdir, "results.md"), "w") as f:
    f.write(text)
  with open(os.path.join(workdir, "results.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow([c[0] for c in columns])
    writer.writerows([[_cell(r, read, fmt) for _, read, fmt in columns] for r in rows])
  return text


def write_grids(rows: list[dict], out_path: str, steps=()) -> None:
  """Each run's sample grids at `steps` in a row (default: its last grid), titled by run
  name and step; a run's last grid when `steps` is empty, side by side."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel

  panels = []  # one list of (title, image) per run
  for row in rows:
    folder = os.path.join(row["run_dir"], "samples")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if steps:
      names = [f"step_{int(s):06d}.png" for s in steps]
      missing = [n for n in names if not os.path.exists(os.path.join(folder, n))]
      if missing:
        raise SystemExit(f"error: {row['run_dir']} has no grid {missing[0]} (its grids are "
                         f"every sample_every_steps steps)")
    elif names:
      names = names[-1:]
    if names:
      panels.append([(f"{row['name']}, step {int(n[5:11])}", Image.open(os.path.join(folder, n)))
                     for n in names])
  if not panels:
    return
  if not steps:  # the last grids in one row
    panels = [[p[0] for p in panels]]
  nrow, ncol = len(panels), max(len(p) for p in panels)
  fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 4.4 * nrow), squeeze=False)
  for ax in axes.flat:
    ax.axis("off")
  for r, run_panels in enumerate(panels):
    for c, (title, image) in enumerate(run_panels):
      axes[r, c].imshow(image, cmap="gray")
      axes[r, c].set_title(title)
  fig.tight_layout()
  fig.savefig(out_path, dpi=100)
  plt.close(fig)


def write_losses(rows: list[dict], out_path: str, names=("d_loss", "g_loss")) -> None:
  """Each run's loss curves (metrics.jsonl), side by side, one panel per run."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  from jaxgan import visualize  # pylint: disable=import-outside-toplevel

  # A run folder holding only its results (config, eval and wall time, as copied from
  # elsewhere) has no curves to draw.
  rows = [r for r in rows if os.path.exists(os.path.join(r["run_dir"], "metrics.jsonl"))]
  if not rows:
    return
  fig, axes = plt.subplots(1, len(rows), figsize=(6 * len(rows), 4), squeeze=False)
  for ax, row in zip(axes[0], rows):
    visualize.curve_axes(ax, os.path.join(row["run_dir"], "metrics.jsonl"), names,
                         title=f"{row['name']}, batch {row['batch_size']}")
  fig.tight_layout()
  fig.savefig(out_path, dpi=100)
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  errors.exit_on_argument_problems(
      [p for p in map(config_lib.file_problem, FLAGS.configs) if p]
      + errors.argument_problems(positive={"num": FLAGS.num},
                                 output_dirs={"workdir": FLAGS.workdir,
                                              "classifier_dir": FLAGS.classifier_dir}))
  os.makedirs(FLAGS.workdir, exist_ok=True)
  rows = [run_one(c, FLAGS.workdir, FLAGS.set, FLAGS.num, FLAGS.classifier_dir, FLAGS.evaluate)
          for c in FLAGS.configs]
  print(write_results(rows, FLAGS.workdir))
  write_grids(rows, os.path.join(FLAGS.workdir, "grids.png"), FLAGS.grid_steps)
  write_losses(rows, os.path.join(FLAGS.workdir, "losses.png"))


if __name__ == "__main__":
  define_flags()
  app.run(main)
