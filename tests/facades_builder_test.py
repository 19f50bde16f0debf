"""The `pix2pix/facades` TFDS builder on tiny dummy data made here: prepared from a
manual_dir copy of the extracted folder, and from the (mocked) download of the archive."""

import tempfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import write_pairs
from jaxgan import errors
from jaxgan.datasets import base as datasets_base
from jaxgan.datasets import pix2pix


def dummy_facades(root, splits):
  for split, count in splits.items():
    write_pairs(f"{root}/{split}", count, seed=len(split))
  return root


class FacadesFromManualDirTest(tfds.testing.DatasetBuilderTestCase):
  """manual_dir = the extracted folder (what ../shared/data/facades is): train/, val/."""
  DATASET_CLASS = pix2pix.Pix2pix
  BUILDER_CONFIG_NAMES_TO_TEST = ["facades"]
  SPLITS = {"train": 3, "val": 2}
  SKIP_CHECKSUMS = True  # nothing is downloaded

  @classmethod
  def setUpClass(cls):
    cls.EXAMPLE_DIR = dummy_facades(tempfile.mkdtemp(), cls.SPLITS)
    super().setUpClass()


class FacadesFromArchiveTest(tfds.testing.DatasetBuilderTestCase):
  """No train/ and val/ in manual_dir: the archive is downloaded and extracted (mocked:
  `archive/` stands for what facades.tar.gz extracts to, `facades/` with three splits)."""
  DATASET_CLASS = pix2pix.Pix2pix
  BUILDER_CONFIG_NAMES_TO_TEST = ["facades"]
  SPLITS = {"train": 3, "val": 2, "test": 1}
  DL_EXTRACT_RESULT = "archive"
  # The server publishes no checksums and none could be recorded offline; TFDS then
  # downloads without checking (force_checksums_validation is off by default).
  SKIP_CHECKSUMS = True

  @classmethod
  def setUpClass(cls):
    root = tempfile.mkdtemp()
    dummy_facades(f"{root}/archive/facades", cls.SPLITS)
    cls.EXAMPLE_DIR = root
    super().setUpClass()

  def setUp(self):
    super().setUp()
    patcher = pytest.MonkeyPatch()
    patcher.setattr(datasets_base, "network_available", lambda url: True)
    self.addCleanup(patcher.undo)


def test_halves_are_cut_as_the_reference_cuts_them(tmp_path):
  write_pairs(tmp_path, 1, side=16)
  a, b = pix2pix.split_pair(tmp_path / "1.jpg")
  assert a.shape == b.shape == (16, 16, 3) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)  # write_pairs repeats the left half


def test_offline_without_the_folder_is_one_clear_error(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", lambda url: False)
  (tmp_path / "manual" / "photos").mkdir(parents=True)  # a folder without the layout
  builder = tfds.builder("pix2pix/facades", data_dir=str(tmp_path / "tfds"))
  with pytest.raises(errors.DataNotFoundError) as e:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual")))
  message = str(e.value)
  assert "\n" not in message
  assert "holds no train/ and val/ folders" in message
  assert "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz" in message
  assert "--config.data.manual_dir=FOLDER" in message
