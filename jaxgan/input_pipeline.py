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
"""

import socket
import threading
import urllib.parse
import urllib.request
from typing import Iterator

from absl import logging
import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

# TF only reads data here: keep it off any accelerator JAX will use.
tf.config.set_visible_devices([], "GPU")

# Decoded, resized uint8 images up to this many bytes per process are kept in memory, so
# only the first epoch decodes (MNIST: 47 MB; CelebA at 64x64: 2.0 GB). Larger sets are
# shuffled and skipped as encoded bytes and decoded after the skip.
CACHE_BYTES = 2 << 30
# Splits up to this size are shuffled as a whole when config.data.shuffle_buffer is unset.
FULL_SHUFFLE_MAX_EXAMPLES = 100_000
DEFAULT_SHUFFLE_BUFFER = 10_000
# Seconds to wait for the download host before calling the machine offline.
NETWORK_TIMEOUT = 3.0


class DataNotFoundError(Exception):
  """The dataset is neither prepared, nor in manual_dir, nor downloadable."""


# ---------------------------------------------------------------------------------------
# Preparing the dataset.


def network_available(url: str, timeout: float = NETWORK_TIMEOUT) -> bool:
  """Whether `url`'s host (or the proxy that requests would use) accepts TCP in `timeout` s."""
  parts = urllib.parse.urlsplit(url)
  proxy = urllib.request.getproxies().get(parts.scheme)
  if proxy and not urllib.request.proxy_bypass(parts.hostname):
    parts = urllib.parse.urlsplit(proxy if "//" in proxy else f"http://{proxy}")
  port = parts.port or (443 if parts.scheme == "https" else 80)
  connected = []

  def connect():
    try:
      socket.create_connection((parts.hostname, port), timeout=timeout).close()
      connected.append(True)
    except OSError:
      pass

  # A thread bounds the DNS lookup too, which create_connection's timeout does not cover;
  # a refused connection or unknown host still answers at once.
  thread = threading.Thread(target=connect, daemon=True)
  thread.start()
  thread.join(timeout)
  return bool(connected)


def expected_files(builder: tfds.core.DatasetBuilder) -> dict[str, str]:
  """{file name: URL} of what TFDS downloads for `builder`, from its registered checksums.

  These are the names TFDS looks for in manual_dir, so every TFDS dataset with registered
  checksums (mnist, celeb_a, ...) works offline without a table kept here.
  """
  return {info.filename: url for url, info in (builder.url_infos or {}).items() if info.filename}


def prepare_dataset(data_config) -> tfds.core.DatasetBuilder:
  """A prepared TFDS builder for `data_config.name`, or DataNotFoundError within seconds."""
  builder = tfds.builder(data_config.name, data_dir=data_config.get("data_dir"))
  if builder.is_prepared():
    return builder
  files = expected_files(builder)
  manual_dir = data_config.get("manual_dir")
  missing = _missing_files(files, manual_dir)
  if missing and not network_available(files[missing[0]]):
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


def _read_split(builder: tfds.core.DatasetBuilder, split) -> tf.data.Dataset:
  """The split in its stored order, images still encoded, only image and label kept."""
  # shuffle_files=False and one file at a time: the same order on every run, so the
  # seeded shuffles below alone decide the stream.
  ds = builder.as_dataset(split=split, shuffle_files=False,
                          decoders={"image": tfds.decode.SkipDecoding()},
                          read_config=tfds.ReadConfig(interleave_cycle_length=1))
  has_label = "label" in builder.info.features

  def keep(ex):
    label = tf.cast(ex["label"], tf.int32) if has_label else tf.constant(0, tf.int32)
    return {"image": ex["image"], "label": label}

  return ds.map(keep)


def load_split(data_config, split: str) -> dict[str, np.ndarray]:
  """A whole split in memory, in its stored order, preprocessed as for training:
  {'image': float32 [N, S, S, C] in [-1, 1], 'label': int32 [N]}. For evaluation sets
  (the MNIST test set: 31 MB)."""
  builder = prepare_dataset(data_config)
  if builder.info.splits and split not in builder.info.splits:
    raise DataNotFoundError(f"{data_config.name} has no split {split!r}; it has "
                            f"{', '.join(builder.info.splits)}")
  image_feature = builder.info.features["image"]
  size, channels = data_config.image_size, data_config.channels

  def decode(ex):
    return {"image": center_square(image_feature.decode_example(ex["image"]), size, channels),
            "label": ex["label"]}

  ds = _read_split(builder, split).map(decode, tf.data.AUTOTUNE, deterministic=True)
  batches = list(tfds.as_numpy(ds.batch(4096).map(_to_float)))
  return {k: np.concatenate([b[k] for b in batches]) for k in ("image", "label")}


def _epochs(examples: tf.data.Dataset, buffer: int, seed: int, first_epoch: int):
  """Epochs first_epoch, first_epoch + 1, ... each a permutation seeded by (seed, epoch)."""

  def epoch(e):
    return examples.shuffle(buffer, seed=tf.constant(seed, tf.int64) * 1_000_003 + e,
                            reshuffle_each_iteration=False)

  return tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch)


def _to_float(batch):
  return {"image": tf.cast(batch["image"], tf.float32) / 127.5 - 1.0, "label": batch["label"]}


def create_train_iterator(data_config, global_batch_size: int, seed: int,
                          start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Endless batches {'image': float32 [B/P, S, S, C] in [-1, 1], 'label': int32 [B/P]}.

  B is the global batch, P the number of processes; each process reads its own shard.
  Batch k of `start_step=s` equals batch s + k of `start_step=0`.
  """
  processes = jax.process_count()
  if global_batch_size % processes:
    raise ValueError(f"global batch size {global_batch_size} is not divisible by the "
                     f"{processes} processes")
  local_batch = global_batch_size // processes
  builder = prepare_dataset(data_config)
  examples = _read_split(builder, tfds.split_for_jax_process(data_config.split))
  n = int(examples.cardinality())  # this process's shard; TFDS always knows it
  if n <= 0:
    raise ValueError(f"{data_config.name} {data_config.split}: no examples for process "
                     f"{jax.process_index()} of {processes}")
  size, channels = data_config.image_size, data_config.channels
  image_feature = builder.info.features["image"]

  def decode(ex):
    image = center_square(image_feature.decode_example(ex["image"]), size, channels)
    return {"image": image, "label": ex["label"]}

  cached = n * size * size * channels <= CACHE_BYTES
  if cached:
    examples = examples.map(decode, tf.data.AUTOTUNE, deterministic=True).cache()
  buffer = data_config.get("shuffle_buffer") or (
      n if n <= FULL_SHUFFLE_MAX_EXAMPLES else DEFAULT_SHUFFLE_BUFFER)
  # The elements this process consumed before start_step: whole epochs are skipped by
  # starting the epoch counter later, the rest element by element.
  first_epoch, skip = divmod(start_step * local_batch, n)
  stream = _epochs(examples, buffer, seed, first_epoch).skip(skip)
  if not cached:  # shuffled and skipped as bytes: decode only what is trained on
    stream = stream.map(decode, tf.data.AUTOTUNE, deterministic=True)
  stream = stream.batch(local_batch, drop_remainder=True).map(_to_float)
  options = tf.data.Options()
  options.deterministic = True
  stream = stream.with_options(options).prefetch(tf.data.AUTOTUNE)
  return iter(tfds.as_numpy(stream))
