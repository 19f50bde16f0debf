"""Adversarial losses selected by name, on discriminator logits.

- `minimax`: the original objective of Goodfellow et al. (2014, eq. 1). D maximises
  log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z))).
- `non_saturating`: the same D; G maximises log D(G(z)) instead (Goodfellow et al. 2014,
  sec. 3), the form the DCGAN tutorial and junyanz's `GANLoss('vanilla')` train with.
- `lsgan`: least squares (Mao et al. 2017) with targets a=0 (fake), b=c=1 (real), as
  junyanz's `GANLoss('lsgan')`: MSE to 1 for real, MSE to 0 for fake.

All losses are means over every logit, so a PatchGAN's map of logits averages like
PyTorch's `BCEWithLogitsLoss`/`MSELoss` with reduction 'mean'. Following the
references, the discriminator loss is the SUM of its real and fake terms; models whose
paper halves it (pix2pix, CycleGAN) multiply by 0.5 where they call it.
"""

import jax
import jax.numpy as jnp

from jaxgan.config import ConfigError

Array = jax.Array

NAMES = ("minimax", "non_saturating", "lsgan")


def _check(kind: str) -> None:
  if kind not in NAMES:
    raise ConfigError(f"unknown GAN loss {kind!r}; choose one of {', '.join(NAMES)}")


def gan_loss(kind: str, logits: Array, target_is_real: bool) -> Array:
  """One term, as junyanz's GANLoss(kind)(prediction, target_is_real)."""
  _check(kind)
  if kind == "lsgan":
    target = 1.0 if target_is_real else 0.0
    return jnp.mean(jnp.square(logits - target))
  # Binary cross-entropy on logits: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l).
  return jnp.mean(jax.nn.softplus(-logits if target_is_real else logits))


def discriminator_loss(kind: str, real_logits: Array, fake_logits: Array) -> Array:
  return gan_loss(kind, real_logits, True) + gan_loss(kind, fake_logits, False)


def generator_loss(kind: str, fake_logits: Array) -> Array:
  _check(kind)
  if kind == "minimax":
    # G minimises E[log(1 - D(G(z)))], i.e. maximises D's BCE on fakes labelled fake.
    return -gan_loss(kind, fake_logits, False)
  return gan_loss(kind, fake_logits, True)


def discriminator_score(kind: str, logits: Array) -> Array:
  """D's mean output as papers plot it: a probability for BCE losses, raw for LSGAN."""
  _check(kind)
  return jnp.mean(logits if kind == "lsgan" else jax.nn.sigmoid(logits))
