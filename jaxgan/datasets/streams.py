"""The training streams: endless batches, sharded per process, exactly resumable.

`create_train_iterator` yields this process's rows of each global batch, built by the
stream of the config's `preparation.StreamKind`. Every stream is a pure function of (seed,
start step): epoch e is the split shuffled with seed (seed, e), and every random crop, flip
or draw comes from stateless seeds (seed, epoch, position in the epoch), so a run resumed
at step s skips at most one epoch's worth of elements to stand exactly where an
uninterrupted run would be.

- IMAGES: preprocessed as in the PyTorch DCGAN tutorial (Resize(size) then
  CenterCrop(size), values in [-1, 1]); with `config.augment.kind=deluxe` each image is
  cached at `transforms.deluxe_load_size` and gets the course's random crop, flip and
  optional colour jitter per example (`transforms.deluxe`).
- PAIRS (pix2pix's): as the reference's `AlignedDataset` with `--preprocess
  resize_and_crop`: both images resized to `load_size` (bicubic), one random `image_size`
  crop and one random horizontal flip per example applied to both.
- UNPAIRED (CycleGAN's): as the reference's `UnalignedDataset` with serial_batches off: an
  epoch is max(|A|, |B|) examples; position i of epoch e, in a permutation of 0 .. max - 1
  seeded by (seed, e), takes the A image at that index modulo |A| and a B image drawn
  uniformly; each image is resized to `load_size` (bicubic), then gets its own random crop
  and flip. Both domains are held decoded in memory (the CycleGAN sets are small), and
  process k of P takes positions k, k + P, ... of the global stream, so the stream is the
  same on any number of processes.
"""

from typing import Iterator

from absl import logging
import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxgan.datasets import preparation
from jaxgan.datasets import transforms
from jaxgan.datasets.preparation import StreamKind
from jaxgan.errors import ConfigError, DataError, DataNotFoundError

# Decoded, resized uint8 images up to this many bytes per process are kept in memory, so
# only the first epoch decodes (MNIST: 47 MB; CelebA at 64x64: 2.0 GB). Larger sets are
# shuffled and skipped as encoded bytes and decoded after the skip.
CACHE_BYTES = 2 << 30
# Splits up to this size are shuffled as a whole when config.data.shuffle_buffer is unset.
FULL_SHUFFLE_MAX_EXAMPLES = 100_000
DEFAULT_SHUFFLE_BUFFER = 10_000


def augment_kind(augment_config) -> str:
  """`config.augment.kind`, "none" where a config has no augment section."""
  return (augment_config or {}).get("kind", "none") or "none"


def _epochs(examples: tf.data.Dataset, buffer: int, seed: int, first_epoch: int,
            with_seeds: bool = False):
  """Epochs first_epoch, first_epoch + 1, ... each a permutation seeded by (seed, epoch).

  `with_seeds`: each element also gets `augment_seed` = (seed, epoch, position in the
  epoch) folded into a stateless seed, for its random crop and flip.
  """

  def epoch(e):
    epoch_seed = tf.constant(seed, tf.int64) * 1_000_003 + e
    shuffled = examples.shuffle(buffer, seed=epoch_seed, reshuffle_each_iteration=False)
    if not with_seeds:
      return shuffled
    return shuffled.enumerate().map(lambda i, ex: {**ex, "augment_seed": tf.stack([epoch_seed, i])})

  return tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch)


def _check_channels(stream: tf.data.Dataset, data_config) -> None:
  """ConfigError when the images have another number of channels than the model is
  built for (config.data.channels)."""
  for key, spec in stream.element_spec.items():
    channels = spec.shape[-1] if spec.shape.rank == 4 else None
    if channels is not None and channels != data_config.channels:
      raise ConfigError(f"config.data.channels={data_config.channels}, but the {key} images of "
                        f"{data_config.name} have {channels} channels")


def create_train_iterator(data_config, global_batch_size: int, seed: int,
                          start_step: int = 0, process_index: int | None = None,
                          process_count: int | None = None,
                          augment_config=None,
                          group: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """Endless batches {'image': float32 [B/P, S, S, C] in [-1, 1], 'label': int32 [B/P]}
  (paired datasets: 'input' and 'target' instead of 'image'; unpaired ones: 'A' and 'B'
  and no label). `augment_config` (`config.augment`): kind `deluxe` augments the images
  of single-image datasets (module docstring); other kinds happen in the step.

  `group` > 1 yields `group` consecutive batches stacked on a leading axis ([group, B/P,
  ...]; the same batches in the same order) for a loop of several steps per call: one
  element per call instead of one per step, since each element costs the loop's input
  thread its own conversion (`train.device_calls`).

  B is the global batch, P the number of processes; each process reads its own shard.
  Batch k of `start_step=s` equals batch s + k of `start_step=0`. `process_index` and
  `process_count` default to JAX's (`jax.process_index()`, `jax.process_count()`); given,
  they name the shard of another process, so one process can read what each process of
  a P-process job reads (tests/multihost_test.py builds the global batch that way).
  """
  processes = jax.process_count() if process_count is None else process_count
  index = jax.process_index() if process_index is None else process_index
  if global_batch_size % processes:
    raise ValueError(f"global batch size {global_batch_size} is not divisible by the "
                     f"{processes} processes")
  local_batch = global_batch_size // processes
  kind = preparation.stream_kind(data_config)
  builder = preparation.prepare_dataset(data_config)
  deluxe_config = augment_config if augment_kind(augment_config) == "deluxe" else None
  if deluxe_config and kind is not StreamKind.IMAGES:
    raise ConfigError("config.augment.kind=deluxe augments single images; pix2pix's and "
                      "CycleGAN's data get their own crops and flips (config.data.load_size, "
                      "config.data.flip)")
  if kind is StreamKind.UNPAIRED:
    stream = _unpaired_stream(builder, data_config, seed, start_step * global_batch_size,
                              index, processes)
  else:
    stream = _example_stream(builder, data_config, kind, seed, start_step * local_batch, index,
                             processes, deluxe_config)
  stream = stream.batch(local_batch, drop_remainder=True).map(transforms.to_float)
  _check_channels(stream, data_config)
  if group > 1:
    stream = stream.batch(group, drop_remainder=True)
  options = tf.data.Options()
  options.deterministic = True
  stream = stream.with_options(options).prefetch(tf.data.AUTOTUNE)
  return iter(tfds.as_numpy(stream))


def _load_size(data_config) -> int:
  """The side images are resized to before the random crop (the reference's --load_size)."""
  size = data_config.image_size
  load = data_config.get("load_size") or size
  if load < size:
    raise ConfigError(f"config.data.load_size={load} is smaller than the crop, "
                      f"config.data.image_size={size}")
  return load


def _check_epoch_length(data_config, actual: int, what: str) -> None:
  expected = data_config.get("num_train_examples")
  if expected and expected != actual:  # the family's epochs would not be the data's
    logging.warning("config.data.num_train_examples=%d, but %s has %d examples (%s)",
                    expected, data_config.name, actual, what)


def _example_stream(builder, data_config, kind: StreamKind, seed: int, start: int, index: int,
                    processes: int, deluxe_config=None) -> tf.data.Dataset:
  """Process `index`'s examples (of `processes`) from element `start` of its shard on:
  single images (with `deluxe_config`, the `deluxe` augmentation), or pairs cropped and
  flipped alike."""
  features = preparation.image_features(data_config)
  preparation.check_split(builder, data_config, data_config.split)
  preparation.check_features(builder, data_config, features)
  paired = kind is StreamKind.PAIRS
  split = preparation.training_split(data_config)  # without the held-out images
  shard = tfds.split_for_jax_process(split, process_index=index, process_count=processes)
  examples = preparation.read_split(builder, shard, features)
  n = int(examples.cardinality())  # this process's shard; TFDS always knows it
  if n <= 0:
    raise DataError(f"{data_config.name} {split}: no examples for process "
                    f"{index} of {processes}")
  size, channels = data_config.image_size, data_config.channels
  # Paired images are cached at load_size and cropped to image_size per epoch.
  stored = _load_size(data_config) if paired else size
  if split in builder.info.splits:
    _check_epoch_length(data_config, builder.info.splits[split].num_examples, split)
  decode = preparation.decoder(builder, data_config, features, stored)
  if deluxe_config:  # cached at 1.1 x image_size, cropped back per epoch
    stored = transforms.deluxe_load_size(size)
    decode = transforms.then_resized(decode, stored)

  cached = n * len(features) * stored * stored * channels <= CACHE_BYTES
  if cached:
    examples = examples.map(decode, tf.data.AUTOTUNE, deterministic=True).cache()
  buffer = data_config.get("shuffle_buffer") or (
      n if n <= FULL_SHUFFLE_MAX_EXAMPLES else DEFAULT_SHUFFLE_BUFFER)
  # The elements this process consumed before start: whole epochs are skipped by starting
  # the epoch counter later, the rest element by element.
  first_epoch, skip = divmod(start, n)
  stream = _epochs(examples, buffer, seed, first_epoch,
                   with_seeds=paired or bool(deluxe_config)).skip(skip)
  if not cached:  # shuffled and skipped as bytes: decode only what is trained on
    stream = stream.map(decode, tf.data.AUTOTUNE, deterministic=True)
  if paired:
    flip = bool(data_config.get("flip", True))

    def augment(ex):
      images = transforms.random_crop_and_flip({k: ex[k] for k in features}, size, flip, ex["augment_seed"])
      return {**images, "label": ex["label"]}

    stream = stream.map(augment, tf.data.AUTOTUNE, deterministic=True)
  elif deluxe_config:
    jitter = bool(deluxe_config.get("color_jitter", False))
    stream = stream.map(
        lambda ex: {"image": transforms.deluxe(ex["image"], size, jitter, ex["augment_seed"]),
                    "label": ex["label"]}, tf.data.AUTOTUNE, deterministic=True)
  return stream


def _load_domain(builder, data_config, split: str, size: int) -> np.ndarray:
  """Every image of `split` in stored order, resized to `size` (bicubic): uint8 [n, size,
  size, C]."""
  features = {"image": "image"}
  decode = preparation.decoder(builder, data_config, features, size)
  examples = preparation.read_split(builder, split, features).map(decode, tf.data.AUTOTUNE,
                                                                  deterministic=True)
  images = [b["image"] for b in tfds.as_numpy(examples.batch(256))]
  if not images:
    raise DataNotFoundError(f"{data_config.name} {split} holds no images")
  return np.concatenate(images)


def _unpaired_stream(builder, data_config, seed: int, start: int, index: int,
                     processes: int) -> tf.data.Dataset:
  """Process `index`'s {'A', 'B'} examples (of `processes`) from global position `start`
  on (the module docstring: the reference's UnalignedDataset, exactly resumable)."""
  splits = preparation.domain_splits(data_config.split)
  for split in splits.values():
    preparation.check_split(builder, data_config, split)
  size, flip = data_config.image_size, bool(data_config.get("flip", True))
  images = {d: tf.constant(_load_domain(builder, data_config, split, _load_size(data_config)))
            for d, split in splits.items()}
  n_a, n_b = (int(images[d].shape[0]) for d in preparation.DOMAINS)
  n = max(n_a, n_b)  # len(UnalignedDataset)
  _check_epoch_length(data_config, n, f"the larger of {' and '.join(splits.values())}")

  def epoch(e):
    epoch_seed = tf.stack([tf.constant(seed, tf.int64), e])
    # The DataLoader's shuffle: a permutation of the epoch's indices.
    order = tf.argsort(tf.random.stateless_uniform([n], epoch_seed))
    return tf.data.Dataset.from_tensor_slices(order).enumerate().map(
        lambda i, index: (tf.random.experimental.stateless_fold_in(epoch_seed, i), index))

  def draw(position_seed, index):
    b_seed, a_augment, b_augment = tf.unstack(
        tf.random.experimental.stateless_split(position_seed, 3))
    a = index % n_a  # the reference's index_A = index % A_size
    b = tf.random.stateless_uniform([], b_seed, 0, n_b, tf.int32)  # random.randint(0, B_size - 1)
    # Each image gets its own crop and flip (transform_A and transform_B apart).
    return {**transforms.random_crop_and_flip({"A": tf.gather(images["A"], a)}, size, flip, a_augment),
            **transforms.random_crop_and_flip({"B": tf.gather(images["B"], b)}, size, flip, b_augment)}

  first_epoch, skip = divmod(start, n)
  stream = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch).skip(skip)
  stream = stream.shard(processes, index)
  return stream.map(draw, tf.data.AUTOTUNE, deterministic=True)
