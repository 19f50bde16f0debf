"""Fully connected GANs on MNIST: the vanilla GAN and the conditional GAN.

Goodfellow et al. (2014) and Mirza and Osindero (2014) trained multilayer perceptrons;
the layer sizes here are those of eriklindernoren/PyTorch-GAN (`implementations/gan/
gan.py`, `implementations/cgan/cgan.py`), the most used PyTorch port of both:

- G: z (concatenated with a learned 10-d label embedding when conditional) -> 128 ->
  256 -> 512 -> 1024 -> 784, LeakyReLU(0.2), BatchNorm on every hidden layer but the
  first, tanh. The reference writes `nn.BatchNorm1d(out_feat, 0.8)`, which sets eps to
  0.8 (the second positional argument), not momentum; kept, since that is the function
  the reference computes. G: 1,510,032 parameters (1,511,412 conditional).
- D (`mlp_discriminator`, gan.py): 784 -> 512 -> 256 -> 1 with LeakyReLU(0.2): 533,505.
- D (`cgan_mlp_discriminator`, cgan.py): the flattened image concatenated with a learned
  10-d label embedding, 794 -> 512 -> 512 -> 512 -> 1, dropout 0.4 on the second and
  third hidden layers: 932,965 parameters.

Linear layers keep PyTorch's default initialisation (the references never re-initialise
them), embeddings N(0, 1) as `nn.Embedding`. D returns a logit (the sigmoid lives in the
loss).

`dtype` is the compute dtype (`config.dtype`): the input is cast to it at the entry and
the layers of `jaxgan.layers` compute in the dtype they are given (BatchNorm in float32,
parameters float32); images and logits come back float32.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.errors import ConfigError
from jaxgan.layers import BatchNorm, Dense
from jaxgan.models.conditioning import check_labels

REFERENCE_BATCHNORM_EPS = 0.8  # `nn.BatchNorm1d(out_feat, 0.8)` in the reference


def _label_embedding(labels, num_classes: int, who: str):
  """The label's learned K-d embedding (`nn.Embedding(K, K)`, N(0, 1) init), or None."""
  check_labels(labels, num_classes, who)
  if not num_classes:
    return None
  return nn.Embed(num_classes, num_classes, embedding_init=nn.initializers.normal(1.0),
                  name="label_embedding")(labels)


class MLPGenerator(nn.Module):
  """z [N, nz] (and labels [N]) -> images [N, S, S, channels] in [-1, 1]."""
  image_size: int = 28
  channels: int = 1
  num_classes: int = 0
  hidden: Sequence[int] = (128, 256, 512, 1024)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    x = z = z.astype(self.dtype)
    embedding = _label_embedding(labels, self.num_classes, "the generator")
    if embedding is not None:
      x = jnp.concatenate([embedding.astype(z.dtype), z], axis=-1)  # the reference: cat(emb(y), z)
    for i, width in enumerate(self.hidden):
      x = Dense(width)(x)
      if i > 0:
        x = BatchNorm(train, epsilon=REFERENCE_BATCHNORM_EPS, scale_init=nn.initializers.ones)(x)
      x = nn.leaky_relu(x, 0.2)
    x = Dense(self.image_size * self.image_size * self.channels)(x)
    x = jnp.tanh(x).astype(jnp.float32)
    return x.reshape(z.shape[0], self.image_size, self.image_size, self.channels)


class MLPDiscriminator(nn.Module):
  """images [N, S, S, C] (and labels [N]) -> logits [N]."""
  image_size: int = 28
  num_classes: int = 0
  hidden: Sequence[int] = (512, 256)
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images, labels=None, train: bool = True):
    if images.shape[1:3] != (self.image_size, self.image_size):
      raise ConfigError(f"MLP discriminator for {self.image_size}x{self.image_size} images got "
                        f"shape {tuple(images.shape)}")
    x = images.reshape(images.shape[0], -1).astype(self.dtype)
    embedding = _label_embedding(labels, self.num_classes, "the discriminator")
    if embedding is not None:
      x = jnp.concatenate([x, embedding.astype(x.dtype)], axis=-1)  # cat(flat image, emb(y))
    for i, width in enumerate(self.hidden):
      x = Dense(width)(x)
      if i > 0 and self.dropout:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x = nn.leaky_relu(x, 0.2)
    return Dense(1)(x).astype(jnp.float32).reshape(images.shape[0])
