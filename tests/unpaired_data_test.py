"""Unpaired data: the `unpaired/*` TFDS builders on dummy folders made here (both layouts),
the one-line offline error, the reference's UnalignedDataset stream (epoch length, A by
index, B at random, own flips, exact resume, process shards), and the shared copies of
the grumpy cat and apple2orange64 sets when this machine has them."""

import tempfile

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import SHARED_DATA, write_images
from jaxgan import errors
from jaxgan.datasets import preparation, streams
from jaxgan.datasets import base as datasets_base
from jaxgan.datasets import unpaired


class GrumpifyCatCourseLayoutTest(tfds.testing.DatasetBuilderTestCase):
  """manual_dir as the course ships it: cat/grumpifyAprocessed, cat/grumpifyBprocessed."""
  DATASET_CLASS = unpaired.Unpaired
  BUILDER_CONFIG_NAMES_TO_TEST = ["grumpifycat"]
  SPLITS = {"trainA": 3, "trainB": 4}
  SKIP_CHECKSUMS = True  # nothing is downloaded

  @classmethod
  def setUpClass(cls):
    root = tempfile.mkdtemp()
    write_images(f"{root}/cat/grumpifyAprocessed", 3, seed=1)
    write_images(f"{root}/cat/grumpifyBprocessed", 4, seed=2)
    cls.EXAMPLE_DIR = root
    super().setUpClass()


class Apple2orangeFolderLayoutTest(tfds.testing.DatasetBuilderTestCase):
  """manual_dir = the extracted apple2orange.zip: trainA/ trainB/ testA/ testB/, JPEGs."""
  DATASET_CLASS = unpaired.Unpaired
  BUILDER_CONFIG_NAMES_TO_TEST = ["apple2orange"]
  SPLITS = {"trainA": 3, "trainB": 2, "testA": 1, "testB": 2}
  SKIP_CHECKSUMS = True

  @classmethod
  def setUpClass(cls):
    root = tempfile.mkdtemp()
    for seed, (split, count) in enumerate(cls.SPLITS.items()):
      write_images(f"{root}/{split}", count, seed=seed, suffix=".jpg")
    (tempfile.NamedTemporaryFile(dir=f"{root}/trainA", suffix=".txt", delete=False))  # not an image
    cls.EXAMPLE_DIR = root
    super().setUpClass()


def test_offline_without_the_folders_is_one_clear_error(tmp_path):
  (tmp_path / "manual" / "cats").mkdir(parents=True)  # a folder without the layout
  builder = tfds.builder("unpaired/grumpifycat", data_dir=str(tmp_path / "tfds"))
  with pytest.raises(errors.DataNotFoundError) as e:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual")))
  message = str(e.value)
  assert "\n" not in message
  assert "holds no trainA/ and trainB/ folders" in message
  assert "grumpifyAprocessed/ and grumpifyBprocessed/" in message
  assert "A = Russian Blue, B = Grumpy Cat" in message
  assert "--config.data.manual_dir=FOLDER" in message


# ---------------------------------------------------------------------------------------
# The training stream.


def data_config(root, data_dir, size=16, load=16, flip=False, examples=5):
  return ml_collections.ConfigDict(dict(
      name="unpaired/apple2orange64", split="train", data_dir=str(data_dir),
      manual_dir=str(root), image_size=size, load_size=load, channels=3, flip=flip,
      unpaired=True, num_train_examples=examples))


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
  """3 A and 5 B images, 16x16, prepared once, offline: (manual_dir, data_dir)."""
  root = tmp_path_factory.mktemp("apple2orange64")
  write_images(root / "trainA", 3, seed=1)
  write_images(root / "trainB", 5, seed=2)
  data_dir = tmp_path_factory.mktemp("tfds")
  preparation.prepare_dataset(data_config(root, data_dir))
  return root, data_dir


def stored(config, domain):
  return preparation.load_split(config, f"train{domain}")["image"]


def which(image, images):
  """The index of `image` among `images` (or of its mirror image, negated - 1)."""
  for i, x in enumerate(images):
    if np.array_equal(image, x):
      return i
    if np.array_equal(image, x[:, ::-1]):
      return -i - 1
  raise AssertionError("not a stored image")


def take(config, steps, batch=1, start=0, seed=0):
  stream = streams.create_train_iterator(config, batch, seed, start)
  return [next(stream) for _ in range(steps)]


def test_an_epoch_is_the_larger_domain_with_a_by_index_and_b_at_random(tiny_set):
  config = data_config(*tiny_set)
  a_images, b_images = stored(config, "A"), stored(config, "B")
  batches = take(config, 50)
  assert set(batches[0]) == {"A", "B"} and batches[0]["A"].shape == (1, 16, 16, 3)
  a = [which(b["A"][0], a_images) for b in batches]
  b = [which(x["B"][0], b_images) for x in batches]
  # Every epoch (5 positions) covers a permutation of 0..4 taken modulo 3: image 0 and 1
  # twice, image 2 once.
  for e in range(10):
    assert sorted(a[5 * e:5 * e + 5]) == [0, 0, 1, 1, 2]
  # B is drawn with replacement, every image turns up, and not as a permutation.
  assert set(b) == set(range(5))
  assert any(sorted(b[5 * e:5 * e + 5]) != list(range(5)) for e in range(10))
  other_seed = [which(x["A"][0], a_images) for x in take(config, 10, seed=1)]
  assert other_seed != a[:10]


def test_each_image_gets_its_own_flip_and_crop(tiny_set):
  config = data_config(*tiny_set, flip=True)
  a_images = stored(config, "A")
  a = [which(x["A"][0], a_images) for x in take(config, 40)]
  assert any(i < 0 for i in a) and any(i >= 0 for i in a)  # mirrored and not
  cropped = take(data_config(*tiny_set, size=12, load=16), 3)
  assert cropped[0]["A"].shape == cropped[0]["B"].shape == (1, 12, 12, 3)


def test_resume_mid_stream_equals_uninterrupted(tiny_set):
  config = data_config(*tiny_set, flip=True, size=12)
  straight = take(config, 8, batch=2)  # 2 per step, epochs of 5: boundaries mid-batch
  for start in (1, 3, 5):
    resumed = take(config, 8 - start, batch=2, start=start)
    for x, y in zip(resumed, straight[start:]):
      for key in ("A", "B"):
        np.testing.assert_array_equal(x[key], y[key])


def test_processes_split_every_global_batch(tiny_set, monkeypatch):
  config = data_config(*tiny_set, flip=True)
  whole = take(config, 4, batch=4)
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  parts = []
  for index in (0, 1):
    monkeypatch.setattr(jax, "process_index", lambda index=index: index)
    parts.append(take(config, 4, batch=4))
  for step in range(4):
    for key in ("A", "B"):
      # Process k holds the positions k, k + 2 of the global batch.
      mine = np.stack([parts[0][step][key][0], parts[1][step][key][0],
                       parts[0][step][key][1], parts[1][step][key][1]])
      np.testing.assert_array_equal(mine, whole[step][key])


def test_a_missing_phase_is_a_config_error(tiny_set):
  config = data_config(*tiny_set)
  config.split = "test"
  with pytest.raises(errors.ConfigError, match="has no split 'testA'"):
    take(config, 1)


# ---------------------------------------------------------------------------------------
# The shared copies (skipped where this machine lacks them).


@pytest.mark.parametrize("name,folder,sizes", [
    ("grumpifycat", "grumpifyCat", {"trainA": 75, "trainB": 204}),
    ("apple2orange64", "apple2orange64", {"trainA": 995, "trainB": 1019}),
])
def test_shared_sets_prepare_offline(name, folder, sizes, tmp_path, monkeypatch):
  if not (SHARED_DATA / folder).is_dir():
    pytest.skip(f"no {SHARED_DATA / folder} on this machine")

  def no_network(*args):
    raise AssertionError(f"the network was used: {args}")

  monkeypatch.setattr(datasets_base, "network_available", no_network)
  config = data_config(SHARED_DATA / folder, tmp_path, size=64, load=64)
  config.name = f"unpaired/{name}"
  builder = preparation.prepare_dataset(config)
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == sizes
  batch = take(config, 1)[0]
  assert batch["A"].shape == batch["B"].shape == (1, 64, 64, 3)
