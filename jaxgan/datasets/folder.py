"""TFDS builder for any folder of images: `--config.data.name=folder --config.data.path=DIR`.

Small-data GAN work (the grumpy cats, a CelebA subset, your own photos) starts from a
folder of image files, the layout torchvision's `ImageFolder` and TFDS's own
`ImageFolder` read. This builder prepares such a folder, with no network, into one
label-free split `train`: every image file (`IMAGE_EXTENSIONS`, any case) found in DIR or
any folder below it, in sorted order of their paths relative to DIR, with features `image`
and `file_name` (that relative path). Other files are ignored. The training pipeline then
resizes each image's short side to the model's resolution and center-crops it
(`transforms.center_square`, the DCGAN tutorial's Resize + CenterCrop), so images
of any size and shape can be mixed.

Images are decoded with PIL and stored as PNG (lossless) with the model's channels
(`config.data.channels`): other modes are converted to RGB, or to L for a 1-channel
model, and preparation logs a warning with how many of each mode were converted.
16-bit grayscale (PIL's I;16 and I) is scaled to 8 bits (v / 257) rather than clipped as
PIL's own `convert` clips it (which would turn nearly every pixel white). An unreadable
file stops preparation with a DataError naming it; an empty folder, a missing one or a
file given as the folder with a DataError saying so (with what the folder holds instead).

Symbolic links are followed, but every real folder and every real file is visited once
(`scan`): a link to the folder itself or to a parent neither hangs the search nor counts
its images again, and preparation logs how many links it skipped. It warns, too, when the
images are few among many other files, and logs its progress every `PROGRESS_SECONDS`
while it searches and while it prepares.

Each folder gets its own prepared dataset: the builder config's name is the folder's
name plus a hash of its absolute path, the channels, and every image file's relative
path, size and modification time, so a different folder, or the same folder after an
image was added, replaced or removed, is prepared afresh (into
`<data_dir>/folder/<name>-<hash>/`) instead of reusing a stale copy.
"""

import collections
import dataclasses
import hashlib
import os
import re
import time

from absl import logging
from etils import epath
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from jaxgan.errors import ConfigError, DataError
from jaxgan.datasets.pix2pix import IMAGE_EXTENSIONS

# PIL modes of 16-bit (or wider integer) grayscale, scaled to 8 bits instead of clipped.
WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# config.data.channels -> the PIL mode the images are stored in.
MODES = {1: "L", 3: "RGB"}
# Seconds between the progress lines of a long search or preparation.
PROGRESS_SECONDS = 10.0
# Other files per image above which preparation warns that the folder is mostly not images.
OTHERS_PER_IMAGE = 10


@dataclasses.dataclass
class FolderConfig(tfds.core.BuilderConfig):
  path: str = ""     # the folder, absolute
  channels: int = 3  # 3: RGB, 1: grayscale (L)


class Folder(tfds.core.GeneratorBasedBuilder):
  """Every image file of one local folder (recursively), as one unlabelled split."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  # No fixed configs: `builder` makes one per folder.

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"The images of the folder {c.path} (and its subfolders), "
                    f"{MODES[c.channels]}.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, c.channels), encoding_format="png"),
            "file_name": tfds.features.Text(doc="path relative to the folder"),
        }))

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded
    root = check_folder(self.builder_config.path)
    found = scan(root)
    paths = found.images
    if not paths:  # TFDS would fail on the empty split with an AssertionError
      raise DataError(f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}, searched in "
                      f"its subfolders too; found {found.describe_others()}): put image files "
                      "there, or pass another --config.data.path")
    if found.repeated:
      logging.warning("%s: skipped %d links to folders or files already visited (a link to a "
                      "parent, to itself, or a second way to the same images)", root, found.repeated)
    if sum(found.others.values()) > OTHERS_PER_IMAGE * len(paths):
      logging.warning("%s: %d images among %s: is --config.data.path the right folder?", root,
                      len(paths), found.describe_others())
    return {"train": self._generate_examples(root, paths)}

  def _generate_examples(self, root: epath.Path, paths: list[epath.Path]):
    mode = MODES[self.builder_config.channels]
    converted = collections.Counter()
    last = time.monotonic()
    for i, path in enumerate(paths):
      if time.monotonic() - last > PROGRESS_SECONDS:
        logging.info("%s: prepared %d of %d images", root, i, len(paths))
        last = time.monotonic()
      image, original = read_image(path, mode)
      if original != mode:
        converted[original] += 1
      name = os.path.relpath(path, root)
      yield name, {"image": image, "file_name": name}
    if converted:
      logging.warning("%s: converted %d of %d images to %s (%s)", root, sum(converted.values()),
                      len(paths), mode, ", ".join(f"{n} {m}" for m, n in sorted(converted.items())))


def check_folder(path) -> epath.Path:
  """`path` as an absolute folder, or a DataError saying what it is instead."""
  folder = epath.Path(os.path.abspath(os.path.expanduser(str(path))))
  if not folder.exists():
    raise DataError(f"{folder} does not exist: pass --config.data.path=DIR, a folder of images")
  if not folder.is_dir():
    raise DataError(f"{folder} is a file, not a folder: pass --config.data.path=DIR, the "
                    "folder holding the images")
  return folder


@dataclasses.dataclass
class Scan:
  """What a folder holds: its image files (sorted by path relative to the folder), the
  other files by extension, and the links skipped as leading somewhere already visited."""
  images: list[epath.Path]
  others: collections.Counter
  repeated: int

  def describe_others(self) -> str:
    if not self.others:
      return "no other files"
    top = ", ".join(f"{n} {ext or '(no extension)'}" for ext, n in self.others.most_common(3))
    return f"{sum(self.others.values())} other files: {top}"


def scan(root: epath.Path) -> Scan:
  """Every file below `root`, links followed but each real folder and file visited once.

  Real folders and files come before linked ones, so one reachable both ways is named by
  its real path. A folder named like an image is searched, not read."""
  seen, images, others, repeated = set(), [], collections.Counter(), 0
  real, linked, linked_files = [str(root)], [], []
  last = time.monotonic()

  def visit(path: str, info: os.stat_result) -> bool:
    """Whether `path` is seen for the first time (else counted as repeated)."""
    nonlocal repeated
    if (info.st_dev, info.st_ino) in seen:
      repeated += 1
      return False
    seen.add((info.st_dev, info.st_ino))
    return True

  while real or linked:
    folder = real.pop() if real else linked.pop()
    try:
      entries = list(os.scandir(folder))
      if not visit(folder, os.stat(folder)):
        continue
    except OSError as e:  # an unreadable subfolder or a dangling link: skipped, as os.walk does
      logging.warning("%s: skipped (%s)", folder, e.strerror)
      continue
    for entry in sorted(entries, key=lambda e: e.name):
      try:
        if entry.is_dir():  # follows links
          (linked if entry.is_symlink() else real).append(entry.path)
        elif entry.is_file():
          ext = os.path.splitext(entry.name)[1].lower()
          if ext not in IMAGE_EXTENSIONS:
            others[ext] += 1
          elif entry.is_symlink():
            linked_files.append(entry.path)
          elif visit(entry.path, entry.stat()):
            images.append(entry.path)
      except OSError:  # a dangling link
        continue
    if time.monotonic() - last > PROGRESS_SECONDS:
      logging.info("%s: searching, %d folders and files seen, %d images so far", root,
                   len(seen), len(images))
      last = time.monotonic()
  for path in linked_files:  # after the real files, which keep their own names
    try:
      if visit(path, os.stat(path)):
        images.append(path)
    except OSError:
      continue
  # The real tree came first; linked folders add images whose order depends on the walk.
  images.sort(key=lambda p: os.path.relpath(p, root))
  return Scan([epath.Path(p) for p in images], others, repeated)


def image_files_below(root: epath.Path) -> list[epath.Path]:
  """The image files in `root` and every folder below it (`scan`), sorted by their path
  relative to `root`."""
  return scan(root).images


def read_image(path, mode: str) -> tuple[np.ndarray, str]:
  """(uint8 [h, w, channels] in `mode` (RGB or L), the file's own mode), or a DataError
  naming the file when it is no readable image."""
  try:
    with Image.open(path) as image:
      original = image.mode
      if original in WIDE_GRAY_MODES:  # 16-bit gray: scale to 8 bits, round to nearest
        wide = np.clip(np.asarray(image, np.int64), 0, 65535)
        image = Image.fromarray(((wide + 128) // 257).astype(np.uint8), "L")
      array = np.asarray(image.convert(mode))
  except Exception as e:  # pylint: disable=broad-except  (whatever PIL makes of a bad file)
    raise DataError(f"{path} is not a readable image ({type(e).__name__}: {e}); replace or "
                    "remove it") from e
  return (array[..., None] if array.ndim == 2 else array), original


def fingerprint(folder: epath.Path, channels: int) -> str:
  """A hash of what the prepared dataset is made from (module docstring)."""
  h = hashlib.sha256(f"{folder}\n{channels}\n".encode())
  for path in image_files_below(folder):
    stat = os.stat(path)
    h.update(f"{os.path.relpath(path, folder)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
  return h.hexdigest()[:16]


def builder(path, channels: int, data_dir=None) -> Folder:
  """The builder for the folder `path` at `channels` (1 or 3), prepared under
  `<data_dir>/folder/` (module docstring); ConfigError for other channel counts. The
folder is looked at only to name the dataset: a missing one is a DataError when the
dataset is prepared, so that a config naming a folder this machine lacks still loads
(under TFDS's mock data, say)."""
  if channels not in MODES:
    raise ConfigError(f"config.data.channels={channels}: the folder dataset gives 1-channel "
                      "(L) or 3-channel (RGB) images")
  folder = epath.Path(os.path.abspath(os.path.expanduser(str(path))))
  slug = re.sub(r"[^a-z0-9_]+", "_", folder.name.lower()).strip("_") or "root"
  config = FolderConfig(name=f"{slug}-{fingerprint(folder, channels)}", path=str(folder),
                        channels=channels, description=f"images of {folder}")
  return Folder(config=config, data_dir=data_dir)
