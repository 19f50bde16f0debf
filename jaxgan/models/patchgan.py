"""The PatchGAN discriminator (Isola et al. 2017, sec. 3.2.2), as junyanz/pytorch-CycleGAN-
and-pix2pix `models/networks.py` builds it (`NLayerDiscriminator`).

A fully convolutional net of 4x4 convolutions (padding 1): one to ndf channels (stride 2,
bias, no norm), n-1 more of stride 2 and one of stride 1 doubling the width up to 8 ndf
(each -> norm -> LeakyReLU(0.2), with a bias only for InstanceNorm), and one to a single
channel (stride 1, bias). Its output is a map of logits, one per overlapping input patch
of side `receptive_field(n_layers)`: n = 3 (the paper's 70x70 PatchGAN) maps a 256x256
input to 30x30. pix2pix feeds it the 6-channel concatenation (input, output), with
BatchNorm (2,768,705 parameters at ndf 64); CycleGAN feeds it 3-channel images, with
InstanceNorm (2,764,737). `dtype` is the compute dtype (`config.dtype`; `jaxgan.layers` on
mixed precision); the logits come back float32, for losses in float32.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.errors import ConfigError
from jaxgan.layers import Conv, norm_layer, uses_bias

KERNEL, PADDING = 4, 1


def patch_layers(n_layers: int, ndf: int) -> list[tuple[int, int]]:
  """(output channels, stride) of each convolution, first to last."""
  layers = [(ndf, 2)]
  for n in range(1, n_layers + 1):
    layers.append((ndf * min(2 ** n, 8), 2 if n < n_layers else 1))
  return layers + [(1, 1)]


def _walk_back(n_layers: int, padding: int) -> int:
  """Side of the input behind one output logit: walking back from it, each convolution
  needs (r - 1) * stride + kernel - 2 * padding inputs (at least 1)."""
  r = 1
  for _, stride in reversed(patch_layers(n_layers, 1)):
    r = max(1, (r - 1) * stride + KERNEL - 2 * padding)
  return r


def receptive_field(n_layers: int) -> int:
  """Side of the input patch behind one output logit (the walk back without padding).
  16, 34, 70, 142, 286, 574 for n = 1..6."""
  return _walk_back(n_layers, 0)


def output_size(size: int, n_layers: int) -> int:
  """Side of the logit map for an input of side `size` (256 -> 30 for n = 3)."""
  for _, stride in patch_layers(n_layers, 1):
    size = (size + 2 * PADDING - KERNEL) // stride + 1
  return size


class PatchDiscriminator(nn.Module):
  """images [N, H, W, C] -> logits [N, H', W'] (no sigmoid: the losses take logits)."""
  ndf: int = 64
  n_layers: int = 3
  norm: str = "batch"  # jaxgan.layers.NORMS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    if x.ndim != 4 or min(output_size(x.shape[1], self.n_layers),
                          output_size(x.shape[2], self.n_layers)) < 1:
      raise ConfigError(f"a {self.n_layers}-layer PatchGAN needs images of at least "
                        f"{_smallest_input(self.n_layers)}x{_smallest_input(self.n_layers)}, "
                        f"got shape {tuple(x.shape)}")
    layers = patch_layers(self.n_layers, self.ndf)
    for i, (features, stride) in enumerate(layers):
      hidden = 0 < i < len(layers) - 1
      x = Conv(features, KERNEL, stride, PADDING, use_bias=not hidden or uses_bias(self.norm),
               dtype=self.dtype)(x)
      if hidden:
        x = norm_layer(self.norm, train, dtype=self.dtype)(x)
      if i < len(layers) - 1:
        x = nn.leaky_relu(x, 0.2)
    return x[..., 0].astype(jnp.float32)


def _smallest_input(n_layers: int) -> int:
  """Side of the smallest input with a logit map of at least 1x1 (the walk back with the
  layers' padding; in closed form, since a search upwards takes ~2^n steps and n_layers is
  the user's)."""
  return _walk_back(n_layers, PADDING)
