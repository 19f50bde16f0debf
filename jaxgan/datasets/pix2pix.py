"""TFDS builder for the paired pix2pix datasets (Isola et al. 2017): `pix2pix/facades`.

TFDS has the CycleGAN sets, whose `cycle_gan/facades` is an unpaired split, but no paired
pix2pix builder. This one reads the archive of the pix2pix dataset server (`facades.tar.gz`,
a folder `facades/` holding `train/` (400 images), `val/` (100) and `test/`) or, offline, a
local copy of the extracted folder given as manual_dir (`--config.data.manual_dir=DIR`,
DIR holding `train/` and `val/`, or `facades/` with them). Every image is a 512x256
side-by-side pair, A on the left (facades: the photo) and B on the right (the label map).
Each example keeps both halves, cut at w // 2 as the reference's `AlignedDataset` cuts
them, decoded with PIL as the reference decodes them and stored as PNG (lossless: the
stored pixels are the decoded JPEG's), plus the file name.

Splits are the folders present: train / val (and test where the download has it).
"""

import dataclasses
import urllib.parse

from absl import logging
from etils import epath
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from jaxgan.datasets import base
from jaxgan.errors import DataError, DataNotFoundError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "val", "test")

_CITATION = """\
@inproceedings{isola2017image,
  title={Image-to-Image Translation with Conditional Adversarial Networks},
  author={Isola, Phillip and Zhu, Jun-Yan and Zhou, Tinghui and Efros, Alexei A},
  booktitle={CVPR},
  year={2017}
}
@inproceedings{Tylecek13,
  author={Radim Tyle{\\v c}ek and Radim {\\v S}{\\'a}ra},
  title={Spatial Pattern Templates for Recognition of Objects with Regular Structure},
  booktitle={GCPR},
  year={2013}
}
"""


@dataclasses.dataclass
class Pix2pixConfig(tfds.core.BuilderConfig):
  url: str = ""      # the archive on the pix2pix dataset server
  folder: str = ""   # the folder the archive extracts to
  image_a: str = ""  # what the left half shows
  image_b: str = ""  # what the right half shows


FACADES = Pix2pixConfig(
    name="facades",
    description="CMP Facades (Tylecek and Sara 2013) as packaged for pix2pix: pairs of a "
                "facade photo and its label map, 400 train and 100 val (and test).",
    url="http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz",
    folder="facades", image_a="photo", image_b="label map")


class Pix2pix(tfds.core.GeneratorBasedBuilder):
  """Paired images as the pix2pix dataset server distributes them."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [FACADES]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Optional (offline machines): download facades.tar.gz from "
      f"{FACADES.url}, extract it and pass the extracted folder (the one holding train/ "
      "and val/) as manual_dir. Without it the archive is downloaded.")

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=c.description,
        features=tfds.features.FeaturesDict({
            "image_a": tfds.features.Image(shape=(None, None, 3), encoding_format="png",
                                           doc=f"left half: {c.image_a}"),
            "image_b": tfds.features.Image(shape=(None, None, 3), encoding_format="png",
                                           doc=f"right half: {c.image_b}"),
            "file_name": tfds.features.Text(),
        }),
        homepage="https://phillipi.github.io/pix2pix/",
        citation=_CITATION)

  def _split_generators(self, dl_manager):
    manual_dir = manual_dir_of(dl_manager)
    root = split_folders(manual_dir, self.builder_config.folder) if manual_dir else None
    if root is None:
      root = self._download(dl_manager, manual_dir)
    return {split: self._generate_examples(root / split)
            for split in SPLITS if (root / split).is_dir()}

  def _download(self, dl_manager, manual_dir) -> epath.Path:
    c = self.builder_config
    if not base.network_available(c.url):
      raise DataNotFoundError(offline_message(c, manual_dir))
    if manual_dir:
      logging.warning("%s holds no train/ and val/ folders: downloading %s", manual_dir, c.url)
    return epath.Path(dl_manager.download_and_extract(c.url)) / c.folder

  def _generate_examples(self, folder: epath.Path):
    paths = image_files(folder)
    if not paths:
      raise DataError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}): put the "
                      "side-by-side pairs there, or remove the empty folder")
    for path in paths:
      a, b = split_pair(path)
      yield path.name, {"image_a": a, "image_b": b, "file_name": path.name}


def image_files(folder: epath.Path) -> list[epath.Path]:
  """The image files of `folder` by extension, sorted; other files are ignored, as the
  reference's `make_dataset` ignores them."""
  return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def manual_dir_of(dl_manager) -> epath.Path | None:
  try:
    return epath.Path(dl_manager.manual_dir)
  except AssertionError:  # TFDS: no manual_dir given, or an empty / missing one
    return None


def split_folders(root: epath.Path, folder: str) -> epath.Path | None:
  """The folder holding train/ and val/: `root` itself or `root/folder` (the archive's)."""
  for candidate in (root, root / folder):
    if (candidate / "train").is_dir() and (candidate / "val").is_dir():
      return candidate
  return None


def read_rgb(path) -> np.ndarray:
  """The image file `path` as uint8 RGB [h, w, 3], converted as the reference's
  `Image.open(path).convert('RGB')` converts (grayscale repeated, alpha dropped), or a
  DataError naming the file when it is no readable image (truncated, not an image, ...)."""
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert("RGB"))
  except Exception as e:  # pylint: disable=broad-except  (whatever PIL makes of a bad file)
    raise DataError(f"{path} is not a readable image ({type(e).__name__}: {e}); replace or "
                    "remove it") from e


def split_pair(path) -> tuple[np.ndarray, np.ndarray]:
  """A side-by-side image -> (left half, right half), uint8 RGB; the reference's
  `AB.crop((0, 0, w2, h))`, `AB.crop((w2, 0, w, h))` with w2 = int(w / 2)."""
  ab = read_rgb(path)
  w2 = ab.shape[1] // 2
  if w2 == 0 or ab.shape[0] == 0:
    raise DataError(f"{path} is {ab.shape[1]}x{ab.shape[0]} pixels: too small to hold two "
                    "images side by side")
  return ab[:, :w2], ab[:, w2:]


def offline_message(config: Pix2pixConfig, manual_dir) -> str:
  host = urllib.parse.urlsplit(config.url).hostname
  where = f"{manual_dir} holds no train/ and val/ folders" if manual_dir else "no manual_dir given"
  name = config.url.rsplit("/", 1)[-1]
  return (f"pix2pix/{config.name}: {where} and {host} cannot be reached (no network?). "
          f"Download {name} from {config.url} on a machine with internet, extract it and pass "
          f"--config.data.manual_dir=FOLDER, the folder holding train/ and val/ "
          f"(side-by-side images: {config.image_a} on the left, {config.image_b} on the right).")
