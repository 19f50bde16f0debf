"""Adversarial losses selected by name, on discriminator logits.

- `minimax`: the original objective of Goodfellow et al. (2014, eq. 1). D maximises
  log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z))).
- `non_saturating`: the same D; G maximises log D(G(z)) instead (Goodfellow et al. 2014,
  sec. 3), the form the DCGAN tutorial and junyanz's `GANLoss('vanilla')` train with.
- `lsgan`: least squares (Mao et al. 2017) with targets a=0 (fake), b=c=1 (real), as
  junyanz's `GANLoss('lsgan')`: MSE to 1 for real, MSE to 0 for fake.
- `multiclass`: a discriminator with K + 1 outputs, K classes and "fake" (Salimans et
  al. 2016, sec. 5; Odena 2016): D minimises the categorical cross-entropy of real
  images to their class and of generated images to "fake" (the last logit); G
  minimises the cross-entropy of its images to the class it was asked for.

All losses are means over every logit, so a PatchGAN's map of logits averages like
PyTorch's `BCEWithLogitsLoss`/`MSELoss` with reduction 'mean'. Following the
references, the discriminator loss is the SUM of its real and fake terms; models whose
paper halves it (pix2pix, CycleGAN) multiply by 0.5 where they call it.
"""

import jax
import jax.numpy as jnp

from jaxgan.errors import ConfigError

Array = jax.Array

NAMES = ("minimax", "non_saturating", "lsgan", "multiclass")


def check_name(kind: str) -> None:
  """A ConfigError for a name that is not a loss here."""
  if kind not in NAMES:
    raise ConfigError(f"unknown GAN loss {kind!r}; choose one of {', '.join(NAMES)}")


def gan_loss(kind: str, logits: Array, target_is_real: bool) -> Array:
  """One term, as junyanz's GANLoss(kind)(prediction, target_is_real)."""
  check_name(kind)
  if kind == "multiclass":
    raise ConfigError("the multiclass loss scores classes, not real/fake: use "
                      "discriminator_loss/generator_loss with labels")
  if kind == "lsgan":
    target = 1.0 if target_is_real else 0.0
    return jnp.mean(jnp.square(logits - target))
  # Binary cross-entropy on logits: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l).
  return jnp.mean(jax.nn.softplus(-logits if target_is_real else logits))


def classification_loss(logits: Array, labels: Array) -> Array:
  """Mean categorical cross-entropy of logits [N, C] to integer labels [N]."""
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=-1))


def _fake_class(logits: Array) -> Array:
  """The "fake" class of a K + 1-way discriminator: the last one."""
  return jnp.full(logits.shape[:1], logits.shape[-1] - 1, jnp.int32)


def _labels_for(kind: str, labels) -> None:
  if labels is None:
    raise ConfigError(f"the {kind} loss needs the images' labels (a conditional model, "
                      "config.model.num_classes > 0)")


def discriminator_loss(kind: str, real_logits: Array, fake_logits: Array,
                       real_labels: Array | None = None) -> Array:
  """D's loss; `real_labels` only for `multiclass` (real images are scored to their class)."""
  check_name(kind)
  if kind == "multiclass":
    _labels_for(kind, real_labels)
    return (classification_loss(real_logits, real_labels)
            + classification_loss(fake_logits, _fake_class(fake_logits)))
  return gan_loss(kind, real_logits, True) + gan_loss(kind, fake_logits, False)


def generator_loss(kind: str, fake_logits: Array, fake_labels: Array | None = None) -> Array:
  """G's loss; `fake_labels` (the classes G was asked for) only for `multiclass`."""
  check_name(kind)
  if kind == "multiclass":
    _labels_for(kind, fake_labels)
    return classification_loss(fake_logits, fake_labels)
  if kind == "minimax":
    # G minimises E[log(1 - D(G(z)))], i.e. maximises D's BCE on fakes labelled fake.
    return -gan_loss(kind, fake_logits, False)
  return gan_loss(kind, fake_logits, True)


def _real_scores(kind: str, logits: Array) -> Array:
  """D's output per logit as `discriminator_score` reads it (the last axis is the classes'
  for `multiclass`)."""
  check_name(kind)
  if kind == "multiclass":
    return 1.0 - jax.nn.softmax(logits, axis=-1)[..., -1]
  return logits if kind == "lsgan" else jax.nn.sigmoid(logits)


def discriminator_score(kind: str, logits: Array) -> Array:
  """D's mean output as papers plot it: a probability for BCE losses, raw for LSGAN,
  1 - P(fake) for `multiclass`."""
  return jnp.mean(_real_scores(kind, logits))


def discriminator_scores(kind: str, logits: Array) -> Array:
  """`discriminator_score` of each example: logits [N, ...] -> [N] (a PatchGAN's map
  averaged per image)."""
  scores = _real_scores(kind, logits)
  return jnp.mean(scores.reshape(scores.shape[0], -1), axis=1)
