"""Conditional GANs on MNIST: parameter counts, the 11-way loss, label plumbing, grids.

Label plumbing is checked with probe networks whose behaviour depends only on the
labels: a generator that writes the label it received into every pixel, and
discriminators that answer "real" (or the digit) exactly when the label they score an
image against is the label written in it. Run through the real train step, any
mix-up between the label a sample was asked for, the one G received and the one D
scored it against shows up in the losses.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from jaxgan import config as config_lib, families, inference, losses, models
from jaxgan.config import ConfigError
from jaxgan.models.conditioning import check_labels, label_maps


def count(module, *args):
  variables = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args, train=False))
  return sum(x.size for x in jax.tree.leaves(variables["params"]))


Z, Y, X = jnp.zeros((2, 100)), jnp.zeros((2,), jnp.int32), jnp.zeros((2, 28, 28, 1))


@pytest.mark.parametrize("name,kwargs,args,expected", [
    # eriklindernoren/PyTorch-GAN gan.py and cgan.py, counted by hand from their layers.
    ("mlp_generator", {}, (Z,), 1_510_032),
    ("mlp_generator", {"num_classes": 10}, (Z, Y), 1_511_412),
    ("mlp_discriminator", {}, (X,), 533_505),
    ("cgan_mlp_discriminator", {"num_classes": 10}, (X, Y), 932_965),
    # The MNIST DCGAN (837,504 / 431,872) with 10 more inputs to G's first layer
    # (10 x 256 x 4 x 4), 10 more input channels to D's (10 x 64 x 4 x 4), or 10 more
    # outputs from D's last (10 x 256 x 4 x 4).
    ("dcgan_generator", {"image_size": 28, "channels": 1, "num_classes": 10}, (Z, Y), 878_464),
    ("dcgan_discriminator", {"image_size": 28, "num_classes": 10}, (X, Y), 442_112),
    ("dcgan_discriminator", {"image_size": 28, "num_outputs": 11}, (X,), 472_832),
    ("mnist_classifier", {}, (X,), 421_642),
])
def test_parameter_counts(name, kwargs, args, expected):
  assert count(models.create(name, **kwargs), *args) == expected


def test_output_shapes():
  g = models.create("mlp_generator", num_classes=10)
  images = jax.eval_shape(lambda: g.init_with_output(jax.random.PRNGKey(0), Z, Y, train=False))[0]
  assert images.shape == (2, 28, 28, 1)
  d = models.create("dcgan_discriminator", image_size=28, num_outputs=11)
  logits = jax.eval_shape(lambda: d.init_with_output(jax.random.PRNGKey(0), X, train=False))[0]
  assert logits.shape == (2, 11)


def test_labels_must_match_conditioning():
  with pytest.raises(ConfigError, match="conditioned on 10 classes but got no labels"):
    check_labels(None, 10, "the generator")
  with pytest.raises(ConfigError, match="unconditional"):
    models.create("mlp_generator").init(jax.random.PRNGKey(0), Z, Y)


def test_label_maps_mark_the_class_channel():
  maps = label_maps(X + 0.5, jnp.array([3, 7]), 10)
  assert maps.shape == (2, 28, 28, 11)
  np.testing.assert_array_equal(maps[..., 0], 0.5)
  np.testing.assert_array_equal(maps[0, ..., 1 + 3], 1.0)
  np.testing.assert_array_equal(maps[1, ..., 1 + 7], 1.0)
  assert float(maps[..., 1:].sum()) == 2 * 28 * 28


# --- the 11-way loss, on hand-made logits --------------------------------------------

def log_softmax(row, i):
  return row[i] - math.log(sum(math.exp(v) for v in row))


def test_multiclass_losses_by_hand():
  real = [[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]  # K = 2 digits + fake
  fake = [[0.0, 1.0, 3.0], [1.0, 0.0, -2.0]]
  real_labels, fake_labels = jnp.array([0, 1]), jnp.array([1, 0])
  d_expected = (-(log_softmax(real[0], 0) + log_softmax(real[1], 1)) / 2
                - (log_softmax(fake[0], 2) + log_softmax(fake[1], 2)) / 2)
  g_expected = -(log_softmax(fake[0], 1) + log_softmax(fake[1], 0)) / 2
  d = losses.discriminator_loss("multiclass", jnp.array(real), jnp.array(fake), real_labels)
  g = losses.generator_loss("multiclass", jnp.array(fake), fake_labels)
  assert float(d) == pytest.approx(d_expected, rel=1e-6)
  assert float(g) == pytest.approx(g_expected, rel=1e-6)
  p_fake = [math.exp(log_softmax(r, 2)) for r in fake]
  assert float(losses.discriminator_score("multiclass", jnp.array(fake))) == pytest.approx(
      1 - sum(p_fake) / 2, rel=1e-6)


def test_multiclass_needs_labels():
  with pytest.raises(ConfigError, match="needs the images' labels"):
    losses.generator_loss("multiclass", jnp.zeros((2, 11)))
  with pytest.raises(ConfigError, match="scores classes"):
    losses.gan_loss("multiclass", jnp.zeros((2, 11)), True)
  config = config_lib.load(str(REPO / "configs" / "cgan_multiclass_mnist.py"))
  config.model.num_classes = 0
  with pytest.raises(ConfigError, match="needs a conditional model"):
    families.create(config, "cpu")


# --- label plumbing through the real train step --------------------------------------

def encode(labels):
  """An image that carries its label: every pixel = label / 9 * 2 - 1."""
  return (labels.astype(jnp.float32) / 9 * 2 - 1)[:, None, None, None] * jnp.ones((1, 28, 28, 1))


def decode(images):
  return jnp.round((images.mean(axis=(1, 2, 3)) + 1) / 2 * 9).astype(jnp.int32)


class ProbeGenerator(nn.Module):
  num_classes: int = 0

  @nn.compact
  def __call__(self, z, labels=None, train=True):
    w = self.param("w", nn.initializers.zeros, ())
    return encode(labels) + w * z[:, :1, None, None]


class ProbeDiscriminator(nn.Module):
  """Logit +10 when the image carries the label it is scored against, else -10;
  with `num_outputs` K + 1: a logit of 10 on the digit the image carries."""
  num_classes: int = 0
  num_outputs: int = 1

  @nn.compact
  def __call__(self, images, labels=None, train=True):
    w = self.param("w", nn.initializers.zeros, ())
    carried = decode(images) + (w * images.mean()).astype(jnp.int32)
    if self.num_outputs > 1:
      assert labels is None  # a classifying D must not see the label
      return 10.0 * jax.nn.one_hot(carried, self.num_outputs) + w
    return jnp.where(carried == labels, 10.0, -10.0) + w


@pytest.fixture
def probes(monkeypatch):
  monkeypatch.setitem(models.MODELS, "probe_generator", ProbeGenerator)
  monkeypatch.setitem(models.MODELS, "probe_discriminator", ProbeDiscriminator)


def probe_family(config_name, **overrides):
  config = config_lib.load(str(REPO / "configs" / config_name))
  config.model.generator, config.model.discriminator = "probe_generator", "probe_discriminator"
  for key, value in overrides.items():
    config[key] = value
  return families.create(config, "cpu")


def real_batch(n=32, seed=0):
  labels = jax.random.randint(jax.random.PRNGKey(seed), (n,), 0, 10)
  return {"image": encode(labels), "label": labels}


@pytest.mark.parametrize("config_name", ["cdcgan_mnist.py", "cgan_mnist.py"])
def test_d_scores_each_image_against_the_label_g_received(config_name, probes):
  family = probe_family(config_name)
  state = family.init_state(jax.random.PRNGKey(0))
  says_real = float(losses.discriminator_score(family.loss, jnp.array([10.0])))
  for step in range(2):
    state, metrics = jax.jit(family.train_step)(state, real_batch(seed=step))
    # Every real image is scored against its own label and every fake against the label
    # G drew it for: the probe D answers "real" (logit +10) to all of them.
    assert float(metrics["d_real"]) == pytest.approx(says_real, abs=1e-3)
    assert float(metrics["d_fake"]) == pytest.approx(says_real, abs=1e-3)


def test_multiclass_g_is_scored_against_the_label_it_received(probes):
  family = probe_family("cgan_multiclass_mnist.py")
  assert not family.d_reads_label
  state = family.init_state(jax.random.PRNGKey(0))
  state, metrics = jax.jit(family.train_step)(state, real_batch())
  # D puts logit 10 on the digit each image carries: G's cross-entropy to the label it
  # was asked for is log(1 + 10 e^-10) only if that is the label it received.
  assert float(metrics["g_loss"]) == pytest.approx(math.log(1 + 10 * math.exp(-10)), rel=1e-3)
  assert float(metrics["d_class_accuracy"]) == 1.0


def test_a_mixed_up_label_would_be_caught(probes):
  """The probes can fail: shifting the real labels by one makes D answer "fake"."""
  family = probe_family("cdcgan_mnist.py")
  state = family.init_state(jax.random.PRNGKey(0))
  batch = real_batch()
  batch["label"] = (batch["label"] + 1) % 10
  _, metrics = jax.jit(family.train_step)(state, batch)
  assert float(metrics["d_real"]) == pytest.approx(0.0, abs=1e-3)


def test_sampled_labels_reach_the_generator(probes):
  family = probe_family("cdcgan_mnist.py")
  state = family.init_state(jax.random.PRNGKey(0))
  images, labels = inference.generate(family, state, 25, seed=0, batch_size=10, labels=7)
  assert (labels == 7).all() and (np.asarray(decode(images / 127.5 - 1)) == 7).all()
  images, labels = inference.generate(family, state, 25, seed=0, batch_size=10)
  np.testing.assert_array_equal(labels, np.arange(25) % 10)
  np.testing.assert_array_equal(decode(images / 127.5 - 1), labels)
  with pytest.raises(ValueError, match=r"labels must be in 0\.\.9"):
    inference.generate(family, state, 4, seed=0, labels=10)


def test_conditional_grid_has_a_row_per_digit_and_fixed_noise_per_column():
  config = config_lib.load(str(REPO / "configs" / "cdcgan_mnist.py"))
  family = families.create(config, "cpu")
  assert family.grid_columns == 10
  inputs = family.fixed_inputs(jax.random.PRNGKey(0), config.num_grid_images)
  labels, z = np.asarray(inputs["label"]).reshape(10, 10), np.asarray(inputs["z"]).reshape(10, 10, -1)
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10)[:, None], 10, axis=1))
  for row in range(10):
    np.testing.assert_array_equal(z[row], z[0])
  assert len({tuple(v) for v in z[0, :, :4]}) == 10  # columns differ


def test_unconditional_model_refuses_a_label():
  family = families.create(config_lib.load(str(REPO / "configs" / "gan_mnist.py")), "cpu")
  with pytest.raises(ConfigError, match="unconditional"):
    family.latent_inputs(jax.random.PRNGKey(0), 2, labels=3)
