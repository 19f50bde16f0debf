"""The data: TFDS builders that TFDS itself lacks (importing this package registers them),
and the pipeline built on TFDS: `preparation` (offline-first preparation, which images a
config reads, splits read in stored order), `transforms` (per-example image transforms)
and `streams` (the training streams, sharded per process and exactly resumable).

The builders:

- `pix2pix/facades` (`pix2pix.py`): the paired pix2pix facades (label map <-> photo).
- `unpaired/grumpifycat`, `unpaired/apple2orange64`, `unpaired/apple2orange`
  (`unpaired.py`): CycleGAN's two-folder sets (trainA/ trainB/ [testA/ testB/]) from
  local folders, as TFDS's `cycle_gan/*` gives them.
- `folder` (`folder.py`): any folder of images (`--config.data.path=DIR`), one unlabelled
  split `train`, prepared once per folder and its contents.
"""

from jaxgan.datasets import folder  # noqa: E402,F401  (registers folder)
from jaxgan.datasets import pix2pix  # noqa: E402,F401  (registers pix2pix/*)
from jaxgan.datasets import unpaired  # noqa: E402,F401  (registers unpaired/*)
