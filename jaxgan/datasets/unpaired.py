"""TFDS builder for unpaired image sets in local folders: `unpaired/grumpifycat`,
`unpaired/apple2orange64`, `unpaired/apple2orange`.

CycleGAN (Zhu et al. 2017) trains on two folders of images, `trainA/` and `trainB/` (and
tests on `testA/`, `testB/`), the layout of junyanz/pytorch-CycleGAN-and-pix2pix's
`UnalignedDataset` and of the zips TFDS's own `cycle_gan/*` builders download. This
builder prepares such folders with no network, from `manual_dir`
(`--config.data.manual_dir=DIR`, DIR holding the folders, or a subfolder named after the
set holding them), into the same features and splits as TFDS's `cycle_gan`: `image` and
`label` (ClassLabel A, B) in splits `trainA`, `trainB`, `testA`, `testB` (those present),
plus the `file_name`. Images are decoded with PIL and converted to RGB as the reference's
`Image.open(path).convert('RGB')`, and stored as PNG (lossless: the stored pixels are the
decoded file's).

- `grumpifycat`: the 64x64 cats of the CMU 16-726 assignment "When Cats meet GANs"
  (CycleGAN part): A = Russian Blue (75), B = Grumpy Cat (204), no test split. The course
  distributes them as `cat/grumpifyAprocessed/` and `cat/grumpifyBprocessed/`; those
  names are accepted for trainA/ and trainB/.
- `apple2orange64`: CycleGAN's apple2orange downsampled to 64x64 PNG (the same course's
  copy), train only: A = apple (995), B = orange (1019).
- `apple2orange`: the full-size set extracted from apple2orange.zip (256x256 JPEG,
  trainA 995, trainB 1019, testA 266, testB 248). Online, TFDS's `cycle_gan/apple2orange`
  downloads the same zip; offline, that builder also takes the zip itself in manual_dir.
"""

import dataclasses

from etils import epath
import tensorflow_datasets as tfds

from jaxgan.errors import DataError, DataNotFoundError
from jaxgan.datasets.pix2pix import IMAGE_EXTENSIONS, image_files, manual_dir_of, read_rgb

SPLITS = ("trainA", "trainB", "testA", "testB")

_CITATION = """\
@inproceedings{zhu2017unpaired,
  title={Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks},
  author={Zhu, Jun-Yan and Park, Taesung and Isola, Phillip and Efros, Alexei A},
  booktitle={ICCV},
  year={2017}
}
"""


@dataclasses.dataclass
class UnpairedConfig(tfds.core.BuilderConfig):
  folder: str = ""     # the set's own folder name, looked for inside manual_dir
  domain_a: str = ""
  domain_b: str = ""
  aliases: dict[str, str] = dataclasses.field(default_factory=dict)  # split -> other folder name
  source: str = ""     # where a user gets the files


GRUMPIFYCAT = UnpairedConfig(
    name="grumpifycat",
    description="64x64 cat faces of the CMU 16-726 assignment 'When Cats meet GANs': "
                "A = Russian Blue (75), B = Grumpy Cat (204); no test split.",
    folder="cat", domain_a="Russian Blue", domain_b="Grumpy Cat",
    aliases={"trainA": "grumpifyAprocessed", "trainB": "grumpifyBprocessed"},
    source="the data of the CMU 16-726 assignment 'When Cats meet GANs' (its cat/ folder)")
APPLE2ORANGE64 = UnpairedConfig(
    name="apple2orange64",
    description="CycleGAN's apple2orange downsampled to 64x64 (CMU 16-726's copy), train "
                "only: A = apple (995), B = orange (1019).",
    folder="apple2orange64", domain_a="apple", domain_b="orange",
    source="the 64x64 apple2orange of the CMU 16-726 course (trainA/, trainB/)")
APPLE2ORANGE = UnpairedConfig(
    name="apple2orange",
    description="CycleGAN's apple2orange (ImageNet apples and oranges, 256x256), extracted "
                "from apple2orange.zip: trainA 995, trainB 1019, testA 266, testB 248.",
    folder="apple2orange", domain_a="apple", domain_b="orange",
    source="https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/apple2orange.zip "
           "(extracted; or use TFDS's cycle_gan/apple2orange, which downloads it)")


class Unpaired(tfds.core.GeneratorBasedBuilder):
  """Two folders of images, domain A and domain B, prepared from manual_dir."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [GRUMPIFYCAT, APPLE2ORANGE64, APPLE2ORANGE]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Pass the folder holding trainA/ and trainB/ (and testA/, testB/ where the set has "
      "them) as manual_dir.")

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=c.description,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
            "label": tfds.features.ClassLabel(names=["A", "B"]),
            "file_name": tfds.features.Text(),
        }),
        supervised_keys=("image", "label"),
        homepage="https://junyanz.github.io/CycleGAN/",
        citation=_CITATION)

  def _split_generators(self, dl_manager):
    manual_dir = manual_dir_of(dl_manager)
    folders = domain_folders(manual_dir, self.builder_config) if manual_dir else None
    if folders is None:
      raise DataNotFoundError(offline_message(self.builder_config, manual_dir))
    return {split: self._generate_examples(folder, split[-1]) for split, folder in folders.items()}

  def _generate_examples(self, folder: epath.Path, label: str):
    paths = image_files(folder)
    if not paths:  # TFDS would fail on the empty split with an AssertionError
      raise DataError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}): put the "
                      f"images of domain {label} there, or remove the empty folder")
    for path in paths:
      yield path.name, {"image": read_rgb(path), "label": label, "file_name": path.name}


def domain_folders(root: epath.Path, config: UnpairedConfig) -> dict[str, epath.Path] | None:
  """{split: folder} in `root` or `root/<config.folder>`, the first holding trainA/ and
  trainB/ (or their aliases); None when neither does."""
  for candidate in (root, root / config.folder):
    found = {}
    for split in SPLITS:
      for name in (split, config.aliases.get(split)):
        if name and (candidate / name).is_dir():
          found[split] = candidate / name
          break
    if "trainA" in found and "trainB" in found:
      return found
  return None


def offline_message(config: UnpairedConfig, manual_dir) -> str:
  where = (f"{manual_dir} holds no trainA/ and trainB/ folders" if manual_dir
           else "no manual_dir given (or it does not exist)")
  aliases = " and ".join(f"{v}/" for v in config.aliases.values())
  also = f" (or {aliases})" if aliases else ""
  return (f"unpaired/{config.name}: {where}. It is prepared from local folders only: pass "
          f"--config.data.manual_dir=FOLDER, the folder holding trainA/ and trainB/{also}, "
          f"A = {config.domain_a}, B = {config.domain_b} (and testA/, testB/ if any); "
          f"the files are {config.source}.")
