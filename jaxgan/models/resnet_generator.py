"""The CycleGAN generators: the reference's ResNet generator, and its 64x64 course variant.

`ResnetGenerator` is junyanz/pytorch-CycleGAN-and-pix2pix `models/networks.py`
(`ResnetGenerator`, `ResnetBlock`; Johnson et al. 2016's transformation net), named as the
CycleGAN paper's appendix 7.2 names its layers: c7s1-64, d128, d256, R256 x n, u128, u64,
c7s1-3.

- c7s1-k: reflect padding 3, a 7x7 convolution (stride 1) to k channels, norm, ReLU; the
  last one (c7s1-3) has no norm and ends in tanh;
- dk: a 3x3 convolution of stride 2 (zero padding 1) to k channels, norm, ReLU;
- Rk: a residual block, x + [reflect pad 1, 3x3 conv, norm, ReLU, reflect pad 1, 3x3
  conv, norm](x), k channels in and out;
- uk: a 3x3 transposed convolution of stride 2 (padding 1, output padding 1: the side
  exactly doubles) to k channels, norm, ReLU.

The norm is InstanceNorm without affine parameters (eps 1e-5; CycleGAN's --norm instance)
or BatchNorm; convolutions have a bias only where InstanceNorm follows them, as the
reference's `use_bias = norm_layer == nn.InstanceNorm2d`, and the last convolution always
has one. `resnet_9blocks` (the reference's default, for 256x256) has 11,378,179 parameters
at ngf 64 with InstanceNorm, `resnet_6blocks` 7,837,699: the counts of the PyTorch nets.
Dropout (the reference's use_dropout, off for CycleGAN: --no_dropout is its default) is
not built.

`CycleGenerator64` (`cycle_generator_64`) is the 64x64 generator of the CMU 16-726
assignment "When Cats meet GANs" (CycleGAN part; its code base is U Toronto CSC 321's
assignment 4), which the grumpy cat data set comes from: an encoder of two 4x4
convolutions of stride 2 (padding 1) to ngf and 2 ngf channels (64x64 -> 32x32 -> 16x16;
the course's 32 and 64 channels at ngf 32), a residual transformation at 16x16, and a
decoder of two 4x4 transposed convolutions of stride 2 (padding 1) back to ngf channels
and to the image, tanh; InstanceNorm and ReLU after every layer but the last. Where it
differs from the course, and why:

- the transformation is 6 of the reference's residual blocks (Rk above: two reflect-padded
  3x3 convolutions each) where the course has one block of a single zero-padded 3x3
  convolution (`x + ReLU(norm(conv(x)))`): the reference's block is the one the CycleGAN
  paper trains, and six of them at 16x16 x 64 cost little (443,136 of the 511,875
  parameters at ngf 32);
- the decoder upsamples with transposed convolutions as CSC 321's `deconv` does (the
  2023 course code upsamples by nearest-neighbour and a 5x5 convolution instead);
- biases follow the reference's rule (a bias where InstanceNorm follows and on the last
  layer) where the course's `conv` drops them whenever a norm follows.

`dtype` is the compute dtype (`config.dtype`): the input is cast to it at the entry and
every layer of `jaxgan.layers` computes in the dtype it is given (norms in float32,
parameters float32); the output image is float32.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.errors import ConfigError
from jaxgan.layers import Conv, ConvTranspose, norm_layer, uses_bias


def reflect_pad(x, p: int):
  """PyTorch's ReflectionPad2d(p) on NHWC: the border mirrored, the edge row not repeated."""
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def _check_input(x, multiple: int, name: str) -> None:
  if x.ndim != 4 or x.shape[1] % multiple or x.shape[2] % multiple:
    raise ConfigError(f"{name} needs images whose height and width are multiples of "
                      f"{multiple}, got shape {tuple(x.shape)}")


class ResnetBlock(nn.Module):
  """Rk: x + [reflect pad, 3x3 conv, norm, ReLU, reflect pad, 3x3 conv, norm](x)."""
  norm: str = "instance"
  train: bool = True

  @nn.compact
  def __call__(self, x):
    features, bias = x.shape[-1], uses_bias(self.norm)
    h = Conv(features, 3, use_bias=bias, name="conv_1")(reflect_pad(x, 1))
    h = nn.relu(norm_layer(self.norm, self.train, name="norm_1")(h))
    h = Conv(features, 3, use_bias=bias, name="conv_2")(reflect_pad(h, 1))
    return x + norm_layer(self.norm, self.train, name="norm_2")(h)


class ResnetGenerator(nn.Module):
  """images [N, H, W, C] in [-1, 1] -> [N, H, W, channels] in [-1, 1]; H, W multiples of 4."""
  n_blocks: int = 9
  channels: int = 3   # the reference's output_nc
  ngf: int = 64
  norm: str = "instance"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    _check_input(x, 4, f"resnet_{self.n_blocks}blocks (two stride-2 downsamplings)")
    bias = uses_bias(self.norm)
    x = x.astype(self.dtype)
    h = Conv(self.ngf, 7, use_bias=bias, name="c7s1_in")(reflect_pad(x, 3))
    h = nn.relu(norm_layer(self.norm, train, name="c7s1_in_norm")(h))
    for i in (1, 2):  # d128, d256
      h = Conv(self.ngf * 2 ** i, 3, 2, 1, use_bias=bias, name=f"d_{i}")(h)
      h = nn.relu(norm_layer(self.norm, train, name=f"d_{i}_norm")(h))
    for i in range(self.n_blocks):  # R256
      h = ResnetBlock(self.norm, train, name=f"R_{i}")(h)
    for i in (1, 2):  # u128, u64
      h = ConvTranspose(self.ngf * 2 ** (2 - i), 3, 2, 1, use_bias=bias, output_padding=1,
                        name=f"u_{i}")(h)
      h = nn.relu(norm_layer(self.norm, train, name=f"u_{i}_norm")(h))
    h = Conv(self.channels, 7, use_bias=True, name="c7s1_out")(reflect_pad(h, 3))
    return jnp.tanh(h).astype(jnp.float32)


class CycleGenerator64(nn.Module):
  """The course's 64x64 CycleGenerator (module docstring): [N, H, W, C] -> [N, H, W,
  channels], H, W multiples of 4 (64x64 in the course)."""
  n_blocks: int = 6
  channels: int = 3
  ngf: int = 32
  norm: str = "instance"
  dtype: Any = jnp.float32  # as ResnetGenerator's

  @nn.compact
  def __call__(self, x, train: bool = True):
    _check_input(x, 4, "cycle_generator_64 (two stride-2 downsamplings)")
    bias = uses_bias(self.norm)
    h = x.astype(self.dtype)
    for i in (1, 2):  # encoder: 64 -> 32 -> 16
      h = Conv(self.ngf * i, 4, 2, 1, use_bias=bias, name=f"conv_{i}")(h)
      h = nn.relu(norm_layer(self.norm, train, name=f"conv_{i}_norm")(h))
    for i in range(self.n_blocks):  # transformation at 16x16
      h = ResnetBlock(self.norm, train, name=f"R_{i}")(h)
    h = ConvTranspose(self.ngf, 4, 2, 1, use_bias=bias, name="deconv_1")(h)  # 16 -> 32
    h = nn.relu(norm_layer(self.norm, train, name="deconv_1_norm")(h))
    h = ConvTranspose(self.channels, 4, 2, 1, use_bias=True, name="deconv_2")(h)  # 32 -> 64
    return jnp.tanh(h).astype(jnp.float32)
