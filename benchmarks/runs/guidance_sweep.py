"""Classifier-free guidance's trade-off: one conditional diffusion run judged at several
guidance weights (docs/experiments/ddpm_mnist).

  .venv/bin/python benchmarks/runs/guidance_sweep.py \
      --workdir runs/gan_vs_diffusion/ddpm_mnist_conditional_cpu --weights 0,1,2,4 \
      --num 10000 --out docs/experiments/ddpm_mnist

For each weight w, `jaxgan.evaluate` (the same judge and seed for all, the run's sampler)
draws `--num` images of the run's latest checkpoint with eps_u + w (eps_c - eps_u) and
writes `<out>/guidance_w<w>.eval.json`; an existing file of the same step and number of
samples is read instead of evaluated again. Then `<out>/guidance.md` (the table:
accuracy, its lowest class, FID, confident share, class entropy and seconds per 1,000
images for each w), `guidance.json` (the same rows) and `guidance.png` (accuracy and FID
against w).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from jaxgan import compare, evaluate  # noqa: E402

COLUMNS = (
    ("w", lambda r: r["guidance"], "{:g}"),
    ("accuracy", lambda r: r["accuracy"], "{:.4f}"),
    ("lowest class accuracy", lambda r: min(r["per_class_accuracy"]), "{:.4f}"),
    ("lowest class", lambda r: r["per_class_accuracy"].index(min(r["per_class_accuracy"])), "{}"),
    ("FID", lambda r: r["fid"], "{:.2f}"),
    ("confident share", lambda r: r["confident_share"], "{:.3f}"),
    ("class entropy (bits)", lambda r: r["class_entropy_bits"], "{:.3f}"),
    ("s per 1,000 samples", lambda r: r["generation"]["seconds_per_1000"], "{:.1f}"),
)


def evaluation_at(workdir: str, out: str, w: float, num: int, classifier_dir) -> dict:
  """The evaluation of `workdir` at guidance `w`: read from `out` when done, else run."""
  path = os.path.join(out, f"guidance_w{w:g}.eval.json")
  if os.path.exists(path):
    with open(path) as f:
      done = json.load(f)
    if done.get("num_samples") == num and done.get("step") == latest_step(workdir):
      return done
  return evaluate.evaluate(workdir, num=num, classifier_dir=classifier_dir, out=path, guidance=w)


def latest_step(workdir: str) -> int:
  from jaxgan import checkpoint  # pylint: disable=import-outside-toplevel
  return checkpoint.Checkpoints(os.path.join(workdir, "checkpoints")).latest_step()


def plot(rows: list[dict], path: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  ws = [r["guidance"] for r in rows]
  fig, left = plt.subplots(figsize=(5.5, 3.8))
  left.plot(ws, [r["accuracy"] for r in rows], "o-", color="tab:blue", label="accuracy")
  left.plot(ws, [min(r["per_class_accuracy"]) for r in rows], "s--", color="tab:blue",
            label="lowest class")
  left.set_xlabel("guidance weight w")
  left.set_ylabel("accuracy (the MNIST classifier)", color="tab:blue")
  right = left.twinx()
  right.plot(ws, [r["fid"] for r in rows], "^-", color="tab:red", label="FID")
  right.set_ylabel("digit FID", color="tab:red")
  left.legend(loc="lower center")
  left.set_title(f"guidance, {rows[0]['num_samples']:,} samples per w")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="a conditional diffusion run")
  parser.add_argument("--weights", default="0,1,2,4", help="guidance weights, comma-separated")
  parser.add_argument("--num", type=int, default=10_000, help="samples per weight")
  parser.add_argument("--classifier_dir", default=None)
  parser.add_argument("--out", required=True, help="folder of the results")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  rows = []
  for w in (float(x) for x in args.weights.split(",")):
    result = evaluation_at(args.workdir, args.out, w, args.num, args.classifier_dir)
    rows.append({"guidance": w, **result})
  table = compare.markdown_table(rows, COLUMNS)
  with open(os.path.join(args.out, "guidance.md"), "w") as f:
    f.write(table)
  keep = ("guidance", "step", "num_samples", "accuracy", "per_class_accuracy", "fid",
          "fid_train_reference", "confident_share", "class_entropy_bits", "generation",
          "sampling")
  evaluate.write_json(os.path.join(args.out, "guidance.json"),
                      [{k: r[k] for k in keep if k in r} for r in rows])
  plot(rows, os.path.join(args.out, "guidance.png"))
  print(table)


if __name__ == "__main__":
  main()
