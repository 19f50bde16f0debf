"""The DCGAN MNIST recipe in PyTorch: the reference that jaxgan's run is timed and judged
against (benchmarks/whole_run.py times it; with --samples its images are judged by
`jaxgan.evaluate --npz`, the same classifier as jaxgan's runs).

  .venv/bin/python benchmarks/reference/dcgan_mnist_torch.py --workdir runs/torch_dcgan \
      --data ../shared/data/mnist [--steps 2343] [--seed 0] [--samples 10000]

The PyTorch DCGAN tutorial's training loop (its `optimize` order: D on real then on the
detached fake, one backward, Adam step; then G, non-saturating, through the updated D)
on the nets of tests/torch_reference/torch_dcgan.py (model "mnist": jaxgan's 28x28
DCGAN, G 837,504 and D 431,872 parameters, the tutorial's N(0, 0.02) init), with
configs/dcgan_mnist.py's recipe: batch 128, Adam(2e-4, 0.5, 0.999), 2,343 steps (5
epochs of 60,000 images, the last partial batch of each epoch dropped as jaxgan drops it).

What the script does besides the steps is what jaxgan's loop does at the same cadence
(configs/dcgan_mnist.py): the losses' means logged every 50 steps (`metrics.jsonl` and a
progress line), a fixed-noise grid of 64 every 250 steps (`samples/step_XXXXXX.png`), and
a checkpoint (`torch.save` of both nets and both optimizers) every 500 steps and at the
end. Data: the four MNIST IDX .gz files of `--data` (the files TFDS checks), decoded once
into memory and served by a `DataLoader` (shuffled per epoch, `drop_last`, no worker
processes: the tensors are in memory, and workers would compete with the step for the
two cores); images scaled to [-1, 1] as the tutorial's `Normalize((0.5,), (0.5,))`.

At the end, `--samples` images from G in evaluation mode (BatchNorm's running statistics,
as `jaxgan.sample` draws) go to `<workdir>/samples.npz` (`images`: uint8 [N, 28, 28, 1]),
which `python -m jaxgan.evaluate --npz` judges with jaxgan's classifier;
`--sample_mode train` draws them with batch statistics instead, as the tutorial's grids
are drawn. `timings.json` splits the wall time as jaxgan's loop does: start-up (data,
nets), the loop from the first step to the last checkpoint, and the sampling.
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "torch_reference"))
import torch_dcgan  # noqa: E402

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


def read_idx_images(path: str) -> np.ndarray:
  """uint8 [N, 28, 28] from an IDX3 .gz file (the MNIST format: magic 2051, count, rows,
  cols, then the pixels)."""
  with gzip.open(path, "rb") as f:
    data = f.read()
  magic, n, rows, cols = np.frombuffer(data[:16], ">i4")
  if magic != 2051:
    raise SystemExit(f"error: {path} is not an IDX image file (magic {magic})")
  return np.frombuffer(data[16:], np.uint8).reshape(n, rows, cols)


def grid_png(images: torch.Tensor, path: str, ncol: int = 8) -> None:
  """[N, 1, H, W] in [-1, 1] tiled ncol wide with a 2-pixel border, as a PNG."""
  x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()[:, 0]
  n, h, w = x.shape
  rows = -(-n // ncol)
  canvas = np.zeros((rows * (h + 2) + 2, ncol * (w + 2) + 2), np.uint8)
  for i in range(n):
    r, c = divmod(i, ncol)
    canvas[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + c * (w + 2):2 + c * (w + 2) + w] = x[i]
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(canvas).save(path)


def draw_samples(g, args) -> None:
  """`args.samples` images of G (`args.sample_mode`) into <workdir>/samples.npz (`images`:
  uint8 [N, 28, 28, 1])."""
  g.train(args.sample_mode == "train")
  out = []
  with torch.no_grad():
    for i in range(0, args.samples, 500):
      n = min(500, args.samples - i)
      x = g(torch.randn(n, torch_dcgan.SPECS["mnist"].nz, 1, 1))
      out.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())
  np.savez_compressed(os.path.join(args.workdir, "samples.npz"),
                      images=np.concatenate(out).transpose(0, 2, 3, 1))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--data", required=True, help="folder of the MNIST IDX .gz files")
  parser.add_argument("--steps", type=int, default=5 * 60_000 // 128)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--log_every", type=int, default=50)
  parser.add_argument("--sample_every", type=int, default=250)
  parser.add_argument("--checkpoint_every", type=int, default=500)
  parser.add_argument("--samples", type=int, default=0, help="images for samples.npz at the end")
  parser.add_argument("--sample_mode", choices=("eval", "train"), default="eval")
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  parser.add_argument("--sample_from", default=None,
                      help="a checkpoint (.pt) of an earlier run: no training, only --samples "
                           "images from its G into <workdir>/samples.npz (noise seeded by --seed)")
  args = parser.parse_args()
  if args.sample_from:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    g, _ = torch_dcgan.build("mnist")
    g.load_state_dict(torch.load(args.sample_from)["G"])
    os.makedirs(args.workdir, exist_ok=True)
    draw_samples(g, args)
    return
  if not os.path.isfile(os.path.join(args.data, TRAIN_IMAGES)):
    raise SystemExit(f"error: --data={args.data} has no {TRAIN_IMAGES} (the MNIST IDX files)")
  torch.set_num_threads(args.threads)
  os.makedirs(args.workdir, exist_ok=True)
  times, start = {}, time.perf_counter()

  torch.manual_seed(args.seed)
  images = torch.from_numpy(read_idx_images(os.path.join(args.data, TRAIN_IMAGES)).copy())
  dataset = torch.utils.data.TensorDataset(images)
  loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True,
                                       drop_last=True, num_workers=0)
  times["data"] = time.perf_counter() - start
  g, d = torch_dcgan.build("mnist")
  spec = torch_dcgan.SPECS["mnist"]
  step = torch_dcgan.make_torch_step(g, d, args.batch, spec.nz)
  fixed_noise = torch.randn(64, spec.nz, 1, 1)
  times["nets"] = time.perf_counter() - start - times["data"]

  def checkpoint(at):
    path = os.path.join(args.workdir, "checkpoints", f"{at}.pt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save({"step": at, "G": g.state_dict(), "D": d.state_dict()}, path)

  metrics = open(os.path.join(args.workdir, "metrics.jsonl"), "w")
  losses, count, loop_start, last_log = [], 0, time.perf_counter(), time.perf_counter()
  while count < args.steps:
    for (batch,) in loader:
      real = (batch.unsqueeze(1).float() / 127.5 - 1.0)
      losses.append(step(real))
      count += 1
      if count % args.log_every == 0 or count == args.steps:
        err_d, err_g = (float(torch.stack(x).mean()) for x in zip(*losses))
        now = time.perf_counter()
        rate = len(losses) / (now - last_log)
        losses, last_log = [], now
        metrics.write(json.dumps({"step": count, "d_loss": err_d, "g_loss": err_g,
                                  "steps_per_sec": rate}) + "\n")
        metrics.flush()
        print(f"step {count}/{args.steps} | d_loss {err_d:.4g} g_loss {err_g:.4g} | "
              f"{rate:.2f} steps/s", flush=True)
      if count % args.sample_every == 0 or count == args.steps:
        with torch.no_grad():
          grid_png(g(fixed_noise), os.path.join(args.workdir, "samples", f"step_{count:06d}.png"))
      if count % args.checkpoint_every == 0 or count == args.steps:
        checkpoint(count)
      if count == args.steps:
        break
  metrics.close()
  times["loop"] = time.perf_counter() - loop_start

  sample_start = time.perf_counter()
  if args.samples:
    draw_samples(g, args)
  times["sampling"] = time.perf_counter() - sample_start
  with open(os.path.join(args.workdir, "timings.json"), "w") as f:
    json.dump({"startup": {"data": round(times["data"], 4), "nets": round(times["nets"], 4),
                           "total": round(times["data"] + times["nets"], 4)},
               "loop": {"steps": args.steps, "seconds": round(times["loop"], 4),
                        "steps_per_sec": round(args.steps / times["loop"], 4)},
               "sampling": round(times["sampling"], 4), "seed": args.seed,
               "sample_mode": args.sample_mode, "threads": args.threads,
               "torch": torch.__version__}, f, indent=2)


if __name__ == "__main__":
  main()
