"""DCGAN generator and discriminator (Radford et al. 2015), as the PyTorch DCGAN tutorial.

At 64x64 these are exactly the tutorial's `Generator`/`Discriminator` (nz=100,
ngf=ndf=64): G projects z with a 4x4 transposed convolution and doubles the
resolution four times (4 -> 8 -> 16 -> 32 -> 64) with stride-2 4x4 transposed
convolutions, BatchNorm and ReLU, ending in tanh; D mirrors it with stride-2 4x4
convolutions, BatchNorm (not on its first layer) and LeakyReLU(0.2), ending in a 4x4
convolution to one logit. No biases (each conv feeds a BatchNorm or the output).
For 3 channels: G 3,576,704 and D 2,765,568 parameters (pinned in tests).

At 28x28 (MNIST) the nets have one transposed-conv block fewer: 1 -> 4 -> 7 -> 14 -> 28,
where 4 -> 7 is a 3x3 stride-2 (padding 1) block, with widths ngf*4, ngf*2, ngf, and D
mirrors it (28 -> 14 -> 7 -> 4 -> 1).

Class-conditional variants (cDCGAN; Mirza and Osindero 2014 applied to DCGAN): with
`num_classes` K > 0, G reads z concatenated with the one-hot label (nz + K inputs to
its first transposed convolution) and D reads the image with K label maps as extra
input channels (channel k is 1 where the label is k). With `num_outputs` K + 1, D
instead classifies: its last convolution gives K digit logits and one "fake" logit
(Salimans et al. 2016, sec. 5), and takes no label.

`dtype` is the compute dtype (`config.dtype`; `jaxgan.layers` on mixed precision):
parameters and BatchNorm statistics stay float32, and both nets hand back float32 (images,
logits), so that the losses are computed in float32.
"""

from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.errors import ConfigError
from jaxgan.layers import BatchNorm, Conv, ConvTranspose
from jaxgan.models.conditioning import label_maps, one_hot_concat

# Hidden blocks per resolution: (width as a multiple of ngf or ndf, kernel, stride, padding).
Block = Tuple[int, int, int, int]
GENERATOR_BLOCKS: dict[int, Sequence[Block]] = {
    64: ((8, 4, 1, 0), (4, 4, 2, 1), (2, 4, 2, 1), (1, 4, 2, 1)),
    28: ((4, 4, 1, 0), (2, 3, 2, 1), (1, 4, 2, 1)),
}
DISCRIMINATOR_BLOCKS: dict[int, Sequence[Block]] = {
    64: ((2, 4, 2, 1), (4, 4, 2, 1), (8, 4, 2, 1)),
    28: ((2, 4, 2, 1), (4, 3, 2, 1)),
}


def _check_size(image_size: int) -> None:
  if image_size not in GENERATOR_BLOCKS:
    raise ConfigError(f"DCGAN is defined for image sizes {sorted(GENERATOR_BLOCKS)}, "
                     f"not {image_size}")


class DCGANGenerator(nn.Module):
  """z [N, nz] (and labels [N] when conditional) -> images [N, S, S, channels] in [-1, 1]."""
  image_size: int = 64
  channels: int = 3
  ngf: int = 64
  num_classes: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    _check_size(self.image_size)
    z = one_hot_concat(z.astype(self.dtype), labels, self.num_classes)
    x = z.reshape(z.shape[0], 1, 1, z.shape[-1])
    for mult, k, s, p in GENERATOR_BLOCKS[self.image_size]:
      x = ConvTranspose(self.ngf * mult, k, s, p, use_bias=False, dtype=self.dtype)(x)
      x = nn.relu(BatchNorm(train, dtype=self.dtype)(x))
    x = ConvTranspose(self.channels, 4, 2, 1, use_bias=False, dtype=self.dtype)(x)
    return jnp.tanh(x).astype(jnp.float32)


class DCGANDiscriminator(nn.Module):
  """images [N, S, S, C] (and labels [N] when conditional) -> logits [N], or [N, num_outputs].

  No sigmoid or softmax: losses take logits.
  """
  image_size: int = 64
  ndf: int = 64
  num_classes: int = 0
  num_outputs: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True):
    _check_size(self.image_size)
    if x.shape[1:3] != (self.image_size, self.image_size):
      raise ConfigError(f"DCGAN discriminator for {self.image_size}x{self.image_size} "
                       f"images got shape {tuple(x.shape)}")
    x = label_maps(x.astype(self.dtype), labels, self.num_classes)
    x = nn.leaky_relu(Conv(self.ndf, 4, 2, 1, use_bias=False, dtype=self.dtype)(x), 0.2)
    for mult, k, s, p in DISCRIMINATOR_BLOCKS[self.image_size]:
      x = Conv(self.ndf * mult, k, s, p, use_bias=False, dtype=self.dtype)(x)
      x = nn.leaky_relu(BatchNorm(train, dtype=self.dtype)(x), 0.2)
    x = Conv(self.num_outputs, 4, 1, 0, use_bias=False, dtype=self.dtype)(x).astype(jnp.float32)
    return x.reshape(x.shape[0]) if self.num_outputs == 1 else x.reshape(x.shape[0], -1)
