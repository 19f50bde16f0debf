"""The pix2pix generator: a U-Net (Isola et al. 2017, sec. 3.2.1 and appendix 6.1.1), as
junyanz/pytorch-CycleGAN-and-pix2pix `models/networks.py` builds it (`UnetGenerator` from
nested `UnetSkipConnectionBlock`s), written here as one loop down and one loop up.

With `num_downs` = D levels (`unet_256`: D = 8, a 256x256 image reaches 1x1; `unet_128`:
D = 7), level i in 0..D-1 halves the resolution with a 4x4 stride-2 convolution to
`unet_widths(D, ngf)[i]` channels (ngf, 2 ngf, 4 ngf, then 8 ngf) and doubles it again on the
way up with a 4x4 stride-2 transposed convolution; every level but the outermost
concatenates its input (the skip connection) with what came back up, skip first, as the
reference's `torch.cat([x, self.model(x)], 1)`. Following the reference exactly:

- encoder: LeakyReLU(0.2) -> conv -> norm, except level 0 (the image goes straight into
  the conv, no norm) and the innermost level D-1 (no norm: a 1x1 map of batch 1 would be
  normalised to zero);
- decoder: ReLU -> transposed conv -> norm at levels D-1..1, then Dropout(0.5) at levels
  4..D-2, the D-5 levels just outside the innermost (unet_256: the 512-channel maps at
  4x4, 8x8 and 16x16 before their skips join them; the innermost level itself has none);
  level 0: ReLU -> transposed conv (with bias) -> tanh;
- convolutions have a bias only where the norm is InstanceNorm, apart from the outermost
  transposed conv, which always has one (54,413,955 parameters for unet_256 with ngf 64
  and BatchNorm, the reference's count).

The reference's in-place LeakyReLU also rewrites the skip tensor it reads (the
concatenation carries LeakyReLU(x), not x); its only reader is the next ReLU, and
ReLU(LeakyReLU(x)) = ReLU(x), so the plain skip here computes the same function.

Feature maps (`sow`n into "intermediates"): `encoder_i`, the output of level i's
down path; `decoder_i` (i >= 1), level i's block output, i.e. the concatenation
[encoder_{i-1}, up_i] that level i-1's transposed conv reads. For a 256x256x3 input to
unet_256 the reference's [batch, 512, 32, 32] map (NCHW) is `decoder_3` here:
[batch, 32, 32, 512] = encoder_2 (256 channels) joined with level 3's upsampled 256.

`dtype` is the compute dtype (`config.dtype`; `jaxgan.layers` on mixed precision): the
parameters and BatchNorm statistics stay float32 and the output image is float32.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.errors import ConfigError
from jaxgan.layers import Conv, ConvTranspose, norm_layer, uses_bias

KERNEL, STRIDE, PADDING = 4, 2, 1  # every up and down convolution of the U-Net


def unet_widths(num_downs: int, ngf: int) -> list[int]:
  """Channels after each down convolution: the reference's ngf * min(2**i, 8)."""
  return [ngf * min(2 ** i, 8) for i in range(num_downs)]


def dropout_levels(num_downs: int) -> range:
  """Levels whose decoder output goes through Dropout: the reference's num_downs - 5 middle
  blocks, built right around the innermost one."""
  return range(4, num_downs - 1)


class UNetGenerator(nn.Module):
  """images [N, H, W, C_in] in [-1, 1] -> [N, H, W, channels] in [-1, 1].

  `train=True` is the reference's `net.train()`: BatchNorm on batch statistics (updating
  the running ones when "batch_stats" is mutable) and Dropout on (needs a "dropout" rng).
  """
  num_downs: int = 8
  channels: int = 3     # the reference's output_nc
  ngf: int = 64
  norm: str = "batch"   # jaxgan.layers.NORMS
  dropout: float = 0.5  # 0 is the reference's --no_dropout
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    d = self.num_downs
    if d < 5:
      raise ConfigError(f"the reference U-Net has at least 5 levels, got num_downs={d}")
    side = 2 ** d
    if x.ndim != 4 or x.shape[1] % side or x.shape[2] % side:
      raise ConfigError(f"a U-Net with {d} downsamplings needs images whose height and width "
                        f"are multiples of {side}, got shape {tuple(x.shape)}")
    widths = unet_widths(d, self.ngf)
    bias = uses_bias(self.norm)

    dt = self.dtype
    skips = [Conv(widths[0], KERNEL, STRIDE, PADDING, use_bias=bias, name="down_0", dtype=dt)(x)]
    self.sow("intermediates", "encoder_0", skips[0])
    for i in range(1, d):
      h = nn.leaky_relu(skips[-1], 0.2)
      h = Conv(widths[i], KERNEL, STRIDE, PADDING, use_bias=bias, name=f"down_{i}", dtype=dt)(h)
      if i < d - 1:
        h = norm_layer(self.norm, train, name=f"down_norm_{i}", dtype=dt)(h)
      skips.append(h)
      self.sow("intermediates", f"encoder_{i}", h)

    h = skips[-1]
    for i in reversed(range(1, d)):
      h = nn.relu(h)
      h = ConvTranspose(widths[i - 1], KERNEL, STRIDE, PADDING, use_bias=bias, name=f"up_{i}",
                        dtype=dt)(h)
      h = norm_layer(self.norm, train, name=f"up_norm_{i}", dtype=dt)(h)
      if i in dropout_levels(d) and self.dropout > 0:
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
      h = jnp.concatenate([skips[i - 1], h], axis=-1)
      self.sow("intermediates", f"decoder_{i}", h)

    h = ConvTranspose(self.channels, KERNEL, STRIDE, PADDING, use_bias=True, name="up_0",
                      dtype=dt)(nn.relu(h))
    return jnp.tanh(h).astype(jnp.float32)
