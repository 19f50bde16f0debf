"""Differentiable Augmentation (DiffAugment; Zhao, Liu, Lin, Zhu and Han, NeurIPS 2020).

The discriminator sees T(x) for real and generated images alike, D(T(x)) and D(T(G(z))),
in its own step and in the generator's, and the generator's gradient flows back through
T; with so few images (the course's 204 grumpy cats) D would otherwise memorise them.
This follows mit-han-lab/data-efficient-gans `DiffAugment_pytorch.py` function by
function, on NHWC images in [-1, 1] (the reference's range too), with one random draw per
example and per function:

- `color`: brightness x + U(-0.5, 0.5); saturation (x - mean over channels) * U(0, 2) +
  that mean; contrast (x - mean over H, W, C) * U(0.5, 1.5) + that mean;
- `translation`: shift by integers drawn from [-s, s] per axis, s = int(side * 0.125 +
  0.5) (8 px at 64x64); pixels shifted in from outside are zero;
- `cutout`: zero a square of side int(side * 0.5 + 0.5) (32 at 64x64) whose centre is
  drawn from [0, side] (even sides; [0, side - 1] for odd ones), clipped at the borders.

A policy is any comma-separated list of these words, applied in its order
(`"color,translation,cutout"`, the paper's choice for small data). Every function is a
pure function of (images, key), differentiable in the images.
"""

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxgan.errors import ConfigError

Array = jax.Array

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _per_example(key: Array, images: Array, low: float = 0.0, high: float = 1.0) -> Array:
  """U(low, high) of shape [N, 1, 1, 1]: one draw per example (torch.rand(N, 1, 1, 1))."""
  return jax.random.uniform(key, (images.shape[0], 1, 1, 1), images.dtype, low, high)


def rand_brightness(images: Array, key: Array) -> Array:
  return images + _per_example(key, images, -0.5, 0.5)


def rand_saturation(images: Array, key: Array) -> Array:
  mean = images.mean(axis=-1, keepdims=True)  # over channels (the reference's dim=1)
  return (images - mean) * _per_example(key, images, 0.0, 2.0) + mean


def rand_contrast(images: Array, key: Array) -> Array:
  mean = images.mean(axis=(1, 2, 3), keepdims=True)
  return (images - mean) * _per_example(key, images, 0.5, 1.5) + mean


def translation_shift(side: int, ratio: float = TRANSLATION_RATIO) -> int:
  """The largest shift, int(side * ratio + 0.5) as the reference rounds it."""
  return int(side * ratio + 0.5)


def translation_draws(key: Array, images: Array, ratio: float = TRANSLATION_RATIO) -> Array:
  """int32 [N, 2]: each example's (row, column) shift, uniform in [-s, s] per axis."""
  shifts = [translation_shift(side, ratio) for side in images.shape[1:3]]
  low, high = jnp.array([-s for s in shifts]), jnp.array([s + 1 for s in shifts])
  return jax.random.randint(key, (images.shape[0], 2), low, high)


def translate(images: Array, shifts: Array) -> Array:
  """Output pixel (i, j) of example n is input pixel (i + shifts[n, 0], j + shifts[n, 1]),
  zero where that lies outside: the reference's gather from the padded image (its grid +
  translation), so a positive draw moves the content up / left."""
  h, w = images.shape[1:3]
  rows = jnp.arange(h)[None, :] + shifts[:, :1]  # [N, H]
  cols = jnp.arange(w)[None, :] + shifts[:, 1:]  # [N, W]
  inside = (((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :])
  gathered = jax.vmap(lambda x, r, c: x[jnp.clip(r, 0, h - 1)][:, jnp.clip(c, 0, w - 1)])(
      images, rows, cols)
  return jnp.where(inside[..., None], gathered, 0)


def rand_translation(images: Array, key: Array, ratio: float = TRANSLATION_RATIO) -> Array:
  return translate(images, translation_draws(key, images, ratio))


def cutout_size(side: int, ratio: float = CUTOUT_RATIO) -> int:
  """The square's side, int(side * ratio + 0.5) as the reference rounds it."""
  return int(side * ratio + 0.5)


def cutout_draws(key: Array, images: Array, ratio: float = CUTOUT_RATIO) -> Array:
  """int32 [N, 2]: each example's square centre (row, column), uniform in [0, side] for an
  even square side and [0, side - 1] for an odd one (the reference's
  randint(0, side + (1 - size % 2)))."""
  sizes = [cutout_size(side, ratio) for side in images.shape[1:3]]
  high = jnp.array([side + 1 - size % 2 for side, size in zip(images.shape[1:3], sizes)])
  return jax.random.randint(key, (images.shape[0], 2), 0, high)


def cutout_mask(shape: Sequence[int], centres: Array, ratio: float = CUTOUT_RATIO) -> Array:
  """[N, H, W, 1] of 1 with 0 on each example's square: rows centre - size // 2 up to
  centre - size // 2 + size - 1, clipped to the image (the reference's clamped grid), and
  the same for columns."""
  n, h, w = shape[:3]
  mask = []
  for axis, side in ((0, h), (1, w)):
    size = cutout_size(side, ratio)
    start = centres[:, axis:axis + 1] - size // 2  # [N, 1]
    index = jnp.arange(side)[None, :]
    mask.append((index >= start) & (index < start + size))  # [N, side]
  hole = mask[0][:, :, None] & mask[1][:, None, :]
  return jnp.where(hole, 0.0, 1.0).reshape(n, h, w, 1)


def rand_cutout(images: Array, key: Array, ratio: float = CUTOUT_RATIO) -> Array:
  mask = cutout_mask(images.shape, cutout_draws(key, images, ratio), ratio)
  return images * mask.astype(images.dtype)


# The reference's AUGMENT_FNS: policy word -> the functions it applies, in order.
AUGMENT_FNS: dict[str, list[Callable[[Array, Array], Array]]] = {
    "color": [rand_brightness, rand_saturation, rand_contrast],
    "translation": [rand_translation],
    "cutout": [rand_cutout],
}


def parse_policy(policy: str) -> list[str]:
  """'color,translation' -> ['color', 'translation']; ConfigError for an unknown word."""
  words = [w.strip() for w in policy.split(",") if w.strip()]
  unknown = [w for w in words if w not in AUGMENT_FNS]
  if unknown or not words:
    raise ConfigError(f"config.augment.policy={policy!r}: DiffAugment policies are "
                      f"comma-separated words of {', '.join(AUGMENT_FNS)}")
  return words


def diff_augment(images: Array, key: Array, policy: str) -> Array:
  """T(images): every function of every word of `policy`, in order, each with its own key."""
  functions = [f for word in parse_policy(policy) for f in AUGMENT_FNS[word]]
  for f, k in zip(functions, jax.random.split(key, len(functions))):
    images = f(images, k)
  return images
