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

from conftest import SHARED_FACADES, write_pairs
from jaxgan import errors
from jaxgan.datasets import preparation, streams, transforms
from jaxgan.datasets import base as datasets_base

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
  monkeypatch.setattr(datasets_base, "network_available", lambda url: True)
  with tfds.testing.mock_data(num_examples=10):
    yield


@pytest.fixture(params=[True, False], ids=["cached", "decoded_after_skip"])
def cached(request, monkeypatch):
  """Runs a test with decoded images cached in memory, and with decoding after the skip."""
  if not request.param:
    monkeypatch.setattr(streams, "CACHE_BYTES", 0)
  return request.param


@pytest.mark.parametrize("name,size,channels", [("mnist", 28, 1), ("celeb_a", 64, 3),
                                                ("mnist", 32, 3)])
def test_batches(name, size, channels, mock_data):
  batch = next(streams.create_train_iterator(data_config(name, size, channels), 4, seed=0))
  assert batch["image"].shape == (4, size, size, channels) and batch["image"].dtype == np.float32
  assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
  assert batch["label"].shape == (4,) and batch["label"].dtype == np.int32


def test_global_batch_must_split_over_processes(mock_data, monkeypatch):
  monkeypatch.setattr(jax, "process_count", lambda: 3)
  with pytest.raises(ValueError, match="not divisible"):
    streams.create_train_iterator(data_config(), 4, seed=0)


def test_center_square_is_torchvision_resize_then_center_crop():
  # 218 x 178 (CelebA) -> 78 x 64 -> rows 7..70. A row ramp shows which rows survive.
  rows = tf.cast(tf.tile(tf.range(218)[:, None, None], (1, 178, 3)), tf.uint8)
  out = transforms.center_square(rows, 64, 3).numpy()
  assert out.shape == (64, 64, 3)
  scale = 218 / 78
  np.testing.assert_allclose(out[[0, -1], 32, 0], [7.5 * scale - 0.5, 70.5 * scale - 0.5],
                             atol=1)


def test_resume_mid_stream_equals_uninterrupted(mock_data, cached):
  # 10 examples, batch 4: epochs end mid-batch, so steps 2..5 cross two epoch boundaries.
  straight = take(streams.create_train_iterator(data_config(), 4, seed=3), 6)
  for start in (1, 2, 3, 5):
    resumed = take(streams.create_train_iterator(data_config(), 4, seed=3,
                                                 start_step=start), 6 - start)
    for a, b in zip(resumed, straight[start:]):
      np.testing.assert_array_equal(a["image"], b["image"])
      np.testing.assert_array_equal(a["label"], b["label"])


def test_groups_are_consecutive_batches(mock_data):
  straight = take(streams.create_train_iterator(data_config(), 4, seed=3, start_step=2), 6)
  groups = take(streams.create_train_iterator(data_config(), 4, seed=3, start_step=2, group=3), 2)
  assert groups[0]["image"].shape == (3, 4, 28, 28, 1) and groups[0]["label"].shape == (3, 4)
  for key in ("image", "label"):
    np.testing.assert_array_equal(np.concatenate([g[key] for g in groups]),
                                  np.stack([b[key] for b in straight]))


def test_caching_does_not_change_the_stream(mock_data, monkeypatch):
  with_cache = images(take(streams.create_train_iterator(data_config(), 4, seed=1), 5))
  monkeypatch.setattr(streams, "CACHE_BYTES", 0)
  without = images(take(streams.create_train_iterator(data_config(), 4, seed=1), 5))
  np.testing.assert_array_equal(with_cache, without)


def test_each_epoch_is_a_fresh_permutation(mock_data):
  def epochs(seed):
    flat = images(take(streams.create_train_iterator(data_config(), 5, seed=seed), 4))
    return flat[:10], flat[10:]

  first, second = epochs(0)
  # The same ten examples in both epochs, in another order.
  assert sorted(map(bytes, first)) == sorted(map(bytes, second))
  assert not np.array_equal(first, second)
  assert not np.array_equal(first, epochs(1)[0])


def test_cache_decodes_each_image_once(mock_data, monkeypatch):
  decoded = []
  real = transforms.center_square

  def counting(image, size, channels):
    tick = tf.py_function(lambda: decoded.append(1) or 0, [], tf.int32)
    with tf.control_dependencies([tick]):
      return tf.identity(real(image, size, channels))

  monkeypatch.setattr(transforms, "center_square", counting)
  take(streams.create_train_iterator(data_config(), 5, seed=0), 8)  # four epochs
  assert len(decoded) == 10


def test_network_check_is_a_real_connection():
  with socket.socket() as server:
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    assert datasets_base.network_available(f"http://127.0.0.1:{port}/file")
  assert not datasets_base.network_available(f"http://127.0.0.1:{port}/file", timeout=1)


def test_offline_without_data_fails_fast_and_names_the_files(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", lambda url: False)
  start = time.time()
  with pytest.raises(errors.DataNotFoundError) as e:
    preparation.prepare_dataset(data_config(data_dir=str(tmp_path)))
  assert time.time() - start < 5
  for name in MNIST_FILES:
    assert name in str(e.value)
  assert "--config.data.manual_dir" in str(e.value)
  assert "https://storage.googleapis.com/cvdf-datasets/mnist/" in str(e.value)


def test_offline_celeb_a_names_its_archives(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", lambda url: False)
  with pytest.raises(errors.DataNotFoundError, match="img_align_celeba.zip") as e:
    preparation.prepare_dataset(data_config("celeb_a", 64, 3, data_dir=str(tmp_path)))
  assert "manual_dir" in str(e.value) and "drive.google.com" in str(e.value)


def test_manual_dir_missing_files_are_named(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", lambda url: False)
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "train-images-idx3-ubyte.gz").write_bytes(b"")
  config = data_config(data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
  with pytest.raises(errors.DataNotFoundError) as e:
    preparation.prepare_dataset(config)
  message = str(e.value)
  assert ("lacks t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, "
          "train-labels-idx1-ubyte.gz") in message
  assert "train-images-idx3-ubyte.gz" not in message


def test_manual_file_with_wrong_checksum_is_named(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", _no_network)
  manual = tmp_path / "manual"
  manual.mkdir()
  for name in MNIST_FILES:
    (manual / name).write_bytes(b"not mnist")
  config = data_config(data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
  with pytest.raises(errors.DataNotFoundError, match="checksum"):
    preparation.prepare_dataset(config)


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
    patch.setattr(datasets_base, "network_available", _no_network)
    patch.setattr(socket, "getaddrinfo", _no_network)
    patch.setattr(socket.socket, "connect", _no_network)
    config = data_config(data_dir=str(tmp_path_factory.mktemp("tfds")),
                         manual_dir=str(SHARED_MNIST.resolve()))
    config.shuffle_buffer = 1000  # the first batch need not decode all 60k images
    builder = preparation.prepare_dataset(config)
    yield config, builder


def test_real_mnist_is_prepared_offline(real_mnist):
  config, builder = real_mnist
  assert builder.info.splits["train"].num_examples == 60_000
  assert builder.info.splits["test"].num_examples == 10_000
  # A second call finds the prepared data and does nothing else.
  assert preparation.prepare_dataset(config).is_prepared()


def test_real_mnist_batch(real_mnist):
  config, _ = real_mnist
  batch = next(streams.create_train_iterator(config, 128, seed=0))
  assert batch["image"].shape == (128, 28, 28, 1)
  assert set(np.unique(batch["label"])) <= set(range(10))
  assert len(np.unique(batch["label"])) >= 5
  assert batch["image"].min() == -1.0 and batch["image"].max() == 1.0
  assert batch["image"].std() > 0.3
  assert len({bytes(image) for image in batch["image"]}) == 128


# ---------------------------------------------------------------------------------------
# Paired datasets (pix2pix/facades), on tiny side-by-side images made here.


def paired_config(tmp_path, manual, direction="BtoA", size=16, load_size=20):
  config = data_config("pix2pix/facades", size, 3, data_dir=str(tmp_path / "tfds"),
                       manual_dir=str(manual))
  config.direction, config.load_size, config.flip = direction, load_size, True
  return config


@pytest.fixture
def identical_halves(tmp_path, monkeypatch):
  """7 train / 3 val pairs whose two halves are equal pixel for pixel."""
  monkeypatch.setattr(datasets_base, "network_available", _no_network)
  write_pairs(tmp_path / "facades" / "train", 7, side=16)
  write_pairs(tmp_path / "facades" / "val", 3, side=16, seed=1)
  return paired_config(tmp_path, tmp_path / "facades")


def test_input_and_target_are_cropped_and_flipped_alike(identical_halves):
  # Both halves are equal, so any difference after preprocessing would be a crop or flip
  # applied to one and not the other.
  batches = take(streams.create_train_iterator(identical_halves, 2, seed=0), 14)
  for b in batches:
    assert b["input"].shape == b["target"].shape == (2, 16, 16, 3)
    assert b["input"].dtype == np.float32 and -1 <= b["input"].min() <= b["input"].max() <= 1
    np.testing.assert_array_equal(b["input"], b["target"])
  # ... and the crops and flips do vary: each example appears 4 times over 4 epochs.
  assert len({bytes(x) for b in batches for x in b["input"]}) > 14


def test_random_crop_and_flip_draws_one_window_for_both():
  ramp = tf.reshape(tf.range(20 * 20, dtype=tf.int32), (20, 20, 1)) * tf.ones((1, 1, 3), tf.int32)
  corners, flips = set(), set()
  for i in range(300):
    out = transforms.random_crop_and_flip({"input": ramp, "target": ramp + 7}, 16, True,
                                          tf.constant([3, i], tf.int64))
    x, y = out["input"].numpy(), out["target"].numpy()
    np.testing.assert_array_equal(y - x, 7)  # the same window, the same flip
    flipped = x[0, 0, 0] > x[0, -1, 0]
    top, left = divmod(int(x[0, -1 if flipped else 0, 0]), 20)
    np.testing.assert_array_equal(x[..., 0], np.arange(400).reshape(20, 20)[
        top:top + 16, left:left + 16][:, ::-1 if flipped else 1])
    corners.add((top, left))
    flips.add(flipped)
  # The reference's get_params: x, y uniform in [0, load - crop] inclusive, flip p = 1/2.
  assert {t for t, _ in corners} == set(range(5)) and {l for _, l in corners} == set(range(5))
  assert flips == {True, False}
  same = transforms.random_crop_and_flip({"input": ramp}, 16, True, tf.constant([3, 0], tf.int64))
  np.testing.assert_array_equal(same["input"], transforms.random_crop_and_flip(
      {"input": ramp}, 16, True, tf.constant([3, 0], tf.int64))["input"])  # stateless


def test_paired_resume_mid_stream_equals_uninterrupted(identical_halves):
  straight = take(streams.create_train_iterator(identical_halves, 3, seed=5), 6)
  for start in (1, 2, 4):
    resumed = take(streams.create_train_iterator(identical_halves, 3, seed=5,
                                                 start_step=start), 6 - start)
    for a, b in zip(resumed, straight[start:]):
      np.testing.assert_array_equal(a["input"], b["input"])


def test_direction_picks_the_half(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", _no_network)
  write_pairs(tmp_path / "f" / "train", 2, identical=False)  # right half = 255 - left
  write_pairs(tmp_path / "f" / "val", 2, seed=1, identical=False)
  a_to_b = paired_config(tmp_path, tmp_path / "f", "AtoB", load_size=16)
  b_to_a = paired_config(tmp_path, tmp_path / "f", "BtoA", load_size=16)
  x = next(preparation.create_eval_iterator(a_to_b, "val", 2))
  y = next(preparation.create_eval_iterator(b_to_a, "val", 2))
  np.testing.assert_array_equal(x["input"], y["target"])
  np.testing.assert_allclose(x["input"], -x["target"], atol=0.1)  # JPEG round-off only
  with pytest.raises(errors.ConfigError, match="direction must be one of AtoB, BtoA"):
    preparation.image_features(ml_collections.ConfigDict({"direction": "AB"}))


def test_eval_iterator_reads_the_split_once_in_order(identical_halves):
  identical_halves.image_size = 32  # test time: resized straight to image_size
  batches = list(preparation.create_eval_iterator(identical_halves, "val", 2))
  assert [len(b["input"]) for b in batches] == [2, 1]
  assert batches[0]["input"].shape == (2, 32, 32, 3)
  again = list(preparation.create_eval_iterator(identical_halves, "val", 2))
  np.testing.assert_array_equal(batches[1]["target"], again[1]["target"])
  first = next(preparation.create_eval_iterator(identical_halves, "val", 5, num=2))
  np.testing.assert_array_equal(first["input"], batches[0]["input"])
  with pytest.raises(errors.ConfigError, match="has no split 'test'; it has train, val"):
    preparation.create_eval_iterator(identical_halves, "test", 2)


def test_resize_is_pil_bicubic():
  from PIL import Image  # pylint: disable=import-outside-toplevel
  yy, xx = np.mgrid[0:64, 0:64]
  image = np.stack([128 + 100 * np.sin(xx / 5.0), 128 + 100 * np.cos(yy / 3.0),
                    np.where((xx // 8 + yy // 8) % 2, 200, 40)], -1).astype(np.uint8)
  for size in (72, 36):  # up (286/256) and down (143/256), as the facades configs resize
    want = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC), np.int32)
    got = transforms.resize_bicubic(tf.constant(image), size).numpy().astype(np.int32)
    # PIL computes in fixed point and rounds to uint8 between its horizontal and vertical
    # passes: a few levels apart at sharp edges, rarely.
    assert np.abs(want - got).max() <= 5 and np.abs(want - got).mean() < 0.3


def test_offline_facades_without_folder_names_the_archive(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", lambda url: False)
  config = paired_config(tmp_path, tmp_path / "nothing_here")
  with pytest.raises(errors.DataNotFoundError, match="facades.tar.gz from http://"):
    next(streams.create_train_iterator(config, 1, seed=0))


@pytest.mark.skipif(not (SHARED_FACADES / "train").is_dir(), reason="no shared facades copy")
def test_real_facades_batch(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets_base, "network_available", _no_network)
  config = paired_config(tmp_path, SHARED_FACADES, size=256, load_size=286)
  config.shuffle_buffer = 8  # the first batch need not decode the whole split
  splits = preparation.prepare_dataset(config).info.splits
  assert {k: v.num_examples for k, v in splits.items()} == {"train": 400, "val": 100}
  batch = next(streams.create_train_iterator(config, 2, seed=0))
  assert batch["input"].shape == batch["target"].shape == (2, 256, 256, 3)
  # BtoA: the input is the label map (flat colours, but for JPEG and resizing round-off at
  # their edges), the target the photo.
  for label_map, photo in zip(batch["input"], batch["target"]):
    assert 2 * len(np.unique(label_map.reshape(-1, 3), axis=0)) < len(np.unique(photo.reshape(-1, 3), axis=0))
