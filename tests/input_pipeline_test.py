"""The input pipeline: shapes and range, exact resumption, shuffling, offline errors, real MNIST."""

import time

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import SHARED_DATA
from jaxgan import input_pipeline

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def data_config(name="mnist", size=28, channels=1, data_dir=None):
  return ml_collections.ConfigDict(dict(name=name, split="train", data_dir=data_dir,
                                        manual_dir=None, image_size=size, channels=channels,
                                        shuffle_buffer=0))


@pytest.fixture
def mock_data(monkeypatch):
  monkeypatch.setattr(input_pipeline, "network_available", lambda url: True)
  with tfds.testing.mock_data(num_examples=10):
    yield


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


@pytest.mark.parametrize("name,size,channels", [("mnist", 28, 1), ("celeb_a", 64, 3),
                                                ("mnist", 32, 3)])
def test_batches(name, size, channels, mock_data):
  batch = next(input_pipeline.create_train_iterator(data_config(name, size, channels), 4, seed=0))
  assert batch["image"].shape == (4, size, size, channels) and batch["image"].dtype == np.float32
  assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
  assert batch["label"].shape == (4,) and batch["label"].dtype == np.int32


def test_resume_mid_stream_equals_uninterrupted(mock_data):
  # 10 examples, batch 4: epochs end mid-batch, so steps 2..5 cross two epoch boundaries.
  straight = take(input_pipeline.create_train_iterator(data_config(), 4, seed=3), 6)
  for start in (1, 2, 3, 5):
    resumed = take(input_pipeline.create_train_iterator(data_config(), 4, seed=3, start_step=start),
                   6 - start)
    for a, b in zip(resumed, straight[start:]):
      np.testing.assert_array_equal(a["image"], b["image"])
      np.testing.assert_array_equal(a["label"], b["label"])


def test_each_epoch_is_a_fresh_permutation(mock_data):
  def epochs(seed):
    batches = take(input_pipeline.create_train_iterator(data_config(), 5, seed=seed), 4)
    flat = np.concatenate([b["image"].reshape(5, -1) for b in batches])
    return flat[:10], flat[10:]

  first, second = epochs(0)
  # Same ten examples in both epochs, in another order.
  assert sorted(map(bytes, first.astype(np.float32))) == sorted(map(bytes, second.astype(np.float32)))
  assert not np.array_equal(first, second)
  assert not np.array_equal(first, epochs(1)[0])


def test_offline_without_data_fails_fast_and_names_the_files(tmp_path, monkeypatch):
  monkeypatch.setattr(input_pipeline, "network_available", lambda url: False)
  start = time.time()
  with pytest.raises(input_pipeline.DataNotFoundError) as e:
    input_pipeline.prepare_dataset(data_config(data_dir=str(tmp_path)))
  assert time.time() - start < 10
  for name in MNIST_FILES:
    assert name in str(e.value)
  assert "manual_dir" in str(e.value) and "storage.googleapis.com/cvdf-datasets/mnist" in str(e.value)


def test_manual_dir_missing_files_are_named(tmp_path, monkeypatch):
  monkeypatch.setattr(input_pipeline, "network_available", lambda url: False)
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "train-images-idx3-ubyte.gz").write_bytes(b"")
  config = data_config()
  config.data_dir, config.manual_dir = str(tmp_path / "tfds"), str(manual)
  with pytest.raises(input_pipeline.DataNotFoundError, match="lacks t10k-images-idx3-ubyte.gz, "
                     "t10k-labels-idx1-ubyte.gz, train-labels-idx1-ubyte.gz"):
    input_pipeline.prepare_dataset(config)


def test_real_mnist_offline(tmp_path_factory, monkeypatch):
  if not all((SHARED_DATA / "mnist" / f).exists() for f in MNIST_FILES):
    pytest.skip(f"no MNIST files in {SHARED_DATA / 'mnist'}")

  def no_network(url):
    raise AssertionError(f"the offline path tried the network ({url})")

  monkeypatch.setattr(input_pipeline, "network_available", no_network)
  config = data_config()
  config.data_dir = str(tmp_path_factory.mktemp("tfds"))
  config.manual_dir = str(SHARED_DATA / "mnist")
  builder = input_pipeline.prepare_dataset(config)
  assert builder.info.splits["train"].num_examples == 60_000
  assert builder.info.splits["test"].num_examples == 10_000
  batch = next(input_pipeline.create_train_iterator(config, 256, seed=0))
  assert set(np.unique(batch["label"])) == set(range(10))
  assert batch["image"].min() == -1.0 and batch["image"].max() == 1.0
  assert batch["image"].std() > 0.3
