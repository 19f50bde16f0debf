"""The time-conditioned U-Net of DDPM (Ho et al. 2020, appendix B), sized for MNIST on a CPU.

Follows the reference `diffusion_tf/models/unet.py` (hojonathanho/diffusion) in its parts:
a sinusoidal embedding of the timestep (`get_timestep_embedding`, the Transformer's) through
Dense(4C) - swish - Dense(4C); residual blocks GroupNorm - swish - 3x3 conv, plus a
projection of the embedding added as a per-channel bias, GroupNorm - swish - dropout -
3x3 conv, with a 1x1 projection on the skip path when the width changes; a middle block
res - self-attention - res at the lowest resolution; on the way up, every block reads the
matching down-path activation concatenated to its input; upsampling by nearest-neighbour
x2 and a 3x3 conv; the output conv initialised to zero (the reference's `init_scale=0.`).

Deviations, for a 28x28 one-channel data set on a 2-core CPU: configs/ddpm_mnist.py uses
`ch_mult=(1, 2, 2)` (28, 14 and 7 pixels; the middle block at 7) instead of CIFAR's
(1, 2, 2, 2), no attention in the resolution levels (the reference puts it at 16x16),
base width `ch` 32 instead of 128, GroupNorm with `min(32, C // 4)` groups (the
reference's 32 groups would be one channel each at width 32; written with matrix-product
sums, `GroupNorm`), and downsampling by 2x2 average pooling (the reference's
`resamp_with_conv=False` form): on XLA:CPU the input gradient of a stride-2 3x3 conv is a
slow dilated convolution (../shared/PERF_NOTES.md).

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

Array = jax.Array


def timestep_embedding(t: Array, dim: int) -> Array:
  """The reference's `get_timestep_embedding`: [sin(t w_i), cos(t w_i)] with
  w_i = 10000^(-i / (dim/2 - 1)), i < dim/2 (Vaswani et al. 2017, sec. 3.5). [N] -> [N, dim]."""
  half = dim // 2
  freqs = jnp.exp(-math.log(10_000) * jnp.arange(half, dtype=jnp.float32) / (half - 1))
  args = t.astype(jnp.float32)[:, None] * freqs[None]
  return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


def _group_sums(x: Array, groups: int) -> Array:
  """[N, H, W, C] -> [N, 1, 1, C]: the sum over H, W and the channels of each channel's
  group. Spatial sums as a matrix product (jaxgan.layers' `_spatial_sum` reason: XLA:CPU
  reduces over H, W with a narrow channel axis slowly; not benchmarked separately here)."""
  n, h, w, c = x.shape
  per_channel = jnp.einsum("m,nmc->nc", jnp.ones((h * w,), x.dtype), x.reshape(n, h * w, c))
  per_group = per_channel.reshape(n, groups, c // groups).sum(-1, keepdims=True)
  return jnp.broadcast_to(per_group, (n, groups, c // groups)).reshape(n, 1, 1, c)


class GroupNorm(nn.Module):
  """GroupNorm (Wu and He 2018) as `flax.linen.GroupNorm` (eps 1e-6, affine), computed in
  float32 whatever the compute dtype, with min(32, C // 4) groups."""
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    groups = min(32, max(1, c // 4))
    x = x.astype(jnp.float32)
    m = x.shape[1] * x.shape[2] * (c // groups)
    centred = x - _group_sums(x, groups) / m
    y = centred * jax.lax.rsqrt(_group_sums(jnp.square(centred), groups) / m + self.epsilon)
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
    h = nn.Conv(self.features, (3, 3), dtype=self.dtype, name="conv1")(h)
    h = h + nn.Dense(self.features, dtype=self.dtype, name="temb_proj")(
        nn.swish(emb).astype(self.dtype))[:, None, None, :]
    h = nn.swish(_group_norm(self.features, self.dtype)(h)).astype(self.dtype)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = nn.Conv(self.features, (3, 3), dtype=self.dtype, kernel_init=nn.initializers.zeros,
                name="conv2")(h)
    if x.shape[-1] != self.features:
      x = nn.Dense(self.features, dtype=self.dtype, name="nin_shortcut")(x)
    return x.astype(self.dtype) + h


class AttnBlock(nn.Module):
  """The reference's `attn_block`: single-head self-attention over the H x W positions."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    n, h, w, c = x.shape
    y = _group_norm(c, self.dtype)(x).astype(self.dtype)
    q, k, v = (nn.Dense(c, dtype=self.dtype, name=name)(y).reshape(n, h * w, c)
               for name in ("q", "k", "v"))
    weights = jax.nn.softmax(
        jnp.einsum("nic,njc->nij", q, k).astype(jnp.float32) * c ** -0.5, axis=-1)
    y = jnp.einsum("nij,njc->nic", weights.astype(self.dtype), v).reshape(n, h, w, c)
    return x + nn.Dense(c, dtype=self.dtype, kernel_init=nn.initializers.zeros,
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
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, t, labels=None, train: bool = False):
    temb_dim = 4 * self.ch
    emb = timestep_embedding(t, self.ch)
    emb = nn.Dense(temb_dim, name="temb_dense0")(emb)
    emb = nn.Dense(temb_dim, name="temb_dense1")(nn.swish(emb))
    if self.num_classes:
      # Row K is the null label of classifier-free guidance.
      labels = (jnp.full(x.shape[:1], self.num_classes, jnp.int32) if labels is None
                else labels.astype(jnp.int32))
      emb = emb + nn.Embed(self.num_classes + 1, temb_dim, name="label_emb")(labels)
    elif labels is not None:
      from jaxgan.config import ConfigError  # pylint: disable=import-outside-toplevel
      raise ConfigError("this diffusion model is unconditional (num_classes=0): it takes no label")

    h = nn.Conv(self.ch, (3, 3), dtype=self.dtype, name="conv_in")(x.astype(self.dtype))
    skips = [h]
    for level, mult in enumerate(self.ch_mult):
      for _ in range(self.num_res_blocks):
        h = ResnetBlock(self.ch * mult, self.dropout, self.dtype)(h, emb, train)
        skips.append(h)
      if level != len(self.ch_mult) - 1:
        h = nn.avg_pool(h, (2, 2), (2, 2))
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
        h = nn.Conv(h.shape[-1], (3, 3), dtype=self.dtype)(h)
    h = nn.swish(_group_norm(h.shape[-1], self.dtype)(h)).astype(self.dtype)
    out = nn.Conv(self.channels, (3, 3), dtype=self.dtype, kernel_init=nn.initializers.zeros,
                  name="conv_out")(h)
    return out.astype(jnp.float32)
