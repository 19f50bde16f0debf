"""Classifiers that judge generated images: the MNIST digit classifier (whose features give the
digit FID) and the domain classifier of CycleGAN evaluation (`DomainClassifier`, below).

The MNIST classifier is a small CNN in the shape of the Keras/PyTorch MNIST examples: two
3x3 convolutions (32 and 64 channels, ReLU, each followed by 2x2 max pooling), a 128-unit
hidden layer (ReLU, dropout 0.5 in training) and 10 logits. The 128-d hidden activations are the
feature space of the digit FID (as Inception's pool features are for ImageNet FID).
`configs/mnist_classifier.py` trains it (its test accuracy: docs/experiments/conditional_mnist).
"""

import flax.linen as nn
import jax.numpy as jnp

from jaxgan import implementation
from jaxgan.errors import ConfigError


class MNISTClassifier(nn.Module):
  """images [N, 28, 28, 1] in [-1, 1] -> logits [N, 10] (and features [N, 128])."""
  image_size: int = 28
  num_classes: int = 10
  features: int = 128

  @nn.compact
  def __call__(self, x, train: bool = False, return_features: bool = False):
    if x.shape[1:] != (self.image_size, self.image_size, 1):
      raise ConfigError(f"the MNIST classifier takes [N, {self.image_size}, {self.image_size}, 1] "
                        f"images, got {tuple(x.shape)}")
    if self.image_size < 4 or self.num_classes < 1:  # two 2x2 poolings; some class to predict
      raise ConfigError(f"the MNIST classifier needs images of at least 4x4 and one class or "
                        f"more, got {self.image_size}x{self.image_size} and {self.num_classes}")
    for width in (32, 64):
      x = nn.relu(nn.Conv(width, (3, 3), padding="SAME", precision=implementation.precision())(x))
      x = nn.max_pool(x, (2, 2), (2, 2))
    x = x.reshape(x.shape[0], -1)
    features = nn.relu(nn.Dense(self.features, precision=implementation.precision())(x))
    x = nn.Dropout(0.5, deterministic=not train)(features)
    logits = nn.Dense(self.num_classes, precision=implementation.precision())(x)
    return (logits, features) if return_features else logits


class DomainClassifier(nn.Module):
  """images [N, S, S, 3] in [-1, 1] -> logits [N, 2] (and features [N, 128]): domain A or B.

  The judge of CycleGAN translations (`jaxgan.families.cyclegan.evaluate`): four 3x3
  convolutions (32, 64, 128, 128 channels, ReLU, each followed by 2x2 max pooling), a
  global average over what is left of the image, dropout 0.5 in training, and the logits.
  Trained on the real images of both domains by `configs/domain_classifier.py`.
  """
  image_size: int = 64
  num_classes: int = 2
  widths: tuple[int, ...] = (32, 64, 128, 128)

  @nn.compact
  def __call__(self, x, train: bool = False, return_features: bool = False):
    if x.ndim != 4 or x.shape[1:3] != (self.image_size, self.image_size):
      raise ConfigError(f"the domain classifier takes [N, {self.image_size}, {self.image_size}, C] "
                        f"images, got {tuple(x.shape)}")
    for width in self.widths:
      x = nn.relu(nn.Conv(width, (3, 3), padding="SAME", precision=implementation.precision())(x))
      x = nn.max_pool(x, (2, 2), (2, 2))
    features = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(0.5, deterministic=not train)(features)
    logits = nn.Dense(self.num_classes, precision=implementation.precision())(x)
    return (logits, features) if return_features else logits
