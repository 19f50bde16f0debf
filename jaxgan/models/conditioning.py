"""How a class label enters a network (conditional GANs, Mirza and Osindero 2014).

A generator reads the label concatenated to z; a discriminator reads it as K extra
input channels, one constant map per class (1 for the image's class, 0 elsewhere), the
usual way to give a convolutional D the label at every position. With `num_classes`
0 the network is unconditional and takes no label.
"""

import jax
import jax.numpy as jnp

from jaxgan.errors import ConfigError


def check_labels(labels, num_classes: int, who: str) -> None:
  """Labels are given exactly when the network is conditional."""
  if num_classes and labels is None:
    raise ConfigError(f"{who} is conditioned on {num_classes} classes but got no labels")
  if not num_classes and labels is not None:
    raise ConfigError(f"{who} is unconditional (num_classes=0) but got labels")


def requested_labels(num: int, labels, num_classes: int):
  """The int32 [num] labels a batch of samples is asked for: `labels` (one, or one per
  sample), by default 0, 1, ..., K-1, 0, 1, ...; None for an unconditional model, which
  refuses labels."""
  if not num_classes:
    if labels is not None:
      raise ConfigError("this model is unconditional (config.model.num_classes=0): it takes "
                        "no label")
    return None
  labels = jnp.arange(num) % num_classes if labels is None else labels
  return jnp.broadcast_to(jnp.asarray(labels, jnp.int32), (num,))


def with_labels(inputs: dict, num: int, labels, num_classes: int) -> dict:
  """`inputs` of `num` samples with their "label" (`requested_labels`) added when the
  model is conditional: what a family's `latent_inputs` hands its sampler."""
  labels = requested_labels(num, labels, num_classes)
  if labels is not None:
    inputs["label"] = labels
  return inputs


def class_rows(latent: jax.Array, num_classes: int, cols: int) -> tuple[jax.Array, jax.Array]:
  """The sample grids' conditional layout: row k is class k and column j the same latent
  (noise) j in every row. `latent` [>= cols, ...] -> (its first `cols` tiled over the K
  rows, [K * cols, ...]; labels [K * cols], row by row)."""
  tiled = jnp.tile(latent[:cols], (num_classes,) + (1,) * (latent.ndim - 1))
  return tiled, jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), cols)


def one_hot_concat(x: jax.Array, labels, num_classes: int) -> jax.Array:
  """[N, D] -> [N, D + K]: x followed by the one-hot label; x itself when unconditional."""
  check_labels(labels, num_classes, "the generator")
  if not num_classes:
    return x
  return jnp.concatenate([x, jax.nn.one_hot(labels, num_classes, dtype=x.dtype)], axis=-1)


def label_maps(images: jax.Array, labels, num_classes: int) -> jax.Array:
  """[N, H, W, C] -> [N, H, W, C + K]: the image and one constant map per class."""
  check_labels(labels, num_classes, "the discriminator")
  if not num_classes:
    return images
  maps = jax.nn.one_hot(labels, num_classes, dtype=images.dtype)[:, None, None, :]
  return jnp.concatenate([images, jnp.broadcast_to(maps, (*images.shape[:3], num_classes))],
                         axis=-1)
