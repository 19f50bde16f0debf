"""Inception FID, KID and precision/recall under the clean-fid protocol (Parmar et al. 2022).

- Images are quantised to uint8 first (`visualize.to_uint8`: what a user saves), gray
  images repeated to three channels, then resized to 299 x 299 by PIL's bicubic filter on
  each channel as float32 ('F' mode), clipped to [0, 255] and not quantised again: clean-fid's
  'clean' resize (`preprocess`).
- Features: the pool3 features of the FID Inception (`jaxgan.metrics.inception`), jitted
  and batched (`Extractor`). The reference set's are computed once per data set, split,
  size and weights file and cached under the cache folder (`reference_features`).
- FID: `jaxgan.metrics.fid` on those features.
- KID (Binkowski et al. 2018): the unbiased MMD^2 with the kernel (x.y / d + 1)^3, averaged
  over `num_subsets` random subsets of `subset_size` from each side (clean-fid's 100 and
  1000; smaller sets: all of the smaller side); `kid_std` is the spread of the subsets'
  estimates, the standard error of one subset's.
- Precision and recall (Kynkaanniemi et al. 2019): the share of generated features inside
  the real manifold (the union of balls around each real feature reaching its k-th nearest
  real neighbour, k = 3) and of real features inside the generated manifold.
"""

import functools
import os
import tempfile
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan import metrics, visualize
from jaxgan.metrics import inception

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
PR_NEIGHBOURS = 3
# Rows of a distance matrix computed at once by precision/recall.
PR_BLOCK = 1000


def resize_channel(channel: np.ndarray, size: int = inception.INPUT_SIZE) -> np.ndarray:
  """One channel [h, w] -> float32 [size, size]: PIL bicubic on float32, clipped to
  [0, 255] (clean-fid's resize)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  image = Image.fromarray(np.asarray(channel, np.float32), mode="F")
  return np.clip(np.asarray(image.resize((size, size), Image.Resampling.BICUBIC)), 0, 255)


def preprocess(images) -> np.ndarray:
  """Images (uint8, or floats in [-1, 1]) [N, h, w, 1 or 3] -> float32 [N, 299, 299, 3]
  with values in [0, 255], as clean-fid's 'clean' mode feeds its network."""
  images = visualize.to_uint8(images)
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  return np.stack([np.stack([resize_channel(image[..., c]) for c in range(3)], -1)
                   for image in images])


@jax.jit
def _pool3(params, images):
  return inception.FIDInceptionV3().apply({"params": params}, images)


class Extractor:
  """pool3 features of images, jitted over fixed-size batches (the last one padded; one
  compilation per batch size, shared by every extractor)."""

  def __init__(self, params, weights_sha256: str, batch_size: int = 50):
    self.params = params
    self.weights_sha256 = weights_sha256
    self.batch_size = batch_size

  @classmethod
  def from_file(cls, path: str, batch_size: int = 50) -> "Extractor":
    return cls(inception.load_params(path), inception.sha256(path), batch_size)

  def features(self, images) -> np.ndarray:
    """float32 features [N, 2048] of images (uint8, or floats in [-1, 1]) of any size."""
    out = []
    for start in range(0, len(images), self.batch_size):
      batch = preprocess(images[start:start + self.batch_size])
      n = len(batch)
      if n < self.batch_size:
        batch = np.concatenate([batch, np.zeros((self.batch_size - n,) + batch.shape[1:],
                                                batch.dtype)])
      out.append(np.asarray(jax.device_get(_pool3(self.params, batch)))[:n])
    return np.concatenate(out) if out else np.zeros((0, inception.FEATURES), np.float32)


def reference_features(extractor: Extractor, key: str, load: Callable[[], np.ndarray]) -> np.ndarray:
  """The features of the reference images `load()` returns, cached under
  <cache>/reference/<key>-<weights>.npy: computed on the first call for `key` (a data set,
  split, image size and count) and weights file, read back after."""
  path = os.path.join(inception.cache_dir(), "reference",
                      f"{key}-{extractor.weights_sha256[:12]}.npy")
  if os.path.isfile(path):
    return np.load(path)
  features = extractor.features(load())
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, partial = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npy")
  with os.fdopen(fd, "wb") as f:
    np.save(f, features)
  os.replace(partial, path)
  return features


@jax.jit
def _mmd2(x, y):
  """Unbiased MMD^2 of samples x, y [m, d] under the kernel (a.b / d + 1)^3."""
  m, d = x.shape
  kernel = lambda a, b: (jnp.matmul(a, b.T, precision=lax.Precision.HIGHEST) / d + 1) ** 3
  kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
  within = (kxx.sum() - jnp.trace(kxx) + kyy.sum() - jnp.trace(kyy)) / (m * (m - 1))
  return within - 2 * kxy.sum() / (m * m)


def kid(features_a, features_b, num_subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> dict[str, float]:
  """{'kid': the mean of the subsets' MMD^2, 'kid_std': their standard deviation}."""
  a, b = np.asarray(features_a, np.float32), np.asarray(features_b, np.float32)
  m = min(len(a), len(b), subset_size)
  if m < 2:
    raise ValueError(f"KID needs at least 2 features a side, got {len(a)} and {len(b)}")
  rng = np.random.default_rng(seed)
  values = np.array([float(_mmd2(jnp.asarray(a[rng.choice(len(a), m, replace=False)]),
                                 jnp.asarray(b[rng.choice(len(b), m, replace=False)])))
                     for _ in range(num_subsets)])
  return {"kid": float(values.mean()), "kid_std": float(values.std())}


def _squared_distances(x, y):
  """|x_i - y_j|^2 [n, m], as |x|^2 + |y|^2 - 2 x.y clipped at 0."""
  cross = jnp.matmul(x, y.T, precision=lax.Precision.HIGHEST)
  return jnp.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None] - 2 * cross, 0)


def _blocks(x: np.ndarray, block: int) -> tuple[jax.Array, int]:
  """x [n, d] zero-padded to [ceil(n / block), block, d]."""
  n = len(x)
  rows = -(-n // block) * block
  padded = np.concatenate([x, np.zeros((rows - n,) + x.shape[1:], x.dtype)])
  return jnp.asarray(padded.reshape(-1, block, x.shape[1])), n


@functools.partial(jax.jit, static_argnums=2)
def _radii(blocks, points, k: int):
  """Squared distance of each row to its k-th nearest point (itself at rank 0)."""
  return lax.map(lambda b: -lax.top_k(-_squared_distances(b, points), k + 1)[0][:, k], blocks)


@jax.jit
def _covered(blocks, points, radii):
  """Whether each row lies within some point's ball (squared radius `radii`)."""
  return lax.map(lambda b: (_squared_distances(b, points) <= radii[None]).any(1), blocks)


def manifold_share(queries, points, k: int = PR_NEIGHBOURS, block: int = PR_BLOCK) -> float:
  """The share of `queries` inside the k-NN manifold of `points`."""
  points = np.asarray(points, np.float32)
  if len(points) <= k:
    raise ValueError(f"precision/recall with k={k} needs more than {k} features a side")
  point_blocks, n = _blocks(points, min(block, len(points)))
  radii = _radii(point_blocks, jnp.asarray(points), k).reshape(-1)[:n]
  query_blocks, q = _blocks(np.asarray(queries, np.float32), min(block, len(queries)))
  return float(np.mean(np.asarray(_covered(query_blocks, jnp.asarray(points), radii)).reshape(-1)[:q]))


def precision_recall(real, fake, k: int = PR_NEIGHBOURS) -> dict[str, float]:
  """Kynkaanniemi et al.'s improved precision and recall of `fake` against `real`."""
  return {"precision": manifold_share(fake, real, k), "recall": manifold_share(real, fake, k)}


def compare(generated: np.ndarray, reference: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
  """The metrics of `names` ("fid", "kid", "pr") between two feature sets."""
  result: dict[str, Any] = {}
  if "fid" in names:
    result["fid"] = metrics.fid(generated, reference)
  if "kid" in names:
    if min(len(generated), len(reference)) >= 2:
      result.update(kid(generated, reference))
    else:
      result["kid_skipped"] = "needs at least 2 images a side"
  if "pr" in names:
    if min(len(generated), len(reference)) > PR_NEIGHBOURS:
      result.update(precision_recall(reference, generated))
    else:
      result["pr_skipped"] = f"needs more than {PR_NEIGHBOURS} images a side"
  return result
