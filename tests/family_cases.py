"""One small case of every family: a config at toy width and a batch of its data's shape.

Shared by the tests that run or lower one train step of each family
(tests/implementation_test.py, its child process for the TPU and GPU lowerings).
"""

import numpy as np

from conftest import REPO
from train_test import tiny


def _config(name, **overrides):
  return tiny(str(REPO / "configs" / name), **overrides)


def _images(rng, n, size, channels):
  return rng.uniform(-1, 1, (n, size, size, channels)).astype(np.float32)


def case(name: str, pairs: int = 2):
  """(config, batch) of the case `name` (one of CASES): batch size 8, or `pairs` for the
  image-to-image families (pix2pix, CycleGAN)."""
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 8).astype(np.int32)
  if name in ("dcgan_mnist", "gan_mnist", "cgan_multiclass_mnist"):
    config = _config(f"{name}.py", **{"model.ngf": 8, "model.ndf": 8, "batch_size": 8})
    return config, {"image": _images(rng, 8, 28, 1), "label": labels}
  if name == "mnist_classifier":
    config = _config("mnist_classifier.py", batch_size=8)
    return config, {"image": _images(rng, 8, 28, 1), "label": labels}
  if name == "pix2pix":
    config = _config("pix2pix_facades_cpu.py", **{
        "data.image_size": 32, "data.load_size": 36, "data.num_train_examples": 4,
        "model.generator": "unet_32", "batch_size": pairs})
    return config, {"input": _images(rng, pairs, 32, 3), "target": _images(rng, pairs, 32, 3),
                    "label": np.zeros(pairs, np.int32)}
  if name == "cyclegan":
    config = _config("cyclegan_apple2orange64.py", **{
        "data.image_size": 32, "data.load_size": 36, "data.num_train_examples": 5,
        "batch_size": pairs, "loss.pool_size": 3})
    return config, {"A": _images(rng, pairs, 32, 3), "B": _images(rng, pairs, 32, 3)}
  if name in ("ddpm_mnist", "ddpm_mnist_conditional"):
    config = _config(f"{name}.py", **{"data.image_size": 8, "model.ch_mult": (1, 2),
                                      "model.num_res_blocks": 1, "batch_size": 8})
    return config, {"image": _images(rng, 8, 8, 1), "label": labels}
  raise KeyError(name)


CASES = ("dcgan_mnist", "gan_mnist", "cgan_multiclass_mnist", "mnist_classifier", "pix2pix",
         "cyclegan", "ddpm_mnist", "ddpm_mnist_conditional")
