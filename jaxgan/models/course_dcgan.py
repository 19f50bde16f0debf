"""The DCGAN of the CMU 16-726 assignment "When Cats meet GANs" (DCGAN part, the 2023
code base), 64x64, for the grumpy cats: `DCGenerator` and `DCDiscriminator` at conv_dim 32.

Smaller than the PyTorch tutorial's DCGAN (`dcgan.py`) and built differently:

- G: z [N, 100] as a 1x1 map -> a 4x4 convolution with padding 3 (1x1 -> 4x4) to 8 cd
  channels, then three `up_conv` blocks to 4 cd, 2 cd, cd channels (nearest-neighbour
  upsampling x2, then a 3x3 convolution, padding 1) and a last `up_conv` to the image;
  InstanceNorm and ReLU after every layer but the last, which ends in tanh.
- D: four 4x4 convolutions of stride 2 (padding 1) to cd, 2 cd, 4 cd, 8 cd channels (64 ->
  32 -> 16 -> 8 -> 4), each followed by InstanceNorm and ReLU (the course's D uses ReLU,
  not DCGAN's LeakyReLU), then a 4x4 convolution (padding 0) to one logit.
- The course's `conv` / `up_conv` give a convolution a bias only where no norm follows (the
  last layer of each net). InstanceNorm as `nn.InstanceNorm2d`'s default: no affine
  parameters, eps 1e-5. `norm="batch"` (the course's option) puts BatchNorm there instead.
- Initialisation is PyTorch's default, which the course keeps: every kernel and bias
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels * k * k.

Parameters at conv_dim 32, nz 100, 3 channels (pinned in tests):
G 100*256*16 + 256*128*9 + 128*64*9 + 64*32*9 + (32*3*9 + 3) = 797,539;
D 3*32*16 + 32*64*16 + 64*128*16 + 128*256*16 + (256*16 + 1) = 693,761.
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.errors import ConfigError
from jaxgan.layers import Conv, norm_layer

IMAGE_SIZE = 64  # 4x4 doubled four times
WIDTHS = (8, 4, 2, 1)  # G's hidden widths as multiples of conv_dim; D's in reverse


def torch_default_init(fan_in: int):
  """PyTorch's default Conv2d initialisation of kernel and bias: U(-b, b), b = 1/sqrt(fan_in)
  (kaiming_uniform with a = sqrt(5) gives the same bound for the kernel)."""
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def course_conv(x, features: int, k: int, stride: int, padding: int, bias: bool, name: str,
                dtype=jnp.float32):
  """The course's `nn.Conv2d` with its default initialisation, computing in `dtype`."""
  init = torch_default_init(x.shape[-1] * k * k)
  return Conv(features, k, stride, padding, use_bias=bias, kernel_init=init, bias_init=init,
              name=name, dtype=dtype)(x)


def _check(image_size: int, num_classes: int, what: str) -> None:
  if image_size != IMAGE_SIZE:
    raise ConfigError(f"the course's {what} is defined for {IMAGE_SIZE}x{IMAGE_SIZE} images, "
                      f"not {image_size}")
  if num_classes:
    raise ConfigError(f"the course's {what} is unconditional: set config.model.num_classes=0")


def upsample(x):
  """nn.Upsample(scale_factor=2, mode='nearest') on NHWC."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class DCGenerator(nn.Module):
  """z [N, nz] -> images [N, 64, 64, channels] in [-1, 1] (module docstring)."""
  image_size: int = IMAGE_SIZE
  channels: int = 3
  ngf: int = 32  # the course's conv_dim
  num_classes: int = 0
  norm: str = "instance"
  dtype: Any = jnp.float32  # compute dtype (config.dtype); images come out float32

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    del labels  # unconditional (checked below)
    _check(self.image_size, self.num_classes, "DCGenerator")
    x = z.reshape(z.shape[0], 1, 1, z.shape[-1]).astype(self.dtype)
    x = course_conv(x, self.ngf * WIDTHS[0], 4, 1, 3, False, "up_conv1", self.dtype)  # 1 -> 4
    x = nn.relu(norm_layer(self.norm, train, name="up_conv1_norm", dtype=self.dtype)(x))
    for i, mult in enumerate(WIDTHS[1:], start=2):  # 4 -> 8 -> 16 -> 32
      x = course_conv(upsample(x), self.ngf * mult, 3, 1, 1, False, f"up_conv{i}", self.dtype)
      x = nn.relu(norm_layer(self.norm, train, name=f"up_conv{i}_norm", dtype=self.dtype)(x))
    x = course_conv(upsample(x), self.channels, 3, 1, 1, True, "up_conv5", self.dtype)  # 64
    return jnp.tanh(x).astype(jnp.float32)


class DCDiscriminator(nn.Module):
  """images [N, 64, 64, C] -> logits [N] (no sigmoid: losses take logits)."""
  image_size: int = IMAGE_SIZE
  ndf: int = 32  # the course's conv_dim
  num_classes: int = 0
  norm: str = "instance"
  dtype: Any = jnp.float32  # compute dtype (config.dtype); logits come out float32

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True):
    del labels
    _check(self.image_size, self.num_classes, "DCDiscriminator")
    if x.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
      raise ConfigError(f"the course's DCDiscriminator takes {IMAGE_SIZE}x{IMAGE_SIZE} images, "
                        f"got shape {tuple(x.shape)}")
    x = x.astype(self.dtype)
    for i, mult in enumerate(WIDTHS[::-1], start=1):  # 64 -> 32 -> 16 -> 8 -> 4
      x = course_conv(x, self.ndf * mult, 4, 2, 1, False, f"conv{i}", self.dtype)
      x = nn.relu(norm_layer(self.norm, train, name=f"conv{i}_norm", dtype=self.dtype)(x))
    x = course_conv(x, 1, 4, 1, 0, True, "conv5", self.dtype)  # 4 -> 1
    return x.reshape(x.shape[0]).astype(jnp.float32)
