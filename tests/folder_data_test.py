"""Any folder of images as a dataset (`--config.data.name=folder --config.data.path=DIR`):
the files it finds and their order, mode conversion and its warning, resize and center
crop, one-line errors, one prepared dataset per folder and contents, and the shared grumpy
cats when this machine has them."""

import logging
import os

import ml_collections
import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA, write_images
from train_test import mock_data  # noqa: F401
from jaxgan import config as config_lib
from jaxgan.datasets import preparation, streams
from jaxgan.datasets import folder
from jaxgan.errors import DataError

GRUMPY_B = SHARED_DATA / "grumpifyCat" / "grumpifyBprocessed"


def data_config(path, data_dir, size=8, channels=3):
  return ml_collections.ConfigDict(dict(
      name="folder", path=str(path), data_dir=str(data_dir), image_size=size,
      channels=channels, split="train", shuffle_buffer=0))


def stored(config):
  """{file_name: uint8 image} of the prepared dataset."""
  builder = preparation.prepare_dataset(config)
  return {ex["file_name"].decode(): ex["image"]
          for ex in builder.as_dataset(split="train").as_numpy_iterator()}


def test_images_found_recursively_sorted_other_files_ignored(tmp_path):
  root = tmp_path / "set"
  write_images(root, 2, side=4)
  write_images(root / "sub" / "deeper", 1, side=4, suffix=".JPG")
  (root / "notes.txt").write_text("not an image")
  (root / "looks_like.png").mkdir()  # a folder named like an image is searched, not read
  write_images(root / "looks_like.png", 1, side=4)
  paths = folder.image_files_below(folder.check_folder(root))
  assert [os.path.relpath(p, root) for p in paths] == [
      "0.png", "1.png", "looks_like.png/0.png", "sub/deeper/0.JPG"]
  assert sorted(stored(data_config(root, tmp_path / "tfds"))) == sorted(
      os.path.relpath(p, root) for p in paths)


def modes(root):
  """One image of each mode the builder converts, and an RGB one; returns their arrays."""
  root.mkdir(parents=True)
  rgb = np.random.default_rng(0).integers(0, 256, (4, 6, 3), dtype=np.uint8)
  images = {"rgb.png": Image.fromarray(rgb), "gray.png": Image.fromarray(rgb).convert("L"),
            "rgba.png": Image.fromarray(rgb).convert("RGBA"),
            "palette.png": Image.fromarray(rgb).convert("P"),
            "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
            "gray16.png": Image.fromarray(np.array([[0, 1000, 65535]] * 2, np.uint16))}
  for name, image in images.items():
    image.save(root / name)
  return images


def test_other_modes_are_converted_to_rgb_and_counted(tmp_path, caplog):
  modes(tmp_path / "set")
  with caplog.at_level(logging.WARNING):
    images = stored(data_config(tmp_path / "set", tmp_path / "tfds"))
  assert {name: image.shape[-1] for name, image in images.items()} == dict.fromkeys(images, 3)
  gray = np.asarray(Image.open(tmp_path / "set" / "gray.png"))
  np.testing.assert_array_equal(images["gray.png"], np.repeat(gray[..., None], 3, -1))
  # 16-bit gray is scaled to 8 bits, not clipped to white.
  np.testing.assert_array_equal(images["gray16.png"][0, :, 0], [0, 4, 255])
  assert "converted 5 of 6 images to RGB (1 CMYK, 1 I;16, 1 L, 1 P, 1 RGBA)" in caplog.text


def test_a_one_channel_model_gets_grayscale(tmp_path):
  modes(tmp_path / "set")
  config = data_config(tmp_path / "set", tmp_path / "tfds", size=4, channels=1)
  images = stored(config)
  assert all(image.shape[-1] == 1 for image in images.values())
  rgb = np.asarray(Image.open(tmp_path / "set" / "rgb.png"))
  np.testing.assert_array_equal(images["rgb.png"][..., 0],
                                np.asarray(Image.fromarray(rgb).convert("L")))
  batch = next(streams.create_train_iterator(config, 3, seed=0))
  assert batch["image"].shape == (3, 4, 4, 1)


def test_short_side_resized_and_center_cropped(tmp_path):
  """A 4x12 image (three 4x4 squares side by side) at size 4 keeps the middle square."""
  root = tmp_path / "set"
  root.mkdir()
  squares = [np.full((4, 4, 3), v, np.uint8) for v in (0, 128, 255)]
  Image.fromarray(np.concatenate(squares, axis=1)).save(root / "wide.png")
  batch = next(streams.create_train_iterator(
      data_config(root, tmp_path / "tfds", size=4), 1, seed=0))
  np.testing.assert_allclose(batch["image"][0], 128 / 127.5 - 1, atol=1e-6)


@pytest.mark.parametrize("make,message", [
    (lambda root: root.mkdir(), "holds no images"),
    (lambda root: (root.mkdir(), (root / "a.txt").write_text("x")), "holds no images"),
    (lambda root: None, "does not exist"),
    (lambda root: root.write_bytes(b"x"), "is a file, not a folder"),
])
def test_empty_missing_or_not_a_folder_is_one_line(tmp_path, make, message):
  make(tmp_path / "set")
  with pytest.raises(DataError, match=message) as e:
    preparation.prepare_dataset(data_config(tmp_path / "set", tmp_path / "tfds"))
  assert "\n" not in str(e.value) and str(tmp_path / "set") in str(e.value)


def test_an_unreadable_file_is_named(tmp_path):
  root = tmp_path / "set"
  write_images(root, 2, side=4)
  (root / "sub").mkdir()
  (root / "sub" / "broken.jpg").write_bytes(b"<html>rate limited</html>")
  with pytest.raises(DataError, match=r"sub/broken.jpg is not a readable image") as e:
    preparation.prepare_dataset(data_config(root, tmp_path / "tfds"))
  assert "\n" not in str(e.value)


def test_config_mistakes(tmp_path):
  config = data_config(tmp_path, tmp_path / "tfds")
  config.path = None
  with pytest.raises(config_lib.ConfigError, match="pass --config.data.path=DIR"):
    preparation.prepare_dataset(config)
  config.path, config.channels = str(tmp_path), 4
  with pytest.raises(config_lib.ConfigError, match="config.data.channels=4"):
    preparation.prepare_dataset(config)
  base = config_lib.base_config()
  base.data.path = str(tmp_path)  # with data.name=mnist the path would be ignored
  with pytest.raises(config_lib.ConfigError, match="read by config.data.name=folder only"):
    config_lib.validate(base)


def test_one_prepared_dataset_per_folder_and_contents(tmp_path):
  write_images(tmp_path / "a", 2, side=4)
  write_images(tmp_path / "b", 2, side=4)
  name = lambda path, channels=3: folder.builder(path, channels).builder_config.name
  first = name(tmp_path / "a")
  assert first.startswith("a-") and first == name(str(tmp_path / "a") + "/")
  assert first != name(tmp_path / "b") and first != name(tmp_path / "a", channels=1)
  write_images(tmp_path / "a", 3, side=4, seed=1)  # 0.png, 1.png replaced, 2.png added
  assert name(tmp_path / "a") != first
  config = data_config(tmp_path / "a", tmp_path / "tfds")
  assert len(stored(config)) == 3


def test_a_config_naming_a_missing_folder_loads_under_mock_data(tmp_path, mock_data):
  """The folder is read when the dataset is prepared, not when it is named: configs whose
  default folder this machine lacks (dcgan_grumpycat.py elsewhere) still run on mock data."""
  config = data_config(tmp_path / "not_here", tmp_path / "tfds")
  preparation.prepare_dataset(config)
  batch = next(streams.create_train_iterator(config, 2, seed=0))
  assert batch["image"].shape == (2, 8, 8, 3)


@pytest.mark.skipif(not GRUMPY_B.is_dir(), reason="the shared grumpy cats are not here")
def test_the_grumpy_cats_of_the_course(tmp_path):
  config = data_config(GRUMPY_B, tmp_path / "tfds", size=64)
  builder = preparation.prepare_dataset(config)
  assert builder.info.splits["train"].num_examples == 204
  batch = next(streams.create_train_iterator(config, 4, seed=0))
  assert batch["image"].shape == (4, 64, 64, 3) and np.abs(batch["image"]).max() <= 1


def test_concurrent_runs_prepare_once_the_others_wait(tmp_path):
  """Runs started together (three augmentations, a sweep) each call prepare_dataset; TFDS's
  final rename failed for all but the first (FileExistsError). A second caller now waits
  for the preparation lock and then finds the dataset prepared."""
  import threading
  root = tmp_path / "set"
  write_images(root, 3, side=4)
  config = data_config(root, tmp_path / "tfds")
  data_dir = preparation._builder(config).data_dir
  done = []
  with preparation._preparation_lock(data_dir):  # a first run, mid-preparation
    waiter = threading.Thread(target=lambda: done.append(preparation.prepare_dataset(config)))
    waiter.start()
    waiter.join(timeout=3)
    assert waiter.is_alive() and not done  # it waits instead of preparing alongside
  waiter.join(timeout=60)
  assert done and done[0].is_prepared()
  assert len(stored(config)) == 3
