"""Augmentation for small data: DiffAugment's T (shift and hole sizes, per-example draws,
gradients through T), its place in the GAN step, and the input pipeline's `deluxe` crops,
flips and jitter (shapes, exact resume)."""

import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, write_images
from train_test import assert_trees_equal, mock_data, params_of, tiny  # noqa: F401
from jaxgan import augment, config as config_lib, families, train
from jaxgan.datasets import streams, transforms

KEY = jax.random.PRNGKey(0)
GRUMPYCAT = str(REPO / "configs" / "dcgan_grumpycat.py")


def one_hot(n=1, side=64, at=(32, 32)):
  images = np.zeros((n, side, side, 3), np.float32)
  images[:, at[0], at[1]] = 1.0
  return jnp.asarray(images)


# ---------------------------------------------------------------------------------------
# DiffAugment's T.


def test_translation_is_at_most_8_px_at_64_and_moves_by_the_draw():
  assert augment.translation_shift(64) == 8 and augment.translation_shift(32) == 4
  images = one_hot(256)
  shifts = np.asarray(augment.translation_draws(KEY, images))
  assert shifts.min() == -8 and shifts.max() == 8  # [-8, 8], both ends drawn
  out = np.asarray(augment.rand_translation(images, KEY))
  for example, (dr, dc) in zip(out, shifts):  # output (i, j) reads input (i + dr, j + dc)
    assert example[32 - dr, 32 - dc, 0] == 1.0 and example.sum() == 3.0


def test_translation_fills_vacated_pixels_with_zero():
  out = np.asarray(augment.translate(jnp.ones((1, 64, 64, 3)), jnp.array([[3, -5]])))[0, ..., 0]
  assert (out[61:] == 0).all() and (out[:, :5] == 0).all()  # moved up 3, right 5
  assert (out[:61, 5:] == 1).all()


def test_cutout_is_a_32x32_zero_square_at_64_clipped_at_the_edges():
  assert augment.cutout_size(64) == 32
  ones = jnp.ones((3, 64, 64, 3))
  centres = jnp.array([[32, 32], [0, 64], [10, 63]])
  mask = np.asarray(augment.cutout_mask(ones.shape, centres))[..., 0]
  expected = np.ones((3, 64, 64))
  expected[0, 16:48, 16:48] = 0   # the whole square
  expected[1, 0:16, 48:64] = 0    # centre in the corner: a quarter of it
  expected[2, 0:26, 47:64] = 0    # rows -6..25, columns 47..78, clipped
  np.testing.assert_array_equal(mask, expected)
  centres = np.asarray(augment.cutout_draws(KEY, jnp.ones((512, 64, 64, 3))))
  assert centres.min() == 0 and centres.max() == 64  # the reference's randint(0, 64 + 1)
  holes = (np.asarray(augment.rand_cutout(jnp.ones((512, 64, 64, 3)), KEY))[..., 0] == 0)
  assert holes.sum((1, 2)).max() == 32 * 32 and holes.sum((1, 2)).min() >= 16 * 16


def test_color_matches_the_reference_formulas():
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 8, 8, 3), minval=-1, maxval=1)
  k = jax.random.split(KEY, 3)
  b = jax.random.uniform(k[0], (4, 1, 1, 1), minval=-0.5, maxval=0.5)
  np.testing.assert_allclose(augment.rand_brightness(x, k[0]), x + b, atol=1e-6)
  s = jax.random.uniform(k[1], (4, 1, 1, 1), maxval=2.0)
  mean = x.mean(-1, keepdims=True)
  np.testing.assert_allclose(augment.rand_saturation(x, k[1]), (x - mean) * s + mean, atol=1e-6)
  c = jax.random.uniform(k[2], (4, 1, 1, 1), minval=0.5, maxval=1.5)
  mean = x.mean((1, 2, 3), keepdims=True)
  np.testing.assert_allclose(augment.rand_contrast(x, k[2]), (x - mean) * c + mean, atol=1e-6)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_each_example_gets_its_own_draw(policy):
  images = jnp.broadcast_to(jax.random.uniform(KEY, (1, 16, 16, 3), minval=-1, maxval=1),
                            (8, 16, 16, 3))
  out = np.asarray(augment.diff_augment(images, jax.random.PRNGKey(3), policy))
  distinct = {out[i].tobytes() for i in range(8)}
  assert len(distinct) >= 7  # 8 identical inputs (a translation may draw the same shift twice)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "translation,cutout,color"])
def test_gradients_pass_through_t(policy):
  x = jax.random.uniform(KEY, (2, 16, 16, 3), minval=-1, maxval=1)
  grad = jax.grad(lambda x: augment.diff_augment(x, jax.random.PRNGKey(5), policy).sum())(x)
  assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
  if policy == "cutout":  # d sum(x * mask) / dx = mask
    (key,) = jax.random.split(jax.random.PRNGKey(5), 1)
    mask = augment.cutout_mask(x.shape, augment.cutout_draws(key, x))
    np.testing.assert_array_equal(grad, jnp.broadcast_to(mask, x.shape))


def test_policy_words():
  assert tuple(augment.AUGMENT_FNS) == ("color", "translation", "cutout")  # the paper's words
  assert augment.parse_policy("color, cutout") == ["color", "cutout"]
  for bad in ["", "colour", "color,flip"]:
    with pytest.raises(config_lib.ConfigError, match="DiffAugment policies"):
      augment.parse_policy(bad)


# ---------------------------------------------------------------------------------------
# Configs and the GAN step.


@pytest.mark.parametrize("overrides,message", [
    ({"augment.kind": "mixup"}, "config.augment.kind must be one of none, deluxe, diffaugment"),
    ({"augment.kind": "diffaugment", "augment.policy": "zoom"}, "DiffAugment policies"),
    ({"augment.kind": "deluxe", "family": "pix2pix"}, "is for the gan family"),
])
def test_augment_config_mistakes(overrides, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(tiny(GRUMPYCAT, **overrides))


def test_diffaugment_step_sees_t_and_draws_from_the_state():
  """D's inputs are T(x): the losses differ from the step without T, and the same state
  gives the same step (keys from the state's rng)."""
  config = tiny(GRUMPYCAT, **{"batch_size": 2})
  batch = {"image": jax.random.uniform(KEY, (2, 64, 64, 3), minval=-1, maxval=1),
           "label": jnp.zeros((2,), jnp.int32)}
  plain = families.create(config, "cpu")
  state = plain.init_state(KEY)
  config.augment.kind = "diffaugment"
  augmented = families.create(config, "cpu")
  step = jax.jit(augmented.train_step)
  _, m1 = step(state, batch)
  _, m2 = step(state, batch)
  _, m0 = jax.jit(plain.train_step)(state, batch)
  assert float(m1["d_loss"]) == float(m2["d_loss"]) and float(m1["d_loss"]) != float(m0["d_loss"])
  assert np.isfinite([float(m1[k]) for k in ("d_loss", "g_loss")]).all()


@pytest.mark.parametrize("kind", ["diffaugment", "deluxe"])
def test_one_step_with_augmentation(kind, tmp_path, mock_data):
  state = train.train_and_evaluate(tiny(GRUMPYCAT, **{"augment.kind": kind,
                                                      "augment.color_jitter": True}),
                                   str(tmp_path))
  assert int(state.step) == 1


@pytest.mark.parametrize("kind", ["diffaugment", "deluxe"])
def test_resume_with_augmentation_equals_uninterrupted(kind, tmp_path, mock_data):
  """T's keys come from the checkpointed RNG, deluxe's from (seed, epoch, position)."""
  def config(steps):
    return tiny(GRUMPYCAT, steps, **{"augment.kind": kind, "augment.color_jitter": True})

  straight = train.train_and_evaluate(config(2), str(tmp_path / "straight"))
  train.train_and_evaluate(config(1), str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(config(2), str(tmp_path / "resumed"))
  assert int(resumed.step) == 2
  assert_trees_equal(params_of(resumed), params_of(straight))


# ---------------------------------------------------------------------------------------
# deluxe: the input pipeline's crops, flips and jitter.


@pytest.fixture(scope="module")
def cats(tmp_path_factory):
  root = tmp_path_factory.mktemp("cats")
  write_images(root / "images", 6, side=8)
  return root


def deluxe_data(root, jitter=False):
  data = ml_collections.ConfigDict(dict(
      name="folder", path=str(root / "images"), data_dir=str(root / "tfds"), image_size=8,
      channels=3, split="train", shuffle_buffer=0))
  augment_config = ml_collections.ConfigDict(dict(kind="deluxe", color_jitter=jitter))
  return data, augment_config


def take(iterator, n):
  return [b["image"] for b in itertools.islice(iterator, n)]


def test_deluxe_crops_flips_and_resumes_exactly(cats):
  data, augment_config = deluxe_data(cats)
  assert transforms.deluxe_load_size(64) == 70 and transforms.deluxe_load_size(8) == 8
  data.image_size, augment_config.kind = 16, "deluxe"  # 16 -> 17: a crop to choose
  straight = take(streams.create_train_iterator(data, 4, 3, 0, augment_config=augment_config), 6)
  resumed = take(streams.create_train_iterator(data, 4, 3, 4, augment_config=augment_config), 2)
  assert straight[0].shape == (4, 16, 16, 3)
  for a, b in zip(straight[4:], resumed):
    np.testing.assert_array_equal(a, b)
  plain = take(streams.create_train_iterator(data, 4, 3, 0), 6)
  assert not all(np.array_equal(a, b) for a, b in zip(straight, plain))
  data_jitter, jitter = deluxe_data(cats, jitter=True)
  data_jitter.image_size = 16
  jittered = take(streams.create_train_iterator(data_jitter, 4, 3, 0, augment_config=jitter), 6)
  assert jittered[0].shape == (4, 16, 16, 3) and np.abs(jittered[0]).max() <= 1
  assert not np.array_equal(jittered[0], straight[0])


def test_deluxe_draws_from_stateless_seeds():
  image = tf.constant(np.arange(17 * 17 * 3, dtype=np.uint8).reshape(17, 17, 3))
  seed = tf.constant([7, 11], tf.int64)
  np.testing.assert_array_equal(transforms.deluxe(image, 16, True, seed),
                                transforms.deluxe(image, 16, True, seed))
  crops = {transforms.deluxe(image, 16, False, tf.constant([7, i], tf.int64)).numpy().tobytes()
           for i in range(16)}
  assert len(crops) > 1  # 4 corners x 2 flips to choose from


def test_deluxe_refuses_paired_and_unpaired_data(cats):
  data, augment_config = deluxe_data(cats)
  data.unpaired = True
  with pytest.raises(config_lib.ConfigError, match="deluxe augments single images"):
    streams.create_train_iterator(data, 4, 0, 0, augment_config=augment_config)


# ---------------------------------------------------------------------------------------
# Against the reference's index arithmetic (DiffAugment_pytorch.py), draws given.


def torch_translation(torch, x, tx, ty):
  """The reference's rand_translation on NCHW with its shifts given: a gather from the
  image zero-padded by one, at the grid + shift + 1 clamped to [0, side + 1]."""
  n, _, h, w = x.shape
  gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w), indexing="ij")
  gx = torch.clamp(gx + tx.view(n, 1, 1) + 1, 0, h + 1)
  gy = torch.clamp(gy + ty.view(n, 1, 1) + 1, 0, w + 1)
  padded = torch.nn.functional.pad(x, [1, 1, 1, 1])
  return padded.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2)


def torch_cutout(torch, x, ox, oy, size):
  """The reference's rand_cutout on NCHW with its centres given: the size x size grid at
  centre - size // 2, clamped to the image, set to 0 in a mask."""
  n, _, h, w = x.shape
  gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(size), torch.arange(size),
                              indexing="ij")
  gx = torch.clamp(gx + ox.view(n, 1, 1) - size // 2, 0, h - 1)
  gy = torch.clamp(gy + oy.view(n, 1, 1) - size // 2, 0, w - 1)
  mask = torch.ones(n, h, w)
  mask[gb, gx, gy] = 0
  return x * mask.unsqueeze(1)


def test_translation_and_cutout_equal_the_reference_index_arithmetic():
  torch = pytest.importorskip("torch")
  x = jax.random.uniform(KEY, (64, 16, 16, 3), minval=-1, maxval=1)
  x_nchw = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())
  shifts = augment.translation_draws(jax.random.PRNGKey(1), x)
  s = torch.from_numpy(np.asarray(shifts, np.int64))
  want = torch_translation(torch, x_nchw, s[:, 0], s[:, 1]).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_array_equal(augment.translate(x, shifts), want)
  centres = augment.cutout_draws(jax.random.PRNGKey(2), x)
  c = torch.from_numpy(np.asarray(centres, np.int64))
  want = torch_cutout(torch, x_nchw, c[:, 0], c[:, 1], 8).numpy().transpose(0, 2, 3, 1)
  got = x * augment.cutout_mask(x.shape, centres)
  np.testing.assert_array_equal(got, want)
