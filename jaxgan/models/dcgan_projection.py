"""DCGAN as the paper draws it: z projected by a dense layer to a 4x4x1024 tensor.

Radford, Metz and Chintala (2016), Figure 1 and sec. 3-4: "The first layer of the GAN,
which takes a uniform noise distribution Z as input, could be called fully connected as
it is just a matrix multiplication, but the result is reshaped into a 4-dimensional
tensor". G: z (100) -> Dense -> reshape 4x4x1024 -> BatchNorm, ReLU -> four stride-2
transposed convolutions to 8x8x512, 16x16x256, 32x32x128 (each BatchNorm, ReLU) and
64x64x3, tanh. D mirrors it: stride-2 convolutions 64x64x3 -> 32x32x128 -> 16x16x256 ->
8x8x512 -> 4x4x1024 with LeakyReLU(0.2), BatchNorm on all but the first, then the
flattened 4x4x1024 tensor -> Dense -> one logit. Every kernel N(0, 0.02) (sec. 4),
BatchNorm scale N(1, 0.02) and PyTorch's BatchNorm (as `jaxgan.layers`). The widths are
ngf (ndf) times 8, 4, 2, 1: ngf = ndf = 128 gives the paper's 1024 ... 128. No biases:
every layer feeds a BatchNorm or the output, and the paper's own code
(Newmu/dcgan_code, `faces/train_uncond_dcgan.py`: `T.dot(Z, gw)` and `T.dot(h4.flatten(2),
wy)`) has none on its dense layers either.

Kernel size. The figure and the paper's code use 5x5 kernels with 'same'-like padding;
most PyTorch ports use 4x4, stride 2, padding 1. `dcgan_projection_*` (the configs'
choice) is 4x4 s2 p1: a kernel that is a multiple of the stride covers every output
pixel equally often (no checkerboard from uneven overlap; Odena et al. 2016,
"Deconvolution and Checkerboard Artifacts"), and `jaxgan.layers` runs exactly those
convolutions fast on a CPU (a stride-2 5x5 convolution falls back to XLA's strided form,
and a 5x5 transposed one spends 36 taps per 2x2 output phases on 25 weights).
`dcgan_projection_*_5x5` is the figure's: PyTorch (5, 2, 2, output_padding=1) in G, a
'same' transposed convolution that doubles the side, and (5, 2, 2) in D. (TensorFlow's
'SAME' crops the full output one pixel further left; the same function class, the kernel
shifted by one pixel.)

With 4x4 kernels these nets compute the same functions as `dcgan.py`'s tutorial nets at
ngf = ndf = 128: a 4x4 transposed convolution of a 1x1 input is a dense layer, and D's
last 4x4 valid convolution of a 4x4 map is a dense layer of its flattened input
(`tests/celeba_test.py` checks it with ported weights). The dense layers are written
out here as the paper describes them.

Parameters, 64x64x3, ngf = ndf = 128, 4x4 kernels: G 12,658,432, D 11,036,160 (5x5: G
18,855,040, D 17,232,768); computed by hand in `tests/celeba_test.py`.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.errors import ConfigError
from jaxgan.layers import BatchNorm, Conv, ConvTranspose, Dense, dcgan_kernel_init

PROJECTION_SIDE = 4  # z becomes a 4x4 x (8 * ngf) tensor
WIDTHS = (8, 4, 2, 1)  # multiples of ngf at 4x4, 8x8, 16x16, 32x32
# (padding, output_padding) of a stride-2 kernel of this size that doubles the side.
SAME_PADDING = {4: (1, 0), 5: (2, 1)}


def _check(image_size: int, kernel_size: int, labels) -> None:
  if labels is not None:
    raise ConfigError("the dense-projection DCGAN is unconditional: set config.model.num_classes=0")
  if image_size != 64:
    raise ConfigError(f"the dense-projection DCGAN is defined for 64x64 images, not {image_size}")
  if kernel_size not in SAME_PADDING:
    raise ConfigError(f"the dense-projection DCGAN takes kernel sizes {sorted(SAME_PADDING)}, "
                      f"not {kernel_size}")


class ProjectionGenerator(nn.Module):
  """z [N, nz] -> images [N, 64, 64, channels] in [-1, 1]."""
  image_size: int = 64
  channels: int = 3
  ngf: int = 128
  kernel_size: int = 4
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    _check(self.image_size, self.kernel_size, labels)
    k, (p, op) = self.kernel_size, SAME_PADDING[self.kernel_size]
    side, width = PROJECTION_SIDE, self.ngf * WIDTHS[0]
    x = Dense(side * side * width, use_bias=False, kernel_init=dcgan_kernel_init,
              dtype=self.dtype, name="projection")(z.astype(self.dtype))
    x = x.reshape(z.shape[0], side, side, width)
    x = nn.relu(BatchNorm(train, dtype=self.dtype)(x))
    for mult in WIDTHS[1:]:
      x = ConvTranspose(self.ngf * mult, k, 2, p, use_bias=False, output_padding=op,
                        dtype=self.dtype)(x)
      x = nn.relu(BatchNorm(train, dtype=self.dtype)(x))
    x = ConvTranspose(self.channels, k, 2, p, use_bias=False, output_padding=op,
                      dtype=self.dtype)(x)
    return jnp.tanh(x).astype(jnp.float32)


class ProjectionDiscriminator(nn.Module):
  """images [N, 64, 64, C] -> logits [N] (no sigmoid: the losses take logits)."""
  image_size: int = 64
  ndf: int = 128
  kernel_size: int = 4
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True):
    _check(self.image_size, self.kernel_size, labels)
    if x.shape[1:3] != (self.image_size, self.image_size):
      raise ConfigError(f"dense-projection discriminator for 64x64 images got shape "
                        f"{tuple(x.shape)}")
    k, p = self.kernel_size, SAME_PADDING[self.kernel_size][0]
    x = x.astype(self.dtype)
    for i, mult in enumerate(WIDTHS[::-1]):
      x = Conv(self.ndf * mult, k, 2, p, use_bias=False, dtype=self.dtype)(x)
      if i > 0:  # "not applying batchnorm to ... the discriminator input layer" (sec. 3)
        x = BatchNorm(train, dtype=self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    logits = Dense(1, use_bias=False, kernel_init=dcgan_kernel_init, dtype=self.dtype,
                   name="logit")(x.reshape(x.shape[0], -1))
    return logits.astype(jnp.float32).reshape(x.shape[0])
