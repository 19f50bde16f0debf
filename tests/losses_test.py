"""GAN losses against values computed by hand."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import losses
from jaxgan.config import ConfigError

REAL = jnp.array([2.0, -1.0])   # D's logits on real images
FAKE = jnp.array([0.5, -3.0])   # D's logits on generated images


def sigmoid(v):
  return 1 / (1 + math.exp(-v))


def test_bce_discriminator_loss_by_hand():
  # -mean(log D(x)) - mean(log(1 - D(G(z)))), D = sigmoid(logit)
  real = -(math.log(sigmoid(2.0)) + math.log(sigmoid(-1.0))) / 2
  fake = -(math.log(1 - sigmoid(0.5)) + math.log(1 - sigmoid(-3.0))) / 2
  for kind in ("minimax", "non_saturating"):
    assert float(losses.discriminator_loss(kind, REAL, FAKE)) == pytest.approx(real + fake, rel=1e-6)


def test_generator_losses_by_hand():
  non_saturating = -(math.log(sigmoid(0.5)) + math.log(sigmoid(-3.0))) / 2
  minimax = (math.log(1 - sigmoid(0.5)) + math.log(1 - sigmoid(-3.0))) / 2
  assert float(losses.generator_loss("non_saturating", FAKE)) == pytest.approx(non_saturating, rel=1e-6)
  assert float(losses.generator_loss("minimax", FAKE)) == pytest.approx(minimax, rel=1e-6)
  # minimax saturates: where D rejects the fake confidently its gradient nearly vanishes.
  assert float(losses.generator_loss("minimax", jnp.array([-8.0]))) == pytest.approx(
      math.log(1 - sigmoid(-8.0)), abs=1e-7)


def test_lsgan_by_hand():
  d = ((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + (0.5 ** 2 + 3.0 ** 2) / 2
  g = ((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2
  assert float(losses.discriminator_loss("lsgan", REAL, FAKE)) == pytest.approx(d)
  assert float(losses.generator_loss("lsgan", FAKE)) == pytest.approx(g)


def test_patch_logits_average_over_every_element():
  patch = jnp.arange(8.0).reshape(2, 2, 2) - 4
  np.testing.assert_allclose(losses.gan_loss("lsgan", patch, True),
                             np.mean((np.arange(8.0) - 5) ** 2), rtol=1e-6)


def test_scores():
  assert float(losses.discriminator_score("non_saturating", jnp.zeros(3))) == 0.5
  assert float(losses.discriminator_score("lsgan", jnp.array([0.2, 0.4]))) == pytest.approx(0.3)


def test_unknown_loss_is_a_config_error():
  with pytest.raises(ConfigError, match="unknown GAN loss 'wgan'.*lsgan"):
    losses.generator_loss("wgan", FAKE)
