"""Training data through TFDS: offline first, sharded per process, exactly resumable.

`prepare_dataset` makes a TFDS builder ready without surprises: an already prepared
dataset is used as is; files placed in `config.data.manual_dir` are used with no
network at all (TFDS's DownloadManager takes a registered file from its manual dir
when the name matches its checksum list: for `mnist`, the four original `.gz` files);
with neither and no network it fails in seconds, naming the files and where to put
them, instead of letting TFDS's downloader retry for minutes.

`create_train_iterator` yields this process's rows of each global batch. The stream is
a pure function of (seed, start step): epoch e is the split shuffled with seed
(seed, e), so a run resumed at step s skips at most one epoch's worth of raw elements
to stand exactly where an uninterrupted run would be.
"""

import socket
import urllib.parse
from typing import Iterator

import jax
from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

# TF only reads data here: keep it off any accelerator JAX will use.
tf.config.set_visible_devices([], "GPU")

# Images below this many bytes (decoded, resized) are cached in memory after the first epoch.
CACHE_BYTES = 2 << 30


class DataNotFoundError(Exception):
  """The dataset is neither prepared, nor in manual_dir, nor downloadable."""


def network_available(url: str, timeout: float = 3.0) -> bool:
  """Whether the download host accepts a TCP connection within `timeout` seconds."""
  parts = urllib.parse.urlsplit(url)
  port = parts.port or (443 if parts.scheme == "https" else 80)
  try:
    with socket.create_connection((parts.hostname, port), timeout=timeout):
      return True
  except OSError:
    return False


def prepare_dataset(data_config) -> tfds.core.DatasetBuilder:
  """A prepared TFDS builder for `data_config.name`, or DataNotFoundError in seconds."""
  builder = tfds.builder(data_config.name, data_dir=data_config.get("data_dir"))
  if builder.is_prepared():
    return builder
  url_infos = builder.url_infos or {}
  files = {info.filename: url for url, info in url_infos.items() if info.filename}
  manual_dir = data_config.get("manual_dir")
  missing = sorted(files)
  if manual_dir and files:
    present = set(tf.io.gfile.listdir(manual_dir)) if tf.io.gfile.isdir(manual_dir) else set()
    missing = sorted(set(files) - present)
    if not missing:
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
      return builder
  if url_infos and not network_available(next(iter(url_infos))):
    if not files:
      where = "prepare it on a machine with internet and copy the TFDS data dir"
    elif manual_dir:
      where = f"{manual_dir} lacks {', '.join(missing)} (from {_folder(files)})"
    else:
      where = (f"put {', '.join(missing)} (from {_folder(files)}) in a folder and pass "
               "--config.data.manual_dir=FOLDER")
    raise DataNotFoundError(f"dataset {data_config.name} is not prepared in {builder.data_dir} "
                            f"and its download host cannot be reached: {where}")
  if manual_dir and files:
    logging.warning("%s lacks %s: downloading instead", manual_dir, ", ".join(missing))
  try:
    builder.download_and_prepare()
  except tfds.core.download.NonMatchingChecksumError as e:
    raise DataNotFoundError(f"{data_config.name}: downloaded files do not match TFDS's "
                            f"checksums ({e})") from e
  except AssertionError as e:  # manual-download datasets (celeb_a archives, ...)
    raise DataNotFoundError(f"{data_config.name} needs files placed by hand: {e}") from e
  return builder


def _folder(files: dict[str, str]) -> str:
  return sorted({url.rsplit("/", 1)[0] + "/" for url in files.values()})[0]


def _to_image(image: tf.Tensor, size: int, channels: int) -> tf.Tensor:
  """uint8 [h, w, c] -> uint8 [size, size, channels]: resize the short side, center crop.

  As torchvision's Resize(size) + CenterCrop(size) in the DCGAN tutorial.
  """
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  if image.shape[0] != size or image.shape[1] != size:
    scale = size / tf.cast(tf.minimum(h, w), tf.float32)
    new_h = tf.maximum(size, tf.cast(tf.round(tf.cast(h, tf.float32) * scale), tf.int32))
    new_w = tf.maximum(size, tf.cast(tf.round(tf.cast(w, tf.float32) * scale), tf.int32))
    image = tf.image.resize(image, (new_h, new_w), antialias=True)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    image = tf.cast(tf.round(image[top:top + size, left:left + size]), tf.uint8)
    image = tf.ensure_shape(image, (size, size, None))
  if image.shape[-1] == 1 and channels == 3:
    image = tf.image.grayscale_to_rgb(image)
  elif image.shape[-1] == 3 and channels == 1:
    image = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8)
  return image


def create_train_iterator(data_config, global_batch_size: int, seed: int,
                          start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Endless batches {'image': float32 [B/P, S, S, C] in [-1, 1], 'label': int32 [B/P]}.

  B is the global batch, P the number of processes; each process reads its own shard.
  Batch k of `start_step=s` equals batch s + k of `start_step=0`.
  """
  processes = jax.process_count()
  if global_batch_size % processes:
    raise DataNotFoundError(f"batch size {global_batch_size} is not divisible by the "
                            f"{processes} processes")
  local_batch = global_batch_size // processes
  builder = prepare_dataset(data_config)
  split = tfds.split_for_jax_process(data_config.split)
  read_config = tfds.ReadConfig(shuffle_seed=seed, interleave_cycle_length=1)
  ds = builder.as_dataset(split=split, shuffle_files=False, read_config=read_config)
  has_label = "label" in builder.info.features
  size, channels = data_config.image_size, data_config.channels

  def to_example(ex):
    return {"image": _to_image(ex["image"], size, channels),
            "label": tf.cast(ex["label"], tf.int32) if has_label else tf.constant(0, tf.int32)}

  ds = ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  n = int(ds.cardinality())
  if n <= 0:
    n = builder.info.splits[split].num_examples
  if n * size * size * channels <= CACHE_BYTES:
    ds = ds.cache()
  buffer = data_config.get("shuffle_buffer") or (n if n <= 100_000 else 10_000)

  offset = start_step * local_batch  # elements this process consumed before start_step
  first_epoch, skip = divmod(offset, n)

  def epoch(e):
    return ds.shuffle(buffer, seed=tf.cast(seed, tf.int64) * 1_000_003 + e,
                      reshuffle_each_iteration=False)

  stream = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch).skip(skip)

  def normalize(batch):
    return {"image": tf.cast(batch["image"], tf.float32) / 127.5 - 1.0, "label": batch["label"]}

  stream = stream.batch(local_batch, drop_remainder=True).map(normalize)
  options = tf.data.Options()
  options.deterministic = True
  stream = stream.with_options(options).prefetch(tf.data.AUTOTUNE)
  return iter(tfds.as_numpy(stream))
