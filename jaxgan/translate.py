"""Image-to-image inference on a folder: `python -m jaxgan.sample --workdir W --input_dir DIR
--output_dir OUT [--direction AtoB|BtoA]`.

Every image file in DIR (any size; converted to RGB) is resized to the model's resolution
(`image_size` x `image_size`, bicubic, as the reference's test-time Resize) and translated
by the family's `translate` (pix2pix: G as the reference's test.py runs it, dropout on, each
image on its own batch statistics; CycleGAN: G_A for `--direction AtoB`, the default, or
G_B for BtoA). The outputs, at the model's resolution, are written to
OUT under the input's file name (and so in its format; JPEGs at quality 95). Image k in
sorted name order draws its dropout from fold_in(PRNGKey(seed), k), so a file's output
does not depend on the batch it was translated in.
"""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxgan import visualize
from jaxgan.datasets import transforms

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def list_images(folder: str) -> list[str]:
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"--input_dir {folder} is not a folder")
  names = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
  if not names:
    raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
  return names


def load_image(path: str, size: int) -> np.ndarray:
  """An image file -> float32 [size, size, 3] in [-1, 1]."""
  with Image.open(path) as image:
    rgb = np.asarray(image.convert("RGB"))
  resized = np.asarray(transforms.resize_bicubic(rgb, size))
  return resized.astype(np.float32) / 127.5 - 1.0


def image_keys(seed: int, start: int, num: int) -> jax.Array:
  """Dropout keys of images start .. start + num - 1: fold_in(PRNGKey(seed), index)."""
  base = jax.random.PRNGKey(seed)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(start, start + num))


def translate_batch(translate, state, images: np.ndarray, rngs, batch_size: int) -> np.ndarray:
  """uint8 translations of `images` (at most `batch_size`) with their dropout keys `rngs`,
  padded to `batch_size` so that every call runs one compiled shape."""
  n = len(images)
  pad = lambda a: np.pad(np.asarray(a), [(0, batch_size - n)] + [(0, 0)] * (a.ndim - 1))
  return visualize.to_uint8(jax.device_get(translate(state, pad(images), pad(rngs)))[:n])


def translate_folder(family, state, input_dir: str, output_dir: str, seed: int = 0,
                     batch_size: int = 16, direction: str | None = None) -> list[str]:
  """Translates every image of `input_dir` into `output_dir` with a family that has
  `families.Translation` (the caller checks: the families import this module); returns the
  file names. `direction` picks the way a family that translates both ways (CycleGAN) goes."""
  translate = family.translate
  if direction is not None:
    directions = getattr(family, "directions", ())
    if direction not in directions:
      raise ValueError(f"--direction {direction}: " + (
          f"this model translates {' or '.join(directions)}" if directions else
          "this model translates one way only (pix2pix's is config.data.direction at training)"))
    translate = functools.partial(translate, direction=direction)
  names = list_images(input_dir)
  batch_size = min(batch_size, len(names))
  os.makedirs(output_dir, exist_ok=True)
  translate = jax.jit(translate)
  for start in range(0, len(names), batch_size):
    chunk = names[start:start + batch_size]
    images = np.stack([load_image(os.path.join(input_dir, n), family.image_size) for n in chunk])
    outputs = translate_batch(translate, state, images, image_keys(seed, start, len(chunk)),
                              batch_size)
    for name, output in zip(chunk, outputs):
      Image.fromarray(output).save(os.path.join(output_dir, name), quality=95)
  return names
