"""The time-conditioned U-Net of DDPM (Ho et al. 2020, appendix B), sized for MNIST on a CPU.

Follows the reference `diffusion_tf/models/unet.py` (hojonathanho/diffusion) in its parts:
a sinusoidal embedding of the timestep (`get_timestep_embedding`, the Transformer's) through
Dense(4C) - swish - Dense(4C); residual blocks GroupNorm - swish - 3x3 conv, plus a
projection of the embedding added as a per-channel bias, GroupNorm - swish - dropout -
3x3 conv, with a 1x1 projection on the skip path when the width changes; a middle block
res - self-attention - res at the lowest resolution; on the way up, every block reads the
matching down-path activation concatenated to its input; upsampling by nearest-neighbour
x2 and a 3x3 conv, downsampling by a 3x3 stride-2 conv (`resamp_with_conv=True`, the
reference's setting for every data set); the output conv initialised to zero (the
reference's `init_scale=0.`).

Deviations, for a 28x28 one-channel data set on a 2-core CPU: configs/ddpm_mnist.py uses
`ch_mult=(1, 2, 2)` (28, 14 and 7 pixels; the middle block at 7) instead of CIFAR's
(1, 2, 2, 2), no attention in the resolution levels (the reference puts it at 16x16),
base width `ch` 32 instead of 128, GroupNorm with `min(32, C // 4)` groups (the
reference's 32 groups would be one channel each at width 32). `downsample="avg_pool"` is
an option that deviates further, for speed on XLA:CPU (where the input gradient of a
stride-2 convolution is a dilated convolution): 2x2 average pooling, the downsampling of
the reference's `resamp_with_conv=False`, while upsampling keeps its convolution. A saved
config without `config.model.downsample` resumes with it, the form such runs trained with.

Class conditioning (classifier-free guidance, Ho and Salimans 2022): with `num_classes` K
the label's embedding (K + 1 rows, row K the "no label" token) is added to the time
embedding; `label=None` or label K is the unconditional model.

Mixed precision: convolutions, dense layers and attention compute in `dtype` with float32
parameters; GroupNorm and the embeddings compute in float32; the output is float32.
"""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan import implementation
from jaxgan import layers
from jaxgan import layers_cpu
from jaxgan.errors import ConfigError

Array = jax.Array

# How the U-Net halves its maps (`DDPMUNet.downsample_layer`).
DOWNSAMPLE = ("conv", "avg_pool")


def _conv(features: int, kernel_size, **kwargs) -> nn.Module:
  """Flax's convolution (XLA's own, "SAME" padding as the reference's TF layers) at the
  precision in force (`jaxgan.implementation`)."""
  return nn.Conv(features, kernel_size, precision=implementation.precision(), **kwargs)


def _dense(features: int, **kwargs) -> nn.Module:
  return nn.Dense(features, precision=implementation.precision(), **kwargs)


def timestep_embedding(t: Array, dim: int) -> Array:
  """The reference's `get_timestep_embedding`: [sin(t w_i), cos(t w_i)] with
  w_i = 10000^(-i / (dim/2 - 1)), i < dim/2 (Vaswani et al. 2017, sec. 3.5). [N] -> [N, dim]."""
  half = dim // 2
  freqs = jnp.exp(-math.log(10_000) * jnp.arange(half, dtype=jnp.float32) / (half - 1))
  args = t.astype(jnp.float32)[:, None] * freqs[None]
  return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


def _group_norm_portable(x: Array, groups: int, eps: float) -> Array:
  """(x - mean) / sqrt(var + eps) over H, W and each group's channels, two-pass variance."""
  n, h, w, c = x.shape
  return layers.normalise(x.reshape(n, h, w, groups, c // groups), (1, 2, 4), eps).reshape(x.shape)


def _group_norm_cpu(x: Array, groups: int, eps: float) -> Array:
  """The same, its sums as XLA:CPU runs them fastest (`layers_cpu.group_sums`)."""
  m = x.shape[1] * x.shape[2] * (x.shape[3] // groups)
  centred = x - layers_cpu.group_sums(x, groups) / m
  return centred * jax.lax.rsqrt(layers_cpu.group_sums(jnp.square(centred), groups) / m + eps)


class GroupNorm(nn.Module):
  """GroupNorm (Wu and He 2018) as `flax.linen.GroupNorm` (eps 1e-6, affine), computed in
  float32 whatever the compute dtype, with min(32, C // 4) groups."""
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    groups = min(32, max(1, c // 4))
    y = implementation.choose(lambda x: _group_norm_cpu(x, groups, self.epsilon),
                              lambda x: _group_norm_portable(x, groups, self.epsilon),
                              x.astype(jnp.float32))
    return y * self.param("scale", nn.initializers.ones, (c,)) + self.param(
        "bias", nn.initializers.zeros, (c,))


def _group_norm(c: int, dtype) -> nn.Module:
  del c, dtype
  return GroupNorm()


class ResnetBlock(nn.Module):
  """The reference's `resnet_block` (conv_shortcut=False)."""
  features: int
  dropout: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, emb, train: bool):
    h = nn.swish(_group_norm(x.shape[-1], self.dtype)(x)).astype(self.dtype)
    h = _conv(self.features, (3, 3), dtype=self.dtype, name="conv1")(h)
    h = h + _dense(self.features, dtype=self.dtype, name="temb_proj")(
        nn.swish(emb).astype(self.dtype))[:, None, None, :]
    h = nn.swish(_group_norm(self.features, self.dtype)(h)).astype(self.dtype)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = _conv(self.features, (3, 3), dtype=self.dtype, kernel_init=nn.initializers.zeros,
                name="conv2")(h)
    if x.shape[-1] != self.features:
      x = _dense(self.features, dtype=self.dtype, name="nin_shortcut")(x)
    return x.astype(self.dtype) + h


class AttnBlock(nn.Module):
  """The reference's `attn_block`: single-head self-attention over the H x W positions."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    n, h, w, c = x.shape
    y = _group_norm(c, self.dtype)(x).astype(self.dtype)
    q, k, v = (_dense(c, dtype=self.dtype, name=name)(y).reshape(n, h * w, c)
               for name in ("q", "k", "v"))
    weights = jax.nn.softmax(
        jnp.einsum("nic,njc->nij", q, k, precision=implementation.precision())
        .astype(jnp.float32) * c ** -0.5, axis=-1)
    y = jnp.einsum("nij,njc->nic", weights.astype(self.dtype), v,
                   precision=implementation.precision()).reshape(n, h, w, c)
    return x + _dense(c, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                        name="proj_out")(y)


class DDPMUNet(nn.Module):
  """eps_theta(x_t, t[, label]): [N, H, W, C], [N] int timesteps -> [N, H, W, C] float32.

  H and W must be divisible by 2^(len(ch_mult) - 1).
  """
  channels: int = 1
  ch: int = 32
  ch_mult: Sequence[int] = (1, 2)
  num_res_blocks: int = 2
  dropout: float = 0.1
  num_classes: int = 0
  downsample: str = "conv"  # DOWNSAMPLE
  dtype: Any = jnp.float32

  def downsample_layer(self, h: Array) -> Array:
    """The reference's `downsample`: with_conv, a 3x3 stride-2 convolution ("SAME" as in
    TF: one row and column of zeros at the far end); "avg_pool", 2x2 average pooling."""
    if self.downsample == "avg_pool":
      return nn.avg_pool(h, (2, 2), (2, 2))
    return _conv(h.shape[-1], (3, 3), strides=(2, 2), dtype=self.dtype)(h)

  @nn.compact
  def __call__(self, x, t, labels=None, train: bool = False):
    temb_dim = 4 * self.ch
    emb = timestep_embedding(t, self.ch)
    emb = _dense(temb_dim, name="temb_dense0")(emb)
    emb = _dense(temb_dim, name="temb_dense1")(nn.swish(emb))
    if self.num_classes:
      # Row K is the null label of classifier-free guidance.
      labels = (jnp.full(x.shape[:1], self.num_classes, jnp.int32) if labels is None
                else labels.astype(jnp.int32))
      emb = emb + nn.Embed(self.num_classes + 1, temb_dim, name="label_emb")(labels)
    elif labels is not None:
      raise ConfigError("this diffusion model is unconditional (num_classes=0): it takes no label")

    h = _conv(self.ch, (3, 3), dtype=self.dtype, name="conv_in")(x.astype(self.dtype))
    skips = [h]
    for level, mult in enumerate(self.ch_mult):
      for _ in range(self.num_res_blocks):
        h = ResnetBlock(self.ch * mult, self.dropout, self.dtype)(h, emb, train)
        skips.append(h)
      if level != len(self.ch_mult) - 1:
        h = self.downsample_layer(h)
        skips.append(h)
    h = ResnetBlock(h.shape[-1], self.dropout, self.dtype)(h, emb, train)
    h = AttnBlock(self.dtype)(h)
    h = ResnetBlock(h.shape[-1], self.dropout, self.dtype)(h, emb, train)
    for level, mult in reversed(list(enumerate(self.ch_mult))):
      for _ in range(self.num_res_blocks + 1):
        h = ResnetBlock(self.ch * mult, self.dropout, self.dtype)(
            jnp.concatenate([h, skips.pop()], axis=-1), emb, train)
      if level != 0:
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)  # nearest neighbour x2
        h = _conv(h.shape[-1], (3, 3), dtype=self.dtype)(h)
    h = nn.swish(_group_norm(h.shape[-1], self.dtype)(h)).astype(self.dtype)
    out = _conv(self.channels, (3, 3), dtype=self.dtype, kernel_init=nn.initializers.zeros,
                  name="conv_out")(h)
    return out.astype(jnp.float32)
