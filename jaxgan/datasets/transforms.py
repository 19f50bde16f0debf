"""Per-example image transforms of the data pipeline, in TensorFlow: pure functions of an
image (and, for the random ones, a stateless seed), so that the streams built from them
stay pure functions of (seed, step).

- `center_square`: the PyTorch DCGAN tutorial's Resize(size) + CenterCrop(size), how single
  images are made square;
- `resize_bicubic` and `random_crop_and_flip`: the pix2pix/CycleGAN reference's
  `get_transform` with `--preprocess resize_and_crop`;
- `deluxe` (with `color_jitter`): the CMU 16-726 course's "deluxe" augmentation of single
  images (`config.augment.kind=deluxe`): resized to int(1.1 * image_size), a random crop
  back to image_size, a random horizontal flip and optionally a mild colour jitter.

Imports nothing of the package.
"""

import tensorflow as tf

# `deluxe`: images are resized to this times image_size before the random crop (the
# course's load_size = int(1.1 * opts.image_size)).
DELUXE_LOAD_FACTOR = 1.1
# `deluxe` with color_jitter: brightness + U(-d, d) on [0, 1] values, contrast and
# saturation x U(1 - f, 1 + f). Our choice (the course leaves the jitter open): mild, so
# that the cats keep their colours.
JITTER_BRIGHTNESS = 0.1
JITTER_CONTRAST = 0.1
JITTER_SATURATION = 0.1


def center_square(image: tf.Tensor, size: int, channels: int) -> tf.Tensor:
  """uint8 [h, w, c] -> uint8 [size, size, channels]: resize the short side, center crop.

  torchvision's Resize(size) + CenterCrop(size) of the DCGAN tutorial: the long side
  becomes floor(size * long / short) and the crop offset round((new - size) / 2), both
  rounding as torchvision does. Images already size x size pass through untouched.
  """
  if image.shape[0] != size or image.shape[1] != size:
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    short = tf.minimum(h, w)
    new_h, new_w = size * h // short, size * w // short
    image = tf.image.resize(image, (new_h, new_w), method="bilinear", antialias=True)
    top = tf.cast(tf.round((new_h - size) / 2), tf.int32)
    left = tf.cast(tf.round((new_w - size) / 2), tf.int32)
    image = image[top:top + size, left:left + size]
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    image = tf.ensure_shape(image, (size, size, None))
  if image.shape[-1] == 1 and channels == 3:
    image = tf.image.grayscale_to_rgb(image)
  elif image.shape[-1] == 3 and channels == 1:
    gray = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))
    image = tf.cast(tf.clip_by_value(tf.round(gray), 0, 255), tf.uint8)
  return image


def resize_bicubic(image: tf.Tensor, size: int) -> tf.Tensor:
  """uint8 [h, w, c] -> uint8 [size, size, c], as torchvision's Resize([size, size],
  BICUBIC) of a PIL image in the reference's `get_transform`: bicubic with a = -0.5, the
  kernel widened when shrinking (antialias), rounded back to uint8."""
  if image.shape[0] == size and image.shape[1] == size:
    return image
  image = tf.image.resize(image, (size, size), method="bicubic", antialias=True)
  return tf.ensure_shape(tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8),
                         (size, size, None))


def random_crop_and_flip(images: dict[str, tf.Tensor], size: int, flip: bool,
                         seed: tf.Tensor) -> dict[str, tf.Tensor]:
  """One random size x size crop and one random left-right flip, the same for every image.

  The reference's `get_params`: crop corner (x, y) uniform in [0, load_size - size] each,
  flip with probability 1/2, one draw per example for A and B together. `seed` is a
  stateless seed (int64 [2]).
  """
  crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  load = next(iter(images.values())).shape[0]
  top, left = tf.unstack(tf.random.stateless_uniform([2], crop_seed, 0, load - size + 1, tf.int32))
  mirror = tf.logical_and(flip, tf.random.stateless_uniform([], flip_seed) > 0.5)
  out = {}
  for key, image in images.items():
    image = image[top:top + size, left:left + size]
    out[key] = tf.cond(mirror, lambda im=image: im[:, ::-1], lambda im=image: im)
  return out


def deluxe_load_size(size: int) -> int:
  return int(DELUXE_LOAD_FACTOR * size)


def color_jitter(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """uint8 [h, w, c] -> uint8: random brightness, contrast and saturation (the constants
  JITTER_*), from the stateless seed `seed`; saturation only for RGB images."""
  seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
  x = tf.cast(image, tf.float32) / 255.0
  x = tf.image.stateless_random_brightness(x, JITTER_BRIGHTNESS, seeds[0])
  x = tf.image.stateless_random_contrast(x, 1 - JITTER_CONTRAST, 1 + JITTER_CONTRAST, seeds[1])
  if image.shape[-1] == 3:
    x = tf.image.stateless_random_saturation(x, 1 - JITTER_SATURATION, 1 + JITTER_SATURATION,
                                             seeds[2])
  return tf.cast(tf.clip_by_value(tf.round(x * 255.0), 0, 255), tf.uint8)


def deluxe(image: tf.Tensor, size: int, jitter: bool, seed: tf.Tensor) -> tf.Tensor:
  """The course's deluxe augmentation of one image already resized to
  `deluxe_load_size(size)`: a random size x size crop, a random horizontal flip, and
  with `jitter` a random colour jitter (`color_jitter`); `seed`: stateless, int64 [2]."""
  crop_seed, jitter_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  image = random_crop_and_flip({"image": image}, size, True, crop_seed)["image"]
  return color_jitter(image, jitter_seed) if jitter else image


def then_resized(decode, size: int):
  """`decode`, its image then resized to `size` x `size` (bicubic: `resize_bicubic`)."""

  def decode_and_resize(ex):
    ex = decode(ex)
    return {**ex, "image": resize_bicubic(ex["image"], size)}

  return decode_and_resize


def to_float(batch):
  """uint8 images -> float32 in [-1, 1]; everything else as is."""
  return {k: tf.cast(v, tf.float32) / 127.5 - 1.0 if v.dtype == tf.uint8 else v
          for k, v in batch.items()}
