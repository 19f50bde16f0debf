"""The overfitting probe of several runs side by side (docs/experiments/small_data).

  .venv/bin/python benchmarks/runs/overfitting_report.py --runs runs/grumpy_overfit \
      --names none,deluxe,diffaugment --out docs/experiments/small_data

Each run is `<runs>/<name>/`, a workdir trained with `--config.data.holdout=k`; its
`/usr/bin/time -v` output, when kept as `<runs>/<name>.err`, gives the wall time. Writes
into `--out`: `results.md` / `results.csv` (one row per run: steps, wall time, the last
logged losses and probe values averaged over the last `--tail` log points, the largest
smoothed gap), `overfitting.png` (the runs' d_real_train, d_real_heldout and gap),
`losses.png` (their D and G losses), `grids.png` (their last sample grids, as
`jaxgan.compare` draws them), and each run's own `<name>_overfitting.png` and
`<name>_losses.png`.
"""

import argparse
import csv
import os
import re
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from jaxgan import compare, config as config_lib, visualize  # noqa: E402


def wall_seconds(err_path: str) -> float | None:
  """`Elapsed (wall clock) time` of a `/usr/bin/time -v` report, in seconds."""
  if not os.path.exists(err_path):
    return None
  with open(err_path, errors="replace") as f:
    match = re.search(r"Elapsed \(wall clock\) time.*?: ([\d:.]+)", f.read())
  if not match:
    return None
  seconds = 0.0
  for part in match.group(1).split(":"):
    seconds = 60 * seconds + float(part)
  return seconds


def smooth(values, width: int) -> np.ndarray:
  """Moving average over `width` points (shorter at the start)."""
  values = np.asarray(values, np.float64)
  sums = np.cumsum(np.insert(values, 0, 0.0))
  lo = np.maximum(np.arange(1, len(values) + 1) - width, 0)
  return (sums[1:] - sums[lo]) / (np.arange(1, len(values) + 1) - lo)


def curve(rows, name):
  points = [(r["step"], r[name]) for r in rows if name in r]
  return (np.array([p[0] for p in points]), np.array([p[1] for p in points])) if points else None


def summary(name, run_dir, err_path, tail: int, width: int) -> dict:
  rows = visualize.read_metrics(os.path.join(run_dir, "metrics.jsonl"))
  config = config_lib.load_json(run_dir)
  row = {"run": name, "steps": rows[-1]["step"], "holdout": config.data.get("holdout", 0),
         "wall_s": wall_seconds(err_path)}
  for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_real_train", "d_real_heldout",
              "d_real_gap"):
    c = curve(rows, key)
    row[key] = float(np.mean(c[1][-tail:])) if c else None
  gap = curve(rows, "d_real_gap")
  if gap:
    smoothed = smooth(gap[1], width)
    row["max_gap"] = float(smoothed.max())
    row["max_gap_step"] = int(gap[0][int(smoothed.argmax())])
  return row


COLUMNS = (("run", "{}"), ("steps", "{}"), ("holdout", "{}"), ("wall_s", "{:.0f}"),
           ("d_loss", "{:.3f}"), ("g_loss", "{:.3f}"), ("d_real", "{:.3f}"), ("d_fake", "{:.3f}"),
           ("d_real_train", "{:.3f}"), ("d_real_heldout", "{:.3f}"), ("d_real_gap", "{:.3f}"),
           ("max_gap", "{:.3f}"), ("max_gap_step", "{}"))


def write_table(rows, out: str) -> str:
  cells = [[("-" if r.get(k) is None else fmt.format(r[k])) for k, fmt in COLUMNS] for r in rows]
  header = [k for k, _ in COLUMNS]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(c) + " |" for c in cells]
  table = "\n".join(lines) + "\n"
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(table)
  with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(cells)
  return table


def plot_panels(runs, panels, out_path: str, width: int) -> None:
  """One panel per (title, metric names); every run a colour, each metric smoothed over
  `width` log points (the raw values faint behind)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
  styles = ("-", "--", ":")
  for ax, (title, names) in zip(axes[0], panels):
    for color, (run, rows) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], runs):
      for style, name in zip(styles, names):
        c = curve(rows, name)
        if c is None:
          continue
        ax.plot(c[0], c[1], color=color, alpha=0.15, linewidth=0.8)
        ax.plot(c[0], smooth(c[1], width), color=color, linestyle=style, label=f"{run} {name}")
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out_path, dpi=100)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", required=True)
  parser.add_argument("--names", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--tail", type=int, default=10, help="log points averaged for the table")
  parser.add_argument("--smooth", type=int, default=10, help="log points of the moving average")
  args = parser.parse_args()
  names = args.names.split(",")
  os.makedirs(args.out, exist_ok=True)
  rows = [summary(n, os.path.join(args.runs, n), os.path.join(args.runs, n + ".err"), args.tail,
                  args.smooth) for n in names]
  print(write_table(rows, args.out))
  runs = [(n, visualize.read_metrics(os.path.join(args.runs, n, "metrics.jsonl"))) for n in names]
  plot_panels(runs, [("gap = train - held-out", ["d_real_gap"]),
                     ("D on real images: train (-), held-out (--)",
                      ["d_real_train", "d_real_heldout"])],
              os.path.join(args.out, "overfitting.png"), args.smooth)
  plot_panels(runs, [("D loss", ["d_loss"]), ("G loss", ["g_loss"])],
              os.path.join(args.out, "losses.png"), args.smooth)
  compare.write_grids([{"name": n, "run_dir": os.path.join(args.runs, n)} for n in names],
                      os.path.join(args.out, "grids.png"))
  for n in names:
    run_dir = os.path.join(args.runs, n)
    for source, target in [("overfitting.png", "overfitting"), ("losses.png", "losses")]:
      if os.path.exists(os.path.join(run_dir, source)):
        shutil.copy(os.path.join(run_dir, source), os.path.join(args.out, f"{n}_{target}.png"))


if __name__ == "__main__":
  main()
