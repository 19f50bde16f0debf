"""TFDS builders that TFDS itself lacks; importing this package registers them.

- `pix2pix/facades` (`pix2pix.py`): the paired pix2pix facades (label map <-> photo).
"""

from jaxgan.datasets import pix2pix  # noqa: F401  (registers pix2pix/*)
