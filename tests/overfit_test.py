"""The overfitting probe (`config.data.holdout`): the held-out images are never trained on,
D's per-image scores, and the logged d_real_train / d_real_heldout / d_real_gap, with
exact resumption unaffected."""

import itertools
import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import REPO, write_images
from train_test import assert_trees_equal, params_of, tiny
from jaxgan import config as config_lib, families, losses, train
from jaxgan.datasets import preparation, streams

GRUMPYCAT = str(REPO / "configs" / "dcgan_grumpycat.py")
DCGAN_MNIST = str(REPO / "configs" / "dcgan_mnist.py")


@pytest.fixture(scope="module")
def cats(tmp_path_factory):
  """A folder of 10 distinct random 64x64 images, and a TFDS data dir for it."""
  root = tmp_path_factory.mktemp("cats")
  write_images(root / "images", 10, side=64)
  return root


def folder_data(root, holdout):
  return ml_collections.ConfigDict(dict(
      name="folder", path=str(root / "images"), data_dir=str(root / "tfds"), image_size=64,
      channels=3, split="train", shuffle_buffer=0, holdout=holdout))


def as_bytes(images):
  return {image.tobytes() for image in images}


def test_the_holdout_is_the_stored_head_and_never_trained_on(cats):
  data = folder_data(cats, 3)
  assert preparation.training_split(data) == "train[3:]"
  assert preparation.heldout_split(data) == "train[:3]"
  everything = preparation.load_split(data, "train")["image"]
  heldout = preparation.load_split(data, preparation.heldout_split(data))["image"]
  np.testing.assert_array_equal(heldout, everything[:3])
  # Five epochs of the 7 others, on one process and on each of two.
  for processes in (1, 2):
    trained = set()
    for index in range(processes):
      batches = streams.create_train_iterator(data, 2, 0, 0, process_index=index,
                                              process_count=processes)
      for batch in itertools.islice(batches, 35 // processes):
        trained |= as_bytes(batch["image"])
    assert trained == as_bytes(everything[3:])
    assert not trained & as_bytes(heldout)
  off = folder_data(cats, 0)
  assert preparation.training_split(off) == "train" and preparation.heldout_split(off) is None


@pytest.mark.parametrize("field, value, message", [
    ("split", "train[:50%]", "holdout=3 holds out"),
    ("unpaired", True, "holdout=3 holds out"),
])
def test_holdout_mistakes(cats, field, value, message):
  data = folder_data(cats, 3)
  data[field] = value
  with pytest.raises(config_lib.ConfigError, match=message):
    preparation.training_split(data)
  config = config_lib.load(GRUMPYCAT)
  config.data.holdout = -1
  with pytest.raises(config_lib.ConfigError, match="data.holdout must be >= 0"):
    config_lib.validate(config)


def test_scores_per_example_on_hand_made_logits():
  np.testing.assert_allclose(losses.discriminator_scores("lsgan", jnp.array([[0.2], [0.9]])),
                             [0.2, 0.9])
  np.testing.assert_allclose(losses.discriminator_scores("non_saturating", jnp.zeros((3, 1))),
                             [0.5] * 3)
  np.testing.assert_allclose(losses.discriminator_scores("minimax", jnp.array([[-100.0], [100.0]])),
                             [0.0, 1.0])
  patches = jnp.array([[[0.0, 1.0], [1.0, 2.0]], [[4.0, 4.0], [4.0, 4.0]]])[..., None]
  np.testing.assert_allclose(losses.discriminator_scores("lsgan", patches), [1.0, 4.0])
  # multiclass: 1 - P(fake), the last of K + 1 outputs.
  np.testing.assert_allclose(losses.discriminator_scores("multiclass",
                                                         jnp.array([[0.0, 0.0, 50.0],
                                                                    [50.0, 0.0, 0.0]])),
                             [0.0, 1.0], atol=1e-6)
  logits = jax.random.normal(jax.random.PRNGKey(0), (5, 1))
  assert float(jnp.mean(losses.discriminator_scores("non_saturating", logits))) == pytest.approx(
      float(losses.discriminator_score("non_saturating", logits)))


@pytest.mark.parametrize("path", [GRUMPYCAT, DCGAN_MNIST])
def test_family_scores_are_d_in_inference_mode_image_by_image(path):
  """D as the loss reads it, with no augmentation, one score per image that does not depend
  on the rest of the batch (DCGAN's BatchNorm uses its running statistics)."""
  config = tiny(path, **{"augment.kind": "diffaugment"})
  family = families.create(config, "cpu")
  state = family.init_state(jax.random.PRNGKey(0))
  shape = (6, config.data.image_size, config.data.image_size, config.data.channels)
  images = jax.random.uniform(jax.random.PRNGKey(1), shape, minval=-1, maxval=1)
  batch = {"image": images, "label": jnp.zeros((6,), jnp.int32)}
  scores = jax.jit(family.discriminator_scores)(state, batch)
  assert scores.shape == (6,) and scores.dtype == jnp.float32
  d = state.discriminator
  logits = family.d.apply({"params": d.params, "batch_stats": d.batch_stats}, images, None,
                          train=False)
  np.testing.assert_allclose(scores, losses.discriminator_scores(config.loss.name, logits),
                             rtol=1e-6, atol=1e-6)  # jitted against op by op: round-off
  part = family.discriminator_scores(state, {"image": images[:2], "label": batch["label"][:2]})
  np.testing.assert_allclose(part, scores[:2], rtol=1e-5, atol=1e-6)


def probe_config(cats, steps):
  config = tiny(GRUMPYCAT, steps, **{"data.path": str(cats / "images"),
                                     "data.data_dir": str(cats / "tfds"), "data.holdout": 2,
                                     "overfit_every_steps": 2, "augment.kind": "diffaugment"})
  config.num_grid_images = 0
  return config


def rows(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_probe_is_logged_and_resume_stays_exact(cats, tmp_path):
  straight = train.train_and_evaluate(probe_config(cats, 4), str(tmp_path / "straight"))
  logged = rows(tmp_path / "straight")
  assert [r["step"] for r in logged] == [1, 2, 3, 4]  # logged every step, probed every 2
  probed = [r for r in logged if "d_real_gap" in r]
  assert [r["step"] for r in probed] == [2, 4]
  for r in probed:
    assert r["d_real_gap"] == pytest.approx(r["d_real_train"] - r["d_real_heldout"])
  assert (tmp_path / "straight" / "overfitting.png").exists()
  train.train_and_evaluate(probe_config(cats, 3), str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(probe_config(cats, 4), str(tmp_path / "resumed"))
  assert_trees_equal(params_of(resumed), params_of(straight))
  again = rows(tmp_path / "resumed")
  assert [r["step"] for r in again] == [1, 2, 3, 4]
  for key in ("d_loss", "d_real_train", "d_real_heldout"):
    assert again[3][key] == logged[3][key]
  assert "d_real_gap" in again[2]  # step 3: the last step of the first session is probed


def test_probe_needs_a_family_with_a_discriminator(cats, tmp_path):
  config = tiny(str(REPO / "configs" / "mnist_classifier.py"), **{"data.holdout": 2})
  with pytest.raises(config_lib.ConfigError, match="holdout scores real images with a GAN"):
    train.overfit_images(config, families.create(config, "cpu"), train.make_mesh())
