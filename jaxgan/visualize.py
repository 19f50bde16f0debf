"""Pictures a run writes: image grids, loss curves, real next to fake.

One grid writer for every family: images in [-1, 1], NHWC, tiled row-major with a
2-pixel border, saved as PNG (and handed to TensorBoard by the loop).
"""

import json
import math
import os
from typing import Sequence

import numpy as np
from PIL import Image


def to_uint8(images) -> np.ndarray:
  """[-1, 1] floats -> uint8 in [0, 255]; uint8 passes through."""
  if np.asarray(images).dtype == np.uint8:
    return np.asarray(images)
  images = np.asarray(images, np.float32)
  return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images, ncol: int = 0, pad: int = 2) -> np.ndarray:
  """[N, H, W, C] in [-1, 1] (or uint8) -> one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C] image."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  ncol = ncol or math.ceil(math.sqrt(n))
  nrow = math.ceil(n / ncol)
  grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
  for i, image in enumerate(images):
    r, k = divmod(i, ncol)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = image
  return grid


def triplet_grid(inputs, outputs, targets, per_row: int = 2) -> np.ndarray:
  """input | output | target for each example, `per_row` triplets a row (pix2pix's
  comparison of a translation with the real image)."""
  triplets = np.stack([to_uint8(inputs), to_uint8(outputs), to_uint8(targets)], axis=1)
  return image_grid(triplets.reshape(-1, *triplets.shape[2:]), ncol=3 * min(per_row, len(triplets)))


def save_png(image: np.ndarray, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def read_metrics(path: str) -> list[dict]:
  """The rows of a metrics.jsonl; a line cut short (a run killed while writing it) is
  left out."""
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except ValueError:
        pass
  return rows


def metric_curves(metrics_path: str, names: Sequence[str]) -> dict[str, list]:
  """{name: [(step, value), ...]} of the metrics `names` that metrics.jsonl logged."""
  rows = read_metrics(metrics_path)
  curves = {name: [(r["step"], r[name]) for r in rows if name in r] for name in names}
  return {name: points for name, points in curves.items() if points}


def curve_axes(ax, metrics_path: str, names: Sequence[str], ylabel: str = "loss",
               title: str = "Losses during training") -> bool:
  """Draws the metrics `names` against the step on a matplotlib axes (`jaxgan.compare`
  puts several runs' side by side); False when none of them was logged."""
  curves = metric_curves(metrics_path, names)
  for name, points in curves.items():
    ax.plot(*zip(*points), label=name)
  ax.set_xlabel("step")
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  if curves:
    ax.legend()
  return bool(curves)


def plot_curves(metrics_path: str, names: Sequence[str], out_path: str, ylabel: str,
                title: str) -> bool:
  """The metrics `names` of metrics.jsonl against the step, in one plot; False (nothing
  written) when none of them was logged."""
  if not metric_curves(metrics_path, names):
    return False
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  fig, ax = plt.subplots(figsize=(8, 4))
  curve_axes(ax, metrics_path, names, ylabel, title)
  fig.tight_layout()
  fig.savefig(out_path, dpi=100)
  plt.close(fig)
  return True


def plot_losses(metrics_path: str, names: Sequence[str], out_path: str) -> None:
  """Loss curves against the step from metrics.jsonl, as the DCGAN tutorial plots G and D."""
  plot_curves(metrics_path, names, out_path, "loss", "Losses during training")


def plot_overfitting(metrics_path: str, names: Sequence[str], out_path: str) -> bool:
  """D's mean score of training and of held-out real images and their gap (`names`, the
  loop's OVERFIT_METRICS) against the step (`config.data.holdout`); False (nothing written)
  for a run without them."""
  return plot_curves(metrics_path, names, out_path,
                     "D's mean score of real images",
                     "D on training vs held-out real images (gap = train - held-out)")


def real_vs_fake(real, fake, out_path: str) -> None:
  """Real images on the left, generated on the right (the tutorial's last figure)."""
  left, right = image_grid(real), image_grid(fake)
  h = max(left.shape[0], right.shape[0])
  gap = np.full((h, 16, left.shape[2]), 255, np.uint8)
  pad = lambda g: np.pad(g, ((0, h - g.shape[0]), (0, 0), (0, 0)), constant_values=255)
  save_png(np.concatenate([pad(left), gap, pad(right)], axis=1), out_path)


def plot_confusion(matrix, out_path: str, title: str = "Requested digit vs classifier's digit") -> None:
  """A confusion matrix as a heat map with its counts written in (rows: asked for)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  matrix = np.asarray(matrix)
  k = matrix.shape[0]
  rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
  fig, ax = plt.subplots(figsize=(6.5, 5.5))
  image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
  for i in range(k):
    for j in range(k):
      if matrix[i, j]:
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black")
  ax.set_xticks(range(k))
  ax.set_yticks(range(k))
  ax.set_xlabel("classifier's prediction")
  ax.set_ylabel("requested class")
  ax.set_title(title)
  fig.colorbar(image, ax=ax, label="share of the row")
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  fig.savefig(out_path, dpi=100)
  plt.close(fig)
