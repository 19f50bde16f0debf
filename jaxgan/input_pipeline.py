"""Training data through TFDS: offline first, sharded per process, exactly resumable.

`prepare_dataset` makes a TFDS builder ready without surprises:
- an already prepared dataset is used as is;
- the original files placed in `config.data.manual_dir` are used with no network at all.
  This is TFDS's own mechanism: its DownloadManager looks for every URL's registered file
  name (`url_checksums/<dataset>.txt`, e.g. the four MNIST `.gz` files) in
  `DownloadConfig.manual_dir`, checks its size and SHA256 and skips the download;
- with neither and no network it fails in seconds, naming the files and where to put
  them, instead of letting TFDS's downloader retry for minutes.

`create_train_iterator` yields this process's rows of each global batch. The stream is a
pure function of (seed, start step): epoch e is the split shuffled with seed (seed, e), so
a run resumed at step s skips at most one epoch's worth of elements to stand exactly where
an uninterrupted run would be. Images are preprocessed as in the PyTorch DCGAN tutorial
(Resize(size) then CenterCrop(size), values in [-1, 1]).

Paired datasets (pix2pix's, `config.data.direction` set) give batches of `input` and
`target` images instead, preprocessed as the reference's `AlignedDataset` with
`--preprocess resize_and_crop`: both resized to `load_size` (bicubic), one random
`image_size` crop and one random horizontal flip per example applied to both. The crop and
flip are drawn from stateless seeds (seed, epoch, position in the epoch), so the stream
stays a pure function of (seed, start step). `create_eval_iterator` reads a split once in
its stored order, preprocessed as the reference's test.py does (resized straight to
`image_size`, no crop, no flip).

Single-image datasets can be augmented with `deluxe` (`config.augment.kind`; the CMU
16-726 course's "deluxe" preprocessing, on real images only): each image, already resized
and center-cropped to `image_size`, is resized to int(1.1 * image_size) (bicubic, as the
course's `Resize(osize, BICUBIC)`), and each example gets a random `image_size` crop, a
random horizontal flip and, with `config.augment.color_jitter`, a random brightness,
contrast and saturation (`color_jitter`), all drawn from stateless seeds (seed, epoch,
position) as the pairs' crops are, so exact resumption holds.

`config.data.holdout` = k > 0 holds out the first k examples of the split in stored order
(`heldout_split`: the TFDS slice `train[:k]`): the training stream reads `train[k:]`
(`training_split`) on every process, so no process ever trains on them; the loop reads
them with `load_split` for its overfitting probe (jaxgan/train.py).

Unpaired datasets (CycleGAN's, `config.data.unpaired`: TFDS `cycle_gan/*` and the package's
`unpaired/*`, splits `trainA`, `trainB`, `testA`, `testB`) give batches of `A` and `B`
images drawn independently, as the reference's `UnalignedDataset` with serial_batches off:
an epoch is max(|A|, |B|) examples; position i of epoch e, in a permutation of 0 .. max - 1
seeded by (seed, e), takes the A image at that index modulo |A| and a B image drawn
uniformly; each image is resized to `load_size` (bicubic), then gets its own random crop
and flip. Both domains are held decoded in memory (the CycleGAN sets are small: apple2orange
at 286x286 is 0.5 GB), every draw comes from stateless seeds (seed, epoch, position), and
process k of P takes positions k, k + P, ... of the global stream, so the stream stays a
pure function of (seed, start step) on any number of processes.
"""

import contextlib
import fcntl
import hashlib
import os
import tempfile
import urllib.parse
import urllib.request
from typing import Iterator

from absl import logging
import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

from jaxgan import datasets as _datasets  # noqa: F401  (registers jaxgan's TFDS builders)
from jaxgan.datasets import base as datasets_base
from jaxgan.datasets.base import DataError, DataNotFoundError, network_available  # noqa: F401
from jaxgan.datasets import folder as folder_dataset
from jaxgan.config import ConfigError

# TF only reads data here: keep it off any accelerator JAX will use.
tf.config.set_visible_devices([], "GPU")

# Decoded, resized uint8 images up to this many bytes per process are kept in memory, so
# only the first epoch decodes (MNIST: 47 MB; CelebA at 64x64: 2.0 GB). Larger sets are
# shuffled and skipped as encoded bytes and decoded after the skip.
CACHE_BYTES = 2 << 30
# Splits up to this size are shuffled as a whole when config.data.shuffle_buffer is unset.
FULL_SHUFFLE_MAX_EXAMPLES = 100_000
DEFAULT_SHUFFLE_BUFFER = 10_000
# Paired datasets: the stored halves (jaxgan.datasets.pix2pix) that become (input, target)
# for each `config.data.direction`, the reference's --direction.
DIRECTIONS = {"AtoB": ("image_a", "image_b"), "BtoA": ("image_b", "image_a")}
# The dataset name of any folder of images, `config.data.path` (jaxgan.datasets.folder).
FOLDER = "folder"
# Unpaired datasets: the two domains, each a split named phase + domain (trainA, testB, ...).
DOMAINS = ("A", "B")
# `deluxe`: images are resized to this times image_size before the random crop (the
# course's load_size = int(1.1 * opts.image_size)).
DELUXE_LOAD_FACTOR = 1.1
# `deluxe` with color_jitter: brightness + U(-d, d) on [0, 1] values, contrast and
# saturation x U(1 - f, 1 + f). Our choice (the course leaves the jitter open): mild, so
# that the cats keep their colours.
JITTER_BRIGHTNESS = 0.1
JITTER_CONTRAST = 0.1
JITTER_SATURATION = 0.1


# ---------------------------------------------------------------------------------------
# Preparing the dataset.


def expected_files(builder: tfds.core.DatasetBuilder) -> dict[str, str]:
  """{file name: URL} of what TFDS downloads for `builder`, from its registered checksums.

  These are the names TFDS looks for in manual_dir, so every TFDS dataset with registered
  checksums (mnist, celeb_a, ...) works offline without a table kept here.
  """
  return {info.filename: url for url, info in (builder.url_infos or {}).items() if info.filename}


def prepare_dataset(data_config) -> tfds.core.DatasetBuilder:
  """A prepared TFDS builder for `data_config.name`, or DataNotFoundError within seconds."""
  builder = _builder(data_config)
  if builder.is_prepared():
    return builder
  # Runs started together on one machine (a sweep, several augmentations) would each
  # prepare the same dataset and race on TFDS's final rename; the first prepares it while
  # the others wait here, then find it prepared.
  with _preparation_lock(builder.data_dir):
    builder = _builder(data_config)
    if builder.is_prepared():
      return builder
    return _download_and_prepare(builder, data_config)


@contextlib.contextmanager
def _preparation_lock(data_dir: str) -> Iterator[None]:
  """An exclusive `flock` on a file named after `data_dir` in the temporary folder."""
  digest = hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:16]
  with open(os.path.join(tempfile.gettempdir(), f"jaxgan-prepare-{digest}.lock"), "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _download_and_prepare(builder: tfds.core.DatasetBuilder,
                          data_config) -> tfds.core.DatasetBuilder:
  files = expected_files(builder)
  manual_dir = data_config.get("manual_dir")
  missing = _missing_files(files, manual_dir)
  if missing and not datasets_base.network_available(files[missing[0]]):
    raise DataNotFoundError(_offline_message(builder, files, missing, manual_dir))
  if manual_dir and missing:
    logging.warning("%s lacks %s: downloading them", manual_dir, ", ".join(missing))
  # Files found in manual_dir are checked against TFDS's checksums and used in place; only
  # the missing ones are downloaded. The GCS mirror of prepared data is not asked.
  download_config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
  try:
    builder.download_and_prepare(download_config=download_config)
  except download_manager.NonMatchingChecksumError as e:
    # Also what a rate-limited host (CelebA on Google Drive) looks like: an HTML page.
    raise DataNotFoundError(
        f"{data_config.name}: a file does not match TFDS's checksum; download it again "
        f"from its source and pass --config.data.manual_dir=FOLDER. {e}") from e
  except AssertionError as e:  # TFDS's way of saying a manual-only dataset lacks files
    raise DataNotFoundError(f"{data_config.name} needs files placed by hand: {e}") from e
  return builder


def _builder(data_config) -> tfds.core.DatasetBuilder:
  """TFDS's builder for config.data.name, or a ConfigError when TFDS has no such dataset
  (or config of one). `folder` is the folder `config.data.path` (jaxgan.datasets.folder)."""
  if data_config.name == FOLDER:
    if not data_config.get("path"):
      raise ConfigError("config.data.name=folder reads the images of a folder: pass "
                        "--config.data.path=DIR")
    return folder_dataset.builder(data_config.path, data_config.channels,
                                  data_config.get("data_dir"))
  try:
    return tfds.builder(data_config.name, data_dir=data_config.get("data_dir"))
  except ValueError as e:  # TFDS's DatasetNotFoundError, or an unknown builder config
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise ConfigError(f"config.data.name={data_config.name!r} is not a dataset TFDS or "
                      f"jaxgan knows ({first.split(' Here are ')[0]})") from e


def _missing_files(files: dict[str, str], manual_dir: str | None) -> list[str]:
  present = set()
  if manual_dir and tf.io.gfile.isdir(manual_dir):
    present = set(tf.io.gfile.listdir(manual_dir))
  return sorted(set(files) - present)


def _offline_message(builder, files: dict[str, str], missing: list[str],
                     manual_dir: str | None) -> str:
  host = urllib.parse.urlsplit(files[missing[0]]).hostname
  head = (f"dataset {builder.name} is not prepared in {builder.data_dir_root} and {host} "
          f"cannot be reached (no network?). ")
  if manual_dir:
    return head + (f"{manual_dir} lacks {', '.join(missing)}: download {_sources(files, missing)} "
                   "on a machine with internet and put them there.")
  return head + (f"Download {_sources(files, missing)} on a machine with internet, put them in "
                 "one folder and pass --config.data.manual_dir=FOLDER (or copy a prepared TFDS "
                 "data dir and pass --config.data.data_dir=DIR).")


def _sources(files: dict[str, str], names: list[str]) -> str:
  """'a, b from https://host/dir/' when the files share a folder, else 'a (url), b (url)'."""
  folders = {files[name][:-len(name)] for name in names}
  if len(folders) == 1 and all(files[name].endswith("/" + name) for name in names):
    return f"{', '.join(names)} from {folders.pop()}"
  return ", ".join(f"{name} ({files[name]})" for name in names)


# ---------------------------------------------------------------------------------------
# The training stream.


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


def is_unpaired(data_config) -> bool:
  return bool(data_config.get("unpaired", False))


def domain_splits(phase: str) -> dict[str, str]:
  """{'A': phase + 'A', 'B': phase + 'B'}: the reference's dataroot/trainA, ... folders,
  TFDS cycle_gan's splits."""
  return {domain: phase + domain for domain in DOMAINS}


def image_features(data_config) -> dict[str, str]:
  """{batch key: stored image feature}: {'image': 'image'}; for paired datasets
  (`config.data.direction`) {'input': ..., 'target': ...}; for unpaired ones
  (`config.data.unpaired`) {'A': 'image', 'B': 'image'}, each from its domain's split."""
  if is_unpaired(data_config):
    return {domain: "image" for domain in DOMAINS}
  direction = data_config.get("direction")
  if not direction:
    return {"image": "image"}
  if direction not in DIRECTIONS:
    raise ConfigError(f"config.data.direction must be one of {', '.join(DIRECTIONS)}, "
                      f"got {direction!r}")
  source, target = DIRECTIONS[direction]
  return {"input": source, "target": target}


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


def holdout_count(data_config) -> int:
  """`config.data.holdout`: how many images of the split's stored head are held out."""
  return int(data_config.get("holdout") or 0)


def _check_holdout(data_config) -> int:
  k = holdout_count(data_config)
  if k and (is_unpaired(data_config) or "[" in data_config.split or "+" in data_config.split):
    raise ConfigError(f"config.data.holdout={k} holds out the first images of one whole split "
                      f"of single or paired images; {data_config.name} {data_config.split!r} "
                      "is not one: set config.data.holdout=0")
  return k


def training_split(data_config) -> str:
  """The split that is trained on: `config.data.split` without its first
  `config.data.holdout` images (`train[24:]`), all of it without a holdout."""
  k = _check_holdout(data_config)
  return f"{data_config.split}[{k}:]" if k else data_config.split


def heldout_split(data_config) -> str | None:
  """The held-out head of `config.data.split` (`train[:24]`), never trained on; None
  without a holdout."""
  k = _check_holdout(data_config)
  return f"{data_config.split}[:{k}]" if k else None


def augment_kind(augment_config) -> str:
  """`config.augment.kind`, "none" where a config has no augment section."""
  return (augment_config or {}).get("kind", "none") or "none"


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


def _read_split(builder: tfds.core.DatasetBuilder, split, features: dict[str, str]):
  """The split in its stored order, images still encoded, only the images and label kept."""
  # shuffle_files=False and one file at a time: the same order on every run, so the
  # seeded shuffles below alone decide the stream.
  ds = builder.as_dataset(split=split, shuffle_files=False,
                          decoders={f: tfds.decode.SkipDecoding() for f in features.values()},
                          read_config=tfds.ReadConfig(interleave_cycle_length=1,
                                                      try_autocache=False))  # we cache
  has_label = "label" in builder.info.features

  def keep(ex):
    label = tf.cast(ex["label"], tf.int32) if has_label else tf.constant(0, tf.int32)
    return {**{key: ex[f] for key, f in features.items()}, "label": label}

  return ds.map(keep)


def _decoder(builder, data_config, features: dict[str, str], size: int):
  """Decodes every image of an example: those of pix2pix's and CycleGAN's datasets resized
  to `size` x `size` as the reference's get_transform does, the others resized and
  center-cropped to it (`center_square`, the DCGAN tutorial's)."""
  channels = data_config.channels
  reference = bool(data_config.get("direction")) or is_unpaired(data_config)

  def decode(ex):
    out = dict(ex)
    for key, feature in features.items():
      image = builder.info.features[feature].decode_example(ex[key])
      out[key] = resize_bicubic(image, size) if reference else center_square(image, size, channels)
    return out

  return decode


def _then_resized(decode, size: int):
  """`decode`, its image then resized to `size` x `size` (bicubic: `resize_bicubic`)."""

  def decode_and_resize(ex):
    ex = decode(ex)
    return {**ex, "image": resize_bicubic(ex["image"], size)}

  return decode_and_resize


def _epochs(examples: tf.data.Dataset, buffer: int, seed: int, first_epoch: int,
            with_seeds: bool = False):
  """Epochs first_epoch, first_epoch + 1, ... each a permutation seeded by (seed, epoch).

  `with_seeds`: each element also gets `augment_seed` = (seed, epoch, position in the
  epoch) folded into a stateless seed, for its random crop and flip.
  """

  def epoch(e):
    epoch_seed = tf.constant(seed, tf.int64) * 1_000_003 + e
    shuffled = examples.shuffle(buffer, seed=epoch_seed, reshuffle_each_iteration=False)
    if not with_seeds:
      return shuffled
    return shuffled.enumerate().map(lambda i, ex: {**ex, "augment_seed": tf.stack([epoch_seed, i])})

  return tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch)


def _to_float(batch):
  """uint8 images -> float32 in [-1, 1]; everything else as is."""
  return {k: tf.cast(v, tf.float32) / 127.5 - 1.0 if v.dtype == tf.uint8 else v
          for k, v in batch.items()}


def _check_features(builder, data_config, features: dict[str, str]) -> None:
  """ConfigError when the dataset lacks the images this config reads (an unpaired model
  on a paired dataset, or the other way round)."""
  missing = sorted(set(features.values()) - set(builder.info.features.keys()))
  if missing:
    raise ConfigError(f"{data_config.name} has no {', '.join(missing)} images (its features: "
                      f"{', '.join(sorted(builder.info.features.keys()))}); paired datasets need "
                      "config.data.direction and the pix2pix family, other datasets neither")


def _check_split(builder, data_config, split: str) -> None:
  splits = builder.info.splits
  name = split.split("[")[0]  # "train[:90%]" is a slice of "train"
  if splits and "+" not in split and name not in splits:  # (mock data knows no splits)
    raise ConfigError(f"{data_config.name} has no split {split!r}; it has "
                      f"{', '.join(sorted(splits))}")


def _check_channels(stream: tf.data.Dataset, data_config) -> None:
  """ConfigError when the images have another number of channels than the model is
  built for (config.data.channels)."""
  for key, spec in stream.element_spec.items():
    channels = spec.shape[-1] if spec.shape.rank == 4 else None
    if channels is not None and channels != data_config.channels:
      raise ConfigError(f"config.data.channels={data_config.channels}, but the {key} images of "
                        f"{data_config.name} have {channels} channels")


def create_train_iterator(data_config, global_batch_size: int, seed: int,
                          start_step: int = 0, process_index: int | None = None,
                          process_count: int | None = None,
                          augment_config=None) -> Iterator[dict[str, np.ndarray]]:
  """Endless batches {'image': float32 [B/P, S, S, C] in [-1, 1], 'label': int32 [B/P]}
  (paired datasets: 'input' and 'target' instead of 'image'; unpaired ones: 'A' and 'B'
  and no label). `augment_config` (`config.augment`): kind `deluxe` augments the images
  of single-image datasets (module docstring); other kinds happen in the step.

  B is the global batch, P the number of processes; each process reads its own shard.
  Batch k of `start_step=s` equals batch s + k of `start_step=0`. `process_index` and
  `process_count` default to JAX's (`jax.process_index()`, `jax.process_count()`); given,
  they name the shard of another process, so one process can read what each process of
  a P-process job reads (tests/multihost_test.py builds the global batch that way).
  """
  processes = jax.process_count() if process_count is None else process_count
  index = jax.process_index() if process_index is None else process_index
  if global_batch_size % processes:
    raise ValueError(f"global batch size {global_batch_size} is not divisible by the "
                     f"{processes} processes")
  local_batch = global_batch_size // processes
  builder = prepare_dataset(data_config)
  deluxe_config = augment_config if augment_kind(augment_config) == "deluxe" else None
  if deluxe_config and (is_unpaired(data_config) or data_config.get("direction")):
    raise ConfigError("config.augment.kind=deluxe augments single images; pix2pix's and "
                      "CycleGAN's data get their own crops and flips (config.data.load_size, "
                      "config.data.flip)")
  if is_unpaired(data_config):
    stream = _unpaired_stream(builder, data_config, seed, start_step * global_batch_size,
                              index, processes)
  else:
    stream = _example_stream(builder, data_config, seed, start_step * local_batch, index,
                             processes, deluxe_config)
  stream = stream.batch(local_batch, drop_remainder=True).map(_to_float)
  _check_channels(stream, data_config)
  options = tf.data.Options()
  options.deterministic = True
  stream = stream.with_options(options).prefetch(tf.data.AUTOTUNE)
  return iter(tfds.as_numpy(stream))


def _load_size(data_config) -> int:
  """The side images are resized to before the random crop (the reference's --load_size)."""
  size = data_config.image_size
  load = data_config.get("load_size") or size
  if load < size:
    raise ConfigError(f"config.data.load_size={load} is smaller than the crop, "
                      f"config.data.image_size={size}")
  return load


def _check_epoch_length(data_config, actual: int, what: str) -> None:
  expected = data_config.get("num_train_examples")
  if expected and expected != actual:  # the family's epochs would not be the data's
    logging.warning("config.data.num_train_examples=%d, but %s has %d examples (%s)",
                    expected, data_config.name, actual, what)


def _example_stream(builder, data_config, seed: int, start: int, index: int,
                    processes: int, deluxe_config=None) -> tf.data.Dataset:
  """Process `index`'s examples (of `processes`) from element `start` of its shard on:
  single images (with `deluxe_config`, the `deluxe` augmentation), or pairs cropped and
  flipped alike."""
  features = image_features(data_config)
  _check_split(builder, data_config, data_config.split)
  _check_features(builder, data_config, features)
  paired = "input" in features
  split = training_split(data_config)  # without the held-out images
  shard = tfds.split_for_jax_process(split, process_index=index, process_count=processes)
  examples = _read_split(builder, shard, features)
  n = int(examples.cardinality())  # this process's shard; TFDS always knows it
  if n <= 0:
    raise DataError(f"{data_config.name} {split}: no examples for process "
                    f"{index} of {processes}")
  size, channels = data_config.image_size, data_config.channels
  # Paired images are cached at load_size and cropped to image_size per epoch.
  stored = _load_size(data_config) if paired else size
  if split in builder.info.splits:
    _check_epoch_length(data_config, builder.info.splits[split].num_examples, split)
  decode = _decoder(builder, data_config, features, stored)
  if deluxe_config:  # cached at 1.1 x image_size, cropped back per epoch
    stored = deluxe_load_size(size)
    decode = _then_resized(decode, stored)

  cached = n * len(features) * stored * stored * channels <= CACHE_BYTES
  if cached:
    examples = examples.map(decode, tf.data.AUTOTUNE, deterministic=True).cache()
  buffer = data_config.get("shuffle_buffer") or (
      n if n <= FULL_SHUFFLE_MAX_EXAMPLES else DEFAULT_SHUFFLE_BUFFER)
  # The elements this process consumed before start: whole epochs are skipped by starting
  # the epoch counter later, the rest element by element.
  first_epoch, skip = divmod(start, n)
  stream = _epochs(examples, buffer, seed, first_epoch,
                   with_seeds=paired or bool(deluxe_config)).skip(skip)
  if not cached:  # shuffled and skipped as bytes: decode only what is trained on
    stream = stream.map(decode, tf.data.AUTOTUNE, deterministic=True)
  if paired:
    flip = bool(data_config.get("flip", True))

    def augment(ex):
      images = random_crop_and_flip({k: ex[k] for k in features}, size, flip, ex["augment_seed"])
      return {**images, "label": ex["label"]}

    stream = stream.map(augment, tf.data.AUTOTUNE, deterministic=True)
  elif deluxe_config:
    jitter = bool(deluxe_config.get("color_jitter", False))
    stream = stream.map(
        lambda ex: {"image": deluxe(ex["image"], size, jitter, ex["augment_seed"]),
                    "label": ex["label"]}, tf.data.AUTOTUNE, deterministic=True)
  return stream


def _load_domain(builder, data_config, split: str, size: int) -> np.ndarray:
  """Every image of `split` in stored order, resized to `size` (bicubic): uint8 [n, size,
  size, C]."""
  features = {"image": "image"}
  decode = _decoder(builder, data_config, features, size)
  examples = _read_split(builder, split, features).map(decode, tf.data.AUTOTUNE,
                                                       deterministic=True)
  images = [b["image"] for b in tfds.as_numpy(examples.batch(256))]
  if not images:
    raise DataNotFoundError(f"{data_config.name} {split} holds no images")
  return np.concatenate(images)


def _unpaired_stream(builder, data_config, seed: int, start: int, index: int,
                     processes: int) -> tf.data.Dataset:
  """Process `index`'s {'A', 'B'} examples (of `processes`) from global position `start`
  on (the module docstring: the reference's UnalignedDataset, exactly resumable)."""
  splits = domain_splits(data_config.split)
  for split in splits.values():
    _check_split(builder, data_config, split)
  size, flip = data_config.image_size, bool(data_config.get("flip", True))
  images = {d: tf.constant(_load_domain(builder, data_config, split, _load_size(data_config)))
            for d, split in splits.items()}
  n_a, n_b = (int(images[d].shape[0]) for d in DOMAINS)
  n = max(n_a, n_b)  # len(UnalignedDataset)
  _check_epoch_length(data_config, n, f"the larger of {' and '.join(splits.values())}")

  def epoch(e):
    epoch_seed = tf.stack([tf.constant(seed, tf.int64), e])
    # The DataLoader's shuffle: a permutation of the epoch's indices.
    order = tf.argsort(tf.random.stateless_uniform([n], epoch_seed))
    return tf.data.Dataset.from_tensor_slices(order).enumerate().map(
        lambda i, index: (tf.random.experimental.stateless_fold_in(epoch_seed, i), index))

  def draw(position_seed, index):
    b_seed, a_augment, b_augment = tf.unstack(
        tf.random.experimental.stateless_split(position_seed, 3))
    a = index % n_a  # the reference's index_A = index % A_size
    b = tf.random.stateless_uniform([], b_seed, 0, n_b, tf.int32)  # random.randint(0, B_size - 1)
    # Each image gets its own crop and flip (transform_A and transform_B apart).
    return {**random_crop_and_flip({"A": tf.gather(images["A"], a)}, size, flip, a_augment),
            **random_crop_and_flip({"B": tf.gather(images["B"], b)}, size, flip, b_augment)}

  first_epoch, skip = divmod(start, n)
  stream = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch).skip(skip)
  stream = stream.shard(processes, index)
  return stream.map(draw, tf.data.AUTOTUNE, deterministic=True)


def create_eval_iterator(data_config, split: str, batch_size: int,
                         num: int | None = None) -> Iterator[dict[str, np.ndarray]]:
  """The first `num` examples of `split` (all by default) once, in their stored order, in
  batches of `batch_size` (the last may be smaller), values in [-1, 1].

  Preprocessed as the reference's test.py: TestOptions sets load_size = crop_size and
  no_flip, so each image is only resized to `image_size`. Every process reads all of it.
  """
  # Unpaired datasets: `split` is one domain's (testA, ...), read as single images.
  features = {"image": "image"} if is_unpaired(data_config) else image_features(data_config)
  builder = prepare_dataset(data_config)
  _check_split(builder, data_config, split)
  _check_features(builder, data_config, features)
  examples = _read_split(builder, split, features)
  if num is not None:
    examples = examples.take(num)
  decode = _decoder(builder, data_config, features, data_config.image_size)
  stream = examples.map(decode, tf.data.AUTOTUNE, deterministic=True).batch(batch_size)
  return iter(tfds.as_numpy(stream.map(_to_float).prefetch(tf.data.AUTOTUNE)))


def load_split(data_config, split: str, num: int | None = None) -> dict[str, np.ndarray]:
  """The first `num` examples of `split` (all by default) in memory, as
  `create_eval_iterator` gives them: e.g. {'image': float32 [N, S, S, C] in [-1, 1],
  'label': int32 [N]} for the MNIST test set (31 MB)."""
  batches = list(create_eval_iterator(data_config, split, 4096, num))
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
