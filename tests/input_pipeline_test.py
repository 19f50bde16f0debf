"""The input pipeline: shapes and range, exact resumption, shuffling, offline errors, real MNIST.

Everything but the last tests runs on `tfds.testing.mock_data`; the real-MNIST tests
prepare TFDS's `mnist` from the shared offline copy and fail, rather than hang, if
anything reaches for the network.
"""

import pathlib
import socket
import time

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxgan import input_pipeline

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SHARED_MNIST = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


def data_config(name="mnist", size=28, channels=1, data_dir=None, manual_dir=None):
  return ml_collections.ConfigDict(dict(name=name, split="train", data_dir=data_dir,
                                        manual_dir=manual_dir, image_size=size,
                                        channels=channels, shuffle_buffer=0))


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def images(batches):
  return np.concatenate([b["image"].reshape(len(b["image"]), -1) for b in batches])


@pytest.fixture
def mock_data(monkeypatch):
  # mock_data answers download_and_prepare itself; only our connectivity check is real.
  monkeypatch.setattr(input_pipeline, "network_available", lambda url: True)
  with tfds.testing.mock_data(num_examples=10):
    yield


@pytest.fixture(params=[True, False], ids=["cached", "decoded_after_skip"])
def cached(request, monkeypatch):
  """Runs a test with decoded images cached in memory, and with decoding after the skip."""
  if not request.param:
    monkeypatch.setattr(input_pipeline, "CACHE_BYTES", 0)
  return request.param


@pytest.mark.parametrize("name,size,channels", [("mnist", 28, 1), ("celeb_a", 64, 3),
                                                ("mnist", 32, 3)])
def test_batches(name, size, channels, mock_data):
  batch = next(input_pipeline.create_train_iterator(data_config(name, size, channels), 4, seed=0))
  assert batch["image"].shape == (4, size, size, channels) and batch["image"].dtype == np.float32
  assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
  assert batch["label"].shape == (4,) and batch["label"].dtype == np.int32


def test_global_batch_must_split_over_processes(mock_data, monkeypatch):
  monkeypatch.setattr(jax, "process_count", lambda: 3)
  with pytest.raises(ValueError, match="not divisible"):
    input_pipeline.create_train_iterator(data_config(), 4, seed=0)


def test_center_square_is_torchvision_resize_then_center_crop():
  # 218 x 178 (CelebA) -> 78 x 64 -> rows 7..70. A row ramp shows which rows survive.
  rows = tf.cast(tf.tile(tf.range(218)[:, None, None], (1, 178, 3)), tf.uint8)
  out = input_pipeline.center_square(rows, 64, 3).numpy()
  assert out.shape == (64, 64, 3)
  scale = 218 / 78
  np.testing.assert_allclose(out[[0, -1], 32, 0], [7.5 * scale - 0.5, 70.5 * scale - 0.5],
                             atol=1)


def test_resume_mid_stream_equals_uninterrupted(mock_data, cached):
  # 10 examples, batch 4: epochs end mid-batch, so steps 2..5 cross two epoch boundaries.
  straight = take(input_pipeline.create_train_iterator(data_config(), 4, seed=3), 6)
  for start in (1, 2, 3, 5):
    resumed = take(input_pipeline.create_train_iterator(data_config(), 4, seed=3,
                                                        start_step=start), 6 - start)
    for a, b in zip(resumed, straight[start:]):
      np.testing.assert_array_equal(a["image"], b["image"])
      np.testing.assert_array_equal(a["label"], b["label"])


def test_caching_does_not_change_the_stream(mock_data, monkeypatch):
  with_cache = images(take(input_pipeline.create_train_iterator(data_config(), 4, seed=1), 5))
  monkeypatch.setattr(input_pipeline, "CACHE_BYTES", 0)
  without = images(take(input_pipeline.create_train_iterator(data_config(), 4, seed=1), 5))
  np.testing.assert_array_equal(with_cache, without)


def test_each_epoch_is_a_fresh_permutation(mock_data):
  def epochs(seed):
    flat = images(take(input_pipeline.create_train_iterator(data_config(), 5, seed=seed), 4))
    return flat[:10], flat[10:]

  first, second = epochs(0)
  # The same ten examples in both epochs, in another order.
  assert sorted(map(bytes, first)) == sorted(map(bytes, second))
  assert not np.array_equal(first, second)
  assert not np.array_equal(first, epochs(1)[0])


def test_cache_decodes_each_image_once(mock_data, monkeypatch):
  decoded = []
  real = input_pipeline.center_square

  def counting(image, size, channels):
    tick = tf.py_function(lambda: decoded.append(1) or 0, [], tf.int32)
    with tf.control_dependencies([tick]):
      return tf.identity(real(image, size, channels))

  monkeypatch.setattr(input_pipeline, "center_square", counting)
  take(input_pipeline.create_train_iterator(data_config(), 5, seed=0), 8)  # four epochs
  assert len(decoded) == 10


def test_network_check_is_a_real_connection():
  with socket.socket() as server:
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    assert input_pipeline.network_available(f"http://127.0.0.1:{port}/file")
  assert not input_pipeline.network_available(f"http://127.0.0.1:{port}/file", timeout=1)


def test_offline_without_data_fails_fast_and_names_the_files(tmp_path, monkeypatch):
  monkeypatch.setattr(input_pipeline, "network_available", lambda url: False)
  start = time.time()
  with pytest.raises(input_pipeline.DataNotFoundError) as e:
    input_pipeline.prepare_dataset(data_config(data_dir=str(tmp_path)))
  assert time.time() - start < 5
  for name in MNIST_FILES:
    assert name in str(e.value)
  assert "--config.data.manual_dir" in str(e.value)
  assert "https://storage.googleapis.com/cvdf-datasets/mnist/" in str(e.value)


def test_offline_celeb_a_names_its_archives(tmp_path, monkeypatch):
  monkeypatch.setattr(input_pipeline, "network_available", lambda url: False)
  with pytest.raises(input_pipeline.DataNotFoundError, match="img_align_celeba.zip") as e:
    input_pipeline.prepare_dataset(data_config("celeb_a", 64, 3, data_dir=str(tmp_path)))
  assert "manual_dir" in str(e.value) and "drive.google.com" in str(e.value)


def test_manual_dir_missing_files_are_named(tmp_path, monkeypatch):
  monkeypatch.setattr(input_pipeline, "network_available", lambda url: False)
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "train-images-idx3-ubyte.gz").write_bytes(b"")
  config = data_config(data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
  with pytest.raises(input_pipeline.DataNotFoundError) as e:
    input_pipeline.prepare_dataset(config)
  message = str(e.value)
  assert ("lacks t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, "
          "train-labels-idx1-ubyte.gz") in message
  assert "train-images-idx3-ubyte.gz" not in message


def test_manual_file_with_wrong_checksum_is_named(tmp_path, monkeypatch):
  monkeypatch.setattr(input_pipeline, "network_available", _no_network)
  manual = tmp_path / "manual"
  manual.mkdir()
  for name in MNIST_FILES:
    (manual / name).write_bytes(b"not mnist")
  config = data_config(data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
  with pytest.raises(input_pipeline.DataNotFoundError, match="checksum"):
    input_pipeline.prepare_dataset(config)


class NetworkUsedError(BaseException):
  """A BaseException, so that no retry loop or `except Exception` swallows it."""


def _no_network(*args, **kwargs):
  raise NetworkUsedError(f"the offline path reached for the network: {args}")


@pytest.fixture(scope="module")
def real_mnist(tmp_path_factory):
  """MNIST prepared once, offline, from the shared copy; the network is off throughout."""
  if not all((SHARED_MNIST / f).exists() for f in MNIST_FILES):
    pytest.skip(f"no MNIST files in {SHARED_MNIST}")
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(input_pipeline, "network_available", _no_network)
    patch.setattr(socket, "getaddrinfo", _no_network)
    patch.setattr(socket.socket, "connect", _no_network)
    config = data_config(data_dir=str(tmp_path_factory.mktemp("tfds")),
                         manual_dir=str(SHARED_MNIST.resolve()))
    config.shuffle_buffer = 1000  # the first batch need not decode all 60k images
    builder = input_pipeline.prepare_dataset(config)
    yield config, builder


def test_real_mnist_is_prepared_offline(real_mnist):
  config, builder = real_mnist
  assert builder.info.splits["train"].num_examples == 60_000
  assert builder.info.splits["test"].num_examples == 10_000
  # A second call finds the prepared data and does nothing else.
  assert input_pipeline.prepare_dataset(config).is_prepared()


def test_real_mnist_batch(real_mnist):
  config, _ = real_mnist
  batch = next(input_pipeline.create_train_iterator(config, 128, seed=0))
  assert batch["image"].shape == (128, 28, 28, 1)
  assert set(np.unique(batch["label"])) <= set(range(10))
  assert len(np.unique(batch["label"])) >= 5
  assert batch["image"].min() == -1.0 and batch["image"].max() == 1.0
  assert batch["image"].std() > 0.3
  assert len({bytes(image) for image in batch["image"]}) == 128
