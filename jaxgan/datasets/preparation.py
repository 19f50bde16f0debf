"""Reading a dataset: TFDS preparation (offline first), which images a config reads, and the
splits read once in stored order (evaluation, grids, the held-out images).

`prepare_dataset` makes a TFDS builder ready without surprises:
- an already prepared dataset is used as is;
- the original files placed in `config.data.manual_dir` are used with no network at all.
  This is TFDS's own mechanism: its DownloadManager looks for every URL's registered file
  name (`url_checksums/<dataset>.txt`, e.g. the four MNIST `.gz` files) in
  `DownloadConfig.manual_dir`, checks its size and SHA256 and skips the download;
- with neither and no network it fails in seconds, naming the files and where to put
  them, instead of letting TFDS's downloader retry for minutes.

What a config reads is its `StreamKind`, chosen once from `config.data` (`stream_kind`):
single images (with labels), pix2pix's pairs (`config.data.direction`: batches of `input`
and `target`) or CycleGAN's unpaired domains (`config.data.unpaired`: `A` and `B`, each from
its own split, `trainA`, `trainB`, ...).

`create_eval_iterator` and `load_split` read a split once in its stored order, preprocessed
as the pix2pix reference's test.py does for pairs and unpaired images (resized straight to
`image_size`, no crop, no flip) and as the DCGAN tutorial does for single images
(`transforms.center_square`).

`config.data.holdout` = k > 0 holds out the first k examples of the split in stored order
(`heldout_split`: the TFDS slice `train[:k]`): the training stream reads `train[k:]`
(`training_split`) on every process, so no process ever trains on them; the loop reads
them with `load_split` for its overfitting probe (jaxgan/train.py).
"""

import contextlib
import enum
import fcntl
import hashlib
import os
import tempfile
import urllib.parse
from typing import Iterator

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

from jaxgan import datasets as _datasets  # noqa: F401  (registers jaxgan's TFDS builders)
from jaxgan.datasets import base as datasets_base
from jaxgan.datasets import folder as folder_dataset
from jaxgan.datasets import transforms
from jaxgan.errors import ConfigError, DataNotFoundError

# TF only reads data here: keep it off any accelerator JAX will use.
tf.config.set_visible_devices([], "GPU")

# Paired datasets: the stored halves (jaxgan.datasets.pix2pix) that become (input, target)
# for each `config.data.direction`, the reference's --direction.
DIRECTIONS = {"AtoB": ("image_a", "image_b"), "BtoA": ("image_b", "image_a")}
# The dataset name of any folder of images, `config.data.path` (jaxgan.datasets.folder).
FOLDER = "folder"
# Unpaired datasets: the two domains, each a split named phase + domain (trainA, testB, ...).
DOMAINS = ("A", "B")


class StreamKind(enum.Enum):
  """What one example of a config's data is: the batch keys, the preprocessing and the
  training stream follow from it."""
  IMAGES = "images"      # {'image', 'label'}: single images, centre squares
  PAIRS = "pairs"        # {'input', 'target', 'label'}: pix2pix's aligned pairs
  UNPAIRED = "unpaired"  # {'A', 'B'}: CycleGAN's two domains, drawn independently


def stream_kind(data_config) -> StreamKind:
  """`config.data.unpaired` -> UNPAIRED, else `config.data.direction` -> PAIRS (a ConfigError
  for an unknown direction), else IMAGES."""
  if data_config.get("unpaired", False):
    return StreamKind.UNPAIRED
  direction = data_config.get("direction")
  if not direction:
    return StreamKind.IMAGES
  if direction not in DIRECTIONS:
    raise ConfigError(f"config.data.direction must be one of {', '.join(DIRECTIONS)}, "
                      f"got {direction!r}")
  return StreamKind.PAIRS


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


def domain_splits(phase: str) -> dict[str, str]:
  """{'A': phase + 'A', 'B': phase + 'B'}: the reference's dataroot/trainA, ... folders,
  TFDS cycle_gan's splits."""
  return {domain: phase + domain for domain in DOMAINS}


def image_features(data_config) -> dict[str, str]:
  """{batch key: stored image feature} of the config's `stream_kind`: {'image': 'image'};
  for pairs {'input': ..., 'target': ...}; for unpaired data {'A': 'image', 'B': 'image'},
  each from its domain's split."""
  kind = stream_kind(data_config)
  if kind is StreamKind.UNPAIRED:
    return {domain: "image" for domain in DOMAINS}
  if kind is StreamKind.IMAGES:
    return {"image": "image"}
  source, target = DIRECTIONS[data_config.direction]
  return {"input": source, "target": target}


def holdout_count(data_config) -> int:
  """`config.data.holdout`: how many images of the split's stored head are held out."""
  return int(data_config.get("holdout") or 0)


def _check_holdout(data_config) -> int:
  k = holdout_count(data_config)
  if k and (stream_kind(data_config) is StreamKind.UNPAIRED or "[" in data_config.split or "+" in data_config.split):
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


def read_split(builder: tfds.core.DatasetBuilder, split, features: dict[str, str]):
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


def decoder(builder, data_config, features: dict[str, str], size: int):
  """Decodes every image of an example: those of pix2pix's and CycleGAN's datasets resized
  to `size` x `size` as the reference's get_transform does, the others resized and
  center-cropped to it (`center_square`, the DCGAN tutorial's)."""
  channels = data_config.channels
  reference = stream_kind(data_config) is not StreamKind.IMAGES

  def decode(ex):
    out = dict(ex)
    for key, feature in features.items():
      image = builder.info.features[feature].decode_example(ex[key])
      out[key] = (transforms.resize_bicubic(image, size) if reference
                  else transforms.center_square(image, size, channels))
    return out

  return decode


def check_features(builder, data_config, features: dict[str, str]) -> None:
  """ConfigError when the dataset lacks the images this config reads (an unpaired model
  on a paired dataset, or the other way round)."""
  missing = sorted(set(features.values()) - set(builder.info.features.keys()))
  if missing:
    raise ConfigError(f"{data_config.name} has no {', '.join(missing)} images (its features: "
                      f"{', '.join(sorted(builder.info.features.keys()))}); paired datasets need "
                      "config.data.direction and the pix2pix family, other datasets neither")


def check_split(builder, data_config, split: str) -> None:
  splits = builder.info.splits
  name = split.split("[")[0]  # "train[:90%]" is a slice of "train"
  if splits and "+" not in split and name not in splits:  # (mock data knows no splits)
    raise ConfigError(f"{data_config.name} has no split {split!r}; it has "
                      f"{', '.join(sorted(splits))}")


def create_eval_iterator(data_config, split: str, batch_size: int,
                         num: int | None = None) -> Iterator[dict[str, np.ndarray]]:
  """The first `num` examples of `split` (all by default) once, in their stored order, in
  batches of `batch_size` (the last may be smaller), values in [-1, 1].

  Preprocessed as the reference's test.py: TestOptions sets load_size = crop_size and
  no_flip, so each image is only resized to `image_size`. Every process reads all of it.
  """
  # Unpaired datasets: `split` is one domain's (testA, ...), read as single images.
  features = ({"image": "image"} if stream_kind(data_config) is StreamKind.UNPAIRED
              else image_features(data_config))
  builder = prepare_dataset(data_config)
  check_split(builder, data_config, split)
  check_features(builder, data_config, features)
  examples = read_split(builder, split, features)
  if num is not None:
    examples = examples.take(num)
  decode = decoder(builder, data_config, features, data_config.image_size)
  stream = examples.map(decode, tf.data.AUTOTUNE, deterministic=True).batch(batch_size)
  return iter(tfds.as_numpy(stream.map(transforms.to_float).prefetch(tf.data.AUTOTUNE)))


def load_split(data_config, split: str, num: int | None = None) -> dict[str, np.ndarray]:
  """The first `num` examples of `split` (all by default) in memory, as
  `create_eval_iterator` gives them: e.g. {'image': float32 [N, S, S, C] in [-1, 1],
  'label': int32 [N]} for the MNIST test set."""
  batches = list(create_eval_iterator(data_config, split, 4096, num))
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
