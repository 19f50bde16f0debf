"""Convolutions with PyTorch semantics, written to be fast on XLA:CPU, and DCGAN init.

PyTorch references (the DCGAN tutorial, junyanz/pytorch-CycleGAN-and-pix2pix) define
layers as `Conv2d(k, stride, padding)` and `ConvTranspose2d(k, stride, padding,
output_padding)`; the modules here take the same four numbers and compute the same
function, in NHWC. Kernels are stored HWIO in PyTorch's orientation (no flip):
`conv` kernel[h, w, i, o] == torch_conv.weight[o, i, h, w] and `conv_transpose`
kernel[h, w, i, o] == torch_convT.weight[i, o, h, w], so parameter counts and weight
ports match the references one to one.

Why not `flax.linen.ConvTranspose`: on XLA:CPU the weight gradient of a stride-2
transposed convolution is pathologically slow (about 10 s for one DCGAN-64 layer at
batch 128; ../shared/PERF_NOTES.md). A stride-s transposed convolution is s*s
stride-1 convolutions, one per output phase (the sub-pixel view, Shi et al. 2016);
`conv_transpose` computes all phases as ONE stride-1 convolution with s*s*C_out
output channels followed by a depth-to-space interleave, so no direction of it
(forward, input gradient, weight gradient) is a dilated or strided convolution.
Likewise a stride-s convolution whose kernel size is a multiple of s is a stride-1
convolution on a space-to-depth input, which keeps its input gradient from becoming
a dilated convolution. `tests/layers_test.py` pins both against direct references.

Mixed precision (`config.dtype`): every layer here computes in its `dtype` (None: the
dtype of its input), with its parameters stored in float32 and cast at use, as Flax's own
layers do with `dtype` and `param_dtype`; the gradients reaching the parameters are
float32 again (the transpose of the cast). Sums over the batch stay float32 whatever the
compute dtype: the weight gradients of `conv_transpose`'s sub-pixel form accumulate in
float32, and the normalisation layers compute their statistics and their whole
normalisation in float32 and only hand back the compute dtype (as `flax.linen.BatchNorm`
keeps its statistics in float32 under `dtype=bfloat16`). The kernel-bound matrix forms
(`kernel_bound`) return their products, weight gradients included, in the compute dtype;
they sum over at most min(C_in, C_out) / 2 positions.
"""

import functools
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan.config import ConfigError

Array = jax.Array
Initializer = Callable[..., Array]

# DCGAN (Radford et al. 2015, sec. 4): "All weights were initialized from a zero-centered
# Normal distribution with standard deviation 0.02"; the tutorial and junyanz's
# init_weights('normal') also draw BatchNorm scales from N(1, 0.02).
dcgan_kernel_init = nn.initializers.normal(stddev=0.02)


def dcgan_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def init_weights(shapes, key: Array, gain: float = 0.02):
  """junyanz's `init_weights(net, 'normal', gain)` on a parameter tree (shapes, e.g. from
  `jax.eval_shape(module.init, ...)["params"]`): every `kernel` N(0, gain), every BatchNorm
  `scale` N(1, gain), every `bias` 0. The distribution `dcgan_kernel_init` and
  `dcgan_scale_init` give module by module, drawn here in ONE call: XLA:CPU compiles each
  threefry draw separately, so a net's flax init compiles about 10x slower (8.5 s against
  0.85 s for resnet_9blocks)."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
  flat = jax.random.normal(key, (sum(leaf.size for _, leaf in leaves),), jnp.float32)
  values, start = [], 0
  for path, leaf in leaves:
    name = getattr(path[-1], "key", "")
    draw = flat[start:start + leaf.size].reshape(leaf.shape).astype(leaf.dtype)
    start += leaf.size
    if name == "kernel":
      values.append(gain * draw)
    elif name == "scale":
      values.append(1.0 + gain * draw)
    elif name == "bias":
      values.append(jnp.zeros(leaf.shape, leaf.dtype))
    else:
      raise ValueError(f"init_weights: no rule for parameter {jax.tree_util.keystr(path)}")
  return jax.tree_util.tree_unflatten(treedef, values)


_DIMS = ("NHWC", "HWIO", "NHWC")


def space_to_depth(x: Array, s: int) -> Array:
  """[N, H, W, C] -> [N, H/s, W/s, s*s*C], channels ordered (row phase, col phase, C)."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // s, s, w // s, s, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h // s, w // s, s * s * c)


def kernel_bound(positions: int, in_channels: int, out_channels: int) -> bool:
  """Whether a layer applied at `positions` pixels (batch x map) is cheaper as matrix
  products on its kernel as stored (`_conv_dots`, `_conv_transpose_dots`).

  The space-to-depth and sub-pixel forms below move the kernel into a phase view in every
  direction. That is cheap for DCGAN's batch 128 but not for pix2pix's U-Net at batch 1,
  whose inner levels hold 4x4x1024x512 kernels against maps of 1x1 to 8x8: there, two
  thirds of a unet_128 step's op time was copies of kernels (and optimizer passes over
  gradients left transposed), 6% convolutions (benchmarks/profile_step.py). The matrix
  forms copy activations instead (k*k of them, im2col), so they win where the activations
  are the smaller: 2 * positions <= min(C_in, C_out), a factor within 3% of the best of
  0.25, 0.5, 1 and 2 on both whole pix2pix steps (benchmarks/step_variants.py).
  """
  return 2 * positions <= min(in_channels, out_channels)


def _taps(x: Array, k: int, s: int, out_h: int, out_w: int) -> Array:
  """[N, H, W, C] (padded) -> [N, out_h, out_w, k*k*C]: pixel (i, j) holds x[s*i + a,
  s*j + b] for every tap (a, b), ordered (a, b, C) as an HWIO kernel's rows."""
  taps = [x[:, a:a + s * (out_h - 1) + 1:s, b:b + s * (out_w - 1) + 1:s]
          for a in range(k) for b in range(k)]
  n, c = x.shape[0], x.shape[-1]
  return jnp.stack(taps, axis=3).reshape(n, out_h, out_w, k * k * c)


def conv_output_size(size: int, k: int, stride: int, padding: int) -> int:
  """PyTorch's Conv2d output size (dilation 1)."""
  return (size + 2 * padding - k) // stride + 1


def _conv_dots(x: Array, kernel: Array, stride: int, padding: int) -> Array:
  """`conv` as one matrix product with the kernel as stored (HWIO is [k*k*C_in, C_out]
  row-major): im2col of x, then [N*H'*W', k*k*C_in] @ [k*k*C_in, C_out]. Autodiff gives
  the input gradient as (dy @ kernel^T) summed back into place, and the weight gradient
  as patches^T @ dy, in the kernel's own layout."""
  k, s, p = kernel.shape[0], stride, padding
  out_h, out_w = (conv_output_size(n, k, s, p) for n in x.shape[1:3])
  x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  return _taps(x, k, s, out_h, out_w) @ kernel.reshape(-1, kernel.shape[-1])


def conv(x: Array, kernel: Array, stride: int = 1, padding: int = 0) -> Array:
  """PyTorch `Conv2d(k, stride, padding)` (zero padding) in NHWC/HWIO."""
  k = kernel.shape[0]
  out_h, out_w = (conv_output_size(n, k, stride, padding) for n in x.shape[1:3])
  if kernel_bound(x.shape[0] * out_h * out_w, *kernel.shape[2:]):
    return _conv_dots(x, kernel, stride, padding)
  if stride == 1:
    if min(kernel.shape[2:]) <= NARROW and padding < k - 1:  # not 1x1; dy's pad >= 0
      return _conv_narrow(x, kernel, padding)
    return _conv_xla(x, kernel, stride, padding)
  k_up = -(-k // stride) * stride  # the kernel zero-padded by `_conv_strided`'s gradients
  if all(conv_output_size(n, k_up, stride, padding) == o
         for n, o in zip(x.shape[1:3], (out_h, out_w))):
    return _conv_strided(x, kernel, stride, padding)
  return _conv_xla(x, kernel, stride, padding)


def _conv_xla(x: Array, kernel: Array, stride: int, padding) -> Array:
  """XLA's own convolution; padding an int (every side) or lax's spec ("VALID", pairs)."""
  if isinstance(padding, int):
    padding = [(padding, padding)] * 2
  return lax.conv_general_dilated(x, kernel, (stride, stride), padding, dimension_numbers=_DIMS)


# Channels from which a side of a stride-1 convolution counts as narrow (`_conv_narrow`):
# an image's 3 or a PatchGAN's 1 logit, not 64.
NARROW = 4


def _shifted_taps_sum(x: Array, kernel: Array) -> Array:
  """The VALID stride-1 convolution of x with a kernel of few output channels: every
  pixel's product with all k*k taps' [C_in, C_out] slices at once (one wide matrix
  product, [P, C_in] @ [C_in, k*k*C_out]), then each output the sum of its k*k shifted
  taps (rows first, then columns). XLA's convolution with 3 outputs runs a 3-wide
  product: CycleGAN's 7x7 64 -> 3 layer at 256x256, forward 26.2 ms; this 10.2, PyTorch
  14.8 (benchmarks/layer_directions.py)."""
  k, _, cin, cout = kernel.shape
  n, h, w, _ = x.shape
  out_h, out_w = h - k + 1, w - k + 1
  z = jnp.matmul(x.reshape(-1, cin), kernel.transpose(2, 0, 1, 3).reshape(cin, k * k * cout),
                 preferred_element_type=_accumulator(x.dtype))  # the sums below in float32
  z = z.reshape(n, h, w, k, k * cout)
  rows = sum(z[:, a:a + out_h, :, a] for a in range(k)).reshape(n, out_h, w, k, cout)
  return sum(rows[:, :, b:b + out_w, b] for b in range(k)).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_narrow(x: Array, kernel: Array, padding: int) -> Array:
  """A stride-1 convolution with few input or output channels (`NARROW`: CycleGAN's 7x7
  first and last layers, a PatchGAN's 1-logit last layer). Whichever direction produces
  the narrow side, the forward where C_out is narrow and the input gradient where C_in is,
  is `_shifted_taps_sum` (the input gradient as the convolution of dy, zero-padded by
  k - 1 - padding, with the flipped, transposed kernel); the rest are XLA's. The weight
  gradient is one product against dy's shifted copies (`_narrow_weight_grad`) where
  those are no larger than x: a PatchGAN's 4x4 512 -> 1 layer at 31x31, 0.22 ms against
  XLA's 5.29 (benchmarks/layer_directions.py); on CycleGAN's 7x7 64 -> 3 layer building
  them made it slower (a scratch timing), so XLA's. In the step, CycleGAN-256 5.95 s
  against 6.19 with XLA's, pix2pix 256 0.433 against 0.454 (benchmarks/step_variants.py
  `xla_narrow`)."""
  return _conv_narrow_fwd(x, kernel, padding)[0]


def _conv_narrow_fwd(x, kernel, padding):
  if kernel.shape[3] <= NARROW:
    y = _shifted_taps_sum(jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0))),
                          kernel)
  else:
    y = _conv_xla(x, kernel, 1, padding)
  return y, (x, kernel)


def _narrow_weight_grad(x: Array, dy: Array, k: int) -> Array:
  """dW[a, b] = sum over pixels q of x[q + (a, b)] (outer) dy[q], x VALID-padded: one
  product [k*k*C_out, P] @ [P, C_in] of dy's k*k shifted copies (each a zero-padded
  plane per channel) against x as stored."""
  n, h, w, cin = x.shape
  _, out_h, out_w, cout = dy.shape
  planes = dy.transpose(3, 0, 1, 2)  # [C_out, N, H', W']: each copy is a pad of these
  shifted = jnp.stack([jnp.pad(planes, ((0, 0), (0, 0), (a, h - out_h - a), (b, w - out_w - b)))
                       for a in range(k) for b in range(k)])  # [k*k, C_out, N, H, W]
  g = jnp.matmul(shifted.reshape(k * k * cout, -1), x.reshape(-1, cin),
                 preferred_element_type=_accumulator(x.dtype))
  return g.reshape(k, k, cout, cin).transpose(0, 1, 3, 2).astype(x.dtype)


def _conv_narrow_bwd(padding, residuals, dy):
  x, kernel = residuals
  k, _, cin, cout = kernel.shape
  if k * k * cout <= cin:  # dy's shifted copies no larger than x (a PatchGAN's last layer)
    x_padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    dw = _narrow_weight_grad(x_padded, dy, k)
  else:
    _, dw_vjp = jax.vjp(lambda w: _conv_xla(x, w, 1, padding), kernel)
    dw = dw_vjp(dy)[0]
  if kernel.shape[2] <= NARROW:
    edge = k - 1 - padding
    dy_padded = jnp.pad(dy, ((0, 0), (edge, edge), (edge, edge), (0, 0)))
    dx = _shifted_taps_sum(dy_padded, kernel[::-1, ::-1].transpose(0, 1, 3, 2))
  else:
    _, dx_vjp = jax.vjp(lambda x: _conv_xla(x, kernel, 1, padding), x)
    dx = dx_vjp(dy)[0]
  return dx, dw


_conv_narrow.defvjp(_conv_narrow_fwd, _conv_narrow_bwd)


# The batch from which XLA's own weight gradient of a strided convolution beats the
# space-to-depth form's (`_conv_strided`): 8 and more at pix2pix's and DCGAN-64's layers,
# 1 to 4 not (scratch timings of each direction; the step figures are in its docstring).
BATCHED_WEIGHT_GRAD = 8


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_strided(x: Array, kernel: Array, stride: int, padding: int) -> Array:
  """A strided convolution, each direction in the form XLA:CPU runs fastest.

  - Forward: XLA's strided convolution (about 370 GFLOP/s on a DCGAN-64 layer against
    220 for the stride-1 convolution of the space-to-depth form).
  - Input gradient: from the space-to-depth form (`_conv_space_to_depth`), with the
    kernel zero-padded to a multiple of the stride (CycleGAN's 3x3 stride-2 layers): a
    stride-1 convolution, where XLA's own is a dilated one (2.5x slower on a DCGAN-64 layer).
  - Weight gradient: XLA's, which contracts over the batch, from a batch of
    `BATCHED_WEIGHT_GRAD`; the space-to-depth form's below it (pix2pix's and CycleGAN's
    batch of 1, where XLA's is 2-3x slower).
  Per layer and direction: benchmarks/layer_directions.py.

  `conv` takes this path where the padded kernel keeps the output's size (padding x as
  well to keep it made DCGAN MNIST's step slower in a scratch run). A DCGAN-64 step 1.095 s
  against 1.172 with the space-to-depth form in every direction (before) and 1.321 with
  XLA's gradients; batch-1 steps unchanged (benchmarks/step_variants.py
  `space_to_depth_strided`, `xla_strided_grads`; README).
  """
  return _conv_xla(x, kernel, stride, padding)


def _conv_strided_fwd(x, kernel, stride, padding):
  return _conv_xla(x, kernel, stride, padding), (x, kernel)


def _conv_strided_bwd(stride, padding, residuals, dy):
  x, kernel = residuals
  k = kernel.shape[0]
  extra = -(-k // stride) * stride - k
  padded = jnp.pad(kernel, ((0, extra), (0, extra), (0, 0), (0, 0)))  # zero taps at the end
  if x.shape[0] >= BATCHED_WEIGHT_GRAD:
    _, dx_vjp = jax.vjp(lambda x: _conv_space_to_depth(x, padded, stride, padding), x)
    _, dw_vjp = jax.vjp(lambda w: _conv_xla(x, w, stride, padding), kernel)
    return dx_vjp(dy)[0], dw_vjp(dy)[0]
  _, vjp = jax.vjp(lambda x, w: _conv_space_to_depth(x, w, stride, padding), x, padded)
  dx, dw = vjp(dy)
  return dx, dw[:k, :k]


_conv_strided.defvjp(_conv_strided_fwd, _conv_strided_bwd)


def _conv_space_to_depth(x: Array, kernel: Array, stride: int, padding: int) -> Array:
  """A stride-s conv whose kernel side is a multiple of s, as the stride-1 conv it is on
  a space-to-depth input: its input gradient is then no dilated convolution either.
  `_conv_strided` takes its gradients from here (its forward was slower than XLA's)."""
  k, s = kernel.shape[0], stride
  _, h, w, cin = x.shape
  out_h, out_w = conv_output_size(h, k, s, padding), conv_output_size(w, k, s, padding)
  # Pad so both sides are multiples of s; the extra zero rows only feed outputs we crop.
  ph, pw = (-(h + 2 * padding)) % s, (-(w + 2 * padding)) % s
  x = jnp.pad(x, ((0, 0), (padding, padding + ph), (padding, padding + pw), (0, 0)))
  kernel = kernel.reshape(k // s, s, k // s, s, cin, -1).transpose(0, 2, 1, 3, 4, 5)
  kernel = kernel.reshape(k // s, k // s, s * s * cin, -1)
  y = _conv_xla(space_to_depth(x, s), kernel, 1, "VALID")
  return y[:, :out_h, :out_w]


def conv_transpose_output_size(size: int, k: int, stride: int, padding: int,
                               output_padding: int = 0) -> int:
  """PyTorch's ConvTranspose2d output size (dilation 1)."""
  return (size - 1) * stride - 2 * padding + k + output_padding


def _phase_taps(k: int, s: int, p: int):
  """For each output phase r: its first input offset a_r and its kernel taps.

  Output o = s*q + r of a transposed conv gathers x[i] * w[t] over o = s*i - p + t.
  With m = ceil(k/s) taps per phase, tap j of phase r reads x[q + a_r + j] with
  kernel index taps[r][j] (-1 where the phase has fewer than m taps: a zero weight).
  """
  m = math.ceil(k / s)
  offsets, taps = [], []
  for r in range(s):
    c, d = divmod(r + p, s)
    offsets.append(c - m + 1)
    taps.append([t if (t := d + s * (m - 1 - j)) < k else -1 for j in range(m)])
  return m, offsets, np.array(taps)


# Output columns from which one matrix product per kernel tap beats the taps side by side
# (`_weight_grad`: 64 and more at every measured layer, 3 not).
WIDE_PRODUCT = 64


def _accumulator(dtype):
  """The dtype sums over a batch are kept in: float32 for bfloat16 (and float16)
  operands, the operands' own dtype when wider."""
  return jnp.promote_types(dtype, jnp.float32)


def _weight_grad(big: Array, small: Array, k: int, s: int) -> Array:
  """G[t_h, t_w] = sum over n, i, j of small[n, i, j] (outer) big[n, s*i + t_h, s*j + t_w].

  The weight gradient of a strided transposed convolution has this form (`small` its
  input, `big` its output gradient, zero-padded so every index exists). XLA:CPU computes
  it slowly as a convolution; here each tap's strided view of `big` is one matrix product
  contracting over batch and space, [C_small, N*H*W] @ [N*H*W, C_big], and where C_big is
  narrow (an image's channels: a product 3 wide runs badly) the k*k views are side by side
  in one product. The result is [k, k, C_small, C_big], the kernel's own layout: a
  gradient in another orientation makes every optimizer pass over it read across strides
  (5-10x slower on a 4x4x1024x512 kernel). Faster alone than `big` cut into s x s
  phases with one product per kernel shift (the form before; `python
  benchmarks/alternatives.py weight_grad`), though whole steps differ by no more than
  their noise (+-2%, benchmarks/step_variants.py `phases_weight_grad`). (The phase form
  for a strided convolution's weight gradient, in place of `_conv_strided`'s, made a
  DCGAN-64 step 12% slower: `strided_weight_grad`.)
  """
  n, h, w, c_small = small.shape
  c_big = big.shape[-1]
  need_h, need_w = s * (h - 1) + k, s * (w - 1) + k
  big = jnp.pad(big, ((0, 0), (0, max(0, need_h - big.shape[1])),
                      (0, max(0, need_w - big.shape[2])), (0, 0)))
  views = [big[:, a:a + s * (h - 1) + 1:s, b:b + s * (w - 1) + 1:s].reshape(n * h * w, c_big)
           for a in range(k) for b in range(k)]
  rows = small.reshape(n * h * w, c_small)

  def product(columns):  # sums over batch and space, float32 for bfloat16 operands
    return lax.dot_general(rows, columns, (((0,), (0,)), ((), ())),
                           preferred_element_type=_accumulator(small.dtype))

  if c_big >= WIDE_PRODUCT:
    g = jnp.stack([product(v) for v in views])  # [k*k, C_small, C_big]
  else:
    g = product(jnp.concatenate(views, axis=1)).reshape(c_small, k * k, c_big).transpose(1, 0, 2)
  return g.reshape(k, k, c_small, c_big).astype(small.dtype)


# How many times the outputs a phase needs the one convolution of every phase may compute
# before each phase gets its own (`_conv_transpose_subpixel`). The phases' first inputs
# differ by one (DCGAN's 4x4 and CycleGAN's 3x3 stride-2 kernels), so the one convolution
# computes (q + 1)^2 outputs per phase for q^2: 1.56x on DCGAN-64's 4x4 input map, 1.27x
# on its 8x8 one, where the phase-per-convolution forward was 34% and 9% faster (scratch
# timings); from 16x16 (1.13x) the two were even, and the one convolution wins narrow
# outputs (DCGAN-64's last layer: 6 ms against 32 in four 3-channel convolutions). Whole
# steps: pix2pix 256 0.433 s against 0.464 with one convolution everywhere, DCGAN MNIST
# 0.142 against 0.148 (benchmarks/step_variants.py `one_subpixel_conv`).
UNION_WASTE = 1.2


def _conv_transpose_subpixel(x: Array, kernel: Array, stride: int, padding: int,
                             output_padding: int) -> Array:
  """The forward pass: every output phase from one stride-1 convolution, or on small
  maps (`UNION_WASTE`) each phase from its own."""
  k, s, p, op = kernel.shape[0], stride, padding, output_padding
  n, h, w, cin = x.shape
  cout = kernel.shape[-1]
  out_h = conv_transpose_output_size(h, k, s, p, op)
  out_w = conv_transpose_output_size(w, k, s, p, op)
  if h == w == 1:
    # A 1x1 input (DCGAN's projection of z) is a matrix product: y[o] = x * w[o + p].
    kernel = jnp.pad(kernel, ((0, op), (0, op), (0, 0), (0, 0)))[p:p + out_h, p:p + out_w]
    return jnp.einsum("nc,hwco->nhwo", x[:, 0, 0], kernel)
  if s == 1:
    pad = [(k - 1 - p, k - 1 - p + op)] * 2
    return _conv_xla(x, kernel[::-1, ::-1], 1, pad)

  m, offsets, taps = _phase_taps(k, s, p)
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index -1 -> the zero row
  lo, hi = min(offsets), max(offsets)
  q_h, q_w = -(-out_h // s), -(-out_w // s)
  if (q_h + hi - lo) * (q_w + hi - lo) > UNION_WASTE * q_h * q_w:
    # Small maps: each phase its own convolution over exactly its q x q outputs.
    y = jnp.stack([jnp.stack([
        _conv_xla(x, padded[taps[i][:, None], taps[j][None, :]], 1,
                  [(-a, q_h + a + m - 1 - h), (-b, q_w + b + m - 1 - w)])
        for j, b in enumerate(offsets)], axis=3) for i, a in enumerate(offsets)], axis=3)
  else:
    # Phase kernel: [m, m, cin, s, s, cout]; taps beyond the kernel are zero weights.
    phase_kernel = padded[taps[:, :, None, None], taps[None, None, :, :]]  # [s, m, s, m, i, o]
    phase_kernel = phase_kernel.transpose(1, 3, 4, 0, 2, 5).reshape(m, m, cin, s * s * cout)
    # z[u] = sum_j x[u + lo + j] * phase_kernel[j] for u in [0, q + hi - lo).
    pad = [(-lo, q_h + hi - lo + m - 1 - h + lo), (-lo, q_w + hi - lo + m - 1 - w + lo)]
    z = _conv_xla(x, phase_kernel, 1, pad).reshape(n, q_h + hi - lo, q_w + hi - lo, s, s, cout)
    if lo == hi:
      y = z
    else:
      rows = [[z[:, a - lo:a - lo + q_h, b - lo:b - lo + q_w, i, j]
               for j, b in enumerate(offsets)] for i, a in enumerate(offsets)]
      y = jnp.stack([jnp.stack(r, axis=3) for r in rows], axis=3)  # [n, q_h, q_w, s, s, c]
  y = y.transpose(0, 1, 3, 2, 4, 5).reshape(n, q_h * s, q_w * s, cout)
  return y[:, :out_h, :out_w]


def conv_transpose(x: Array, kernel: Array, stride: int, padding: int = 0,
                   output_padding: int = 0) -> Array:
  """PyTorch `ConvTranspose2d(k, stride, padding, output_padding)` in NHWC/HWIO: matrix
  products on the kernel as stored where it outweighs the activations (`kernel_bound`),
  else the sub-pixel form with its own gradients (`_conv_transpose_phases`)."""
  n, h, w, _ = x.shape
  if kernel_bound(n * h * w, *kernel.shape[2:]):
    return _conv_transpose_dots(x, kernel, stride, padding, output_padding)
  return _conv_transpose_phases(x, kernel, stride, padding, output_padding)


def _conv_transpose_dots(x: Array, kernel: Array, stride: int, padding: int,
                         output_padding: int) -> Array:
  """Each input pixel times each tap's [C_in, C_out] slice of the kernel (one batched
  product over the k*k taps, the kernel read as stored), each tap's products added at
  s*i - p + (a, b). Autodiff gives the input gradient as a batched product with the
  kernel's slices and the weight gradient as x^T @ (dy at each tap), in the kernel's own
  layout."""
  k, s, p, op = kernel.shape[0], stride, padding, output_padding
  n, h, w, cin = x.shape
  cout = kernel.shape[-1]
  rows = jnp.broadcast_to(x.reshape(1, n * h * w, cin), (k * k, n * h * w, cin))
  taps = lax.dot_general(rows, kernel.reshape(k * k, cin, cout), (((2,), (1,)), ((0,), (0,))))
  taps = taps.reshape(k, k, n, h, w, cout)
  # Tap (a, b) of pixel (i, j) lands at (s*i + a, s*j + b) of the full map, whose first p
  # rows and columns the output crops; output_padding adds zero rows at the far end.
  full_h, full_w = (h - 1) * s + k + op, (w - 1) * s + k + op
  y = sum(lax.pad(taps[a, b], jnp.zeros((), x.dtype),
                  ((0, 0, 0), (a, full_h - a - (h - 1) * s - 1, s - 1),
                   (b, full_w - b - (w - 1) * s - 1, s - 1), (0, 0, 0)))
          for a in range(k) for b in range(k))
  return y[:, p:p + conv_transpose_output_size(h, k, s, p, op),
           p:p + conv_transpose_output_size(w, k, s, p, op)]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_transpose_phases(x: Array, kernel: Array, stride: int, padding: int = 0,
                           output_padding: int = 0) -> Array:
  """`conv_transpose` where the activations outweigh the kernel (DCGAN at batch 128).

  Forward, input gradient and weight gradient are three views of one linear map, so each
  uses the kernel XLA:CPU runs fastest: the sub-pixel forward; the input gradient as the
  stride-s convolution it is (PyTorch's `conv2d(dy, w, stride, padding)`); the weight
  gradient as matrix products (`_weight_grad`).
  """
  return _conv_transpose_subpixel(x, kernel, stride, padding, output_padding)


def _conv_transpose_fwd(x, kernel, stride, padding, output_padding):
  return _conv_transpose_phases(x, kernel, stride, padding, output_padding), (x, kernel)


def _conv_transpose_bwd(stride, padding, output_padding, residuals, dy):
  del output_padding  # only extends dy, whose extra rows the stride-s conv never reads
  x, kernel = residuals
  k = kernel.shape[0]
  dx = conv(dy, kernel.transpose(0, 1, 3, 2), stride, padding)
  # dW[t] = sum_i x[i] (outer) dy[s*i - p + t]: dy shifted right by p is the `big` operand.
  dy_shifted = jnp.pad(dy, ((0, 0), (padding, 0), (padding, 0), (0, 0)))
  if x.shape[1] == x.shape[2] == 1:  # the 1x1 projection of z: one outer product
    extra = max(0, k - dy_shifted.shape[1])
    dy_shifted = jnp.pad(dy_shifted, ((0, 0), (0, extra), (0, extra), (0, 0)))[:, :k, :k]
    dw = jnp.einsum("nc,nhwo->hwco", x[:, 0, 0], dy_shifted,
                    preferred_element_type=_accumulator(x.dtype))
    return dx, dw.astype(kernel.dtype)
  dw = _weight_grad(dy_shifted, x, k, stride)
  return dx, dw.astype(kernel.dtype)


_conv_transpose_phases.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)




def conv_transpose_reference(x: Array, kernel: Array, stride: int, padding: int = 0,
                             output_padding: int = 0) -> Array:
  """The textbook form (input dilation + flipped kernel), for tests and benchmarks."""
  k, p = kernel.shape[0], padding
  pad = [(k - 1 - p, k - 1 - p + output_padding)] * 2
  return lax.conv_general_dilated(x, kernel[::-1, ::-1], (1, 1), pad,
                                  lhs_dilation=(stride, stride), dimension_numbers=_DIMS)


class Dense(nn.Module):
  """PyTorch `nn.Linear(in, features)` with its default initialisation.

  PyTorch draws both the weight (kaiming_uniform with a=sqrt(5)) and the bias from
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)); references that never re-initialise their linear
  layers (eriklindernoren/PyTorch-GAN's gan.py and cgan.py) train from that. A
  `kernel_init` replaces the kernel's draw (DCGAN's N(0, 0.02): `dcgan_kernel_init`), and
  `use_bias=False` drops the bias (a layer feeding a BatchNorm).
  """
  features: int
  use_bias: bool = True
  kernel_init: Initializer | None = None  # None: PyTorch's default
  dtype: Any = None  # of the computation (None: the input's); parameters are float32

  @nn.compact
  def __call__(self, x):
    bound = 1.0 / math.sqrt(x.shape[-1])
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound,
                                                                         bound)
    kernel = self.param("kernel", self.kernel_init or uniform, (x.shape[-1], self.features))
    x = x.astype(self.dtype or x.dtype)
    y = x @ kernel.astype(x.dtype)
    if self.use_bias:
      y = add_bias(y, self.param("bias", uniform, (self.features,)).astype(x.dtype))
    return y


class Conv(nn.Module):
  """PyTorch `Conv2d(in, features, kernel_size, strides, padding, bias=use_bias)`."""
  features: int
  kernel_size: int
  strides: int = 1
  padding: int = 0
  use_bias: bool = True
  kernel_init: Initializer = dcgan_kernel_init
  bias_init: Initializer = nn.initializers.zeros
  dtype: Any = None  # of the computation (None: the input's); parameters are float32

  def apply_kernel(self, x, kernel):
    return conv(x, kernel, self.strides, self.padding)

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", self.kernel_init,
                        (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
    x = x.astype(self.dtype or x.dtype)
    y = self.apply_kernel(x, kernel.astype(x.dtype))
    if self.use_bias:
      y = add_bias(y, self.param("bias", self.bias_init, (self.features,)).astype(x.dtype))
    return y


class ConvTranspose(Conv):
  """PyTorch `ConvTranspose2d(in, features, kernel_size, strides, padding, output_padding)`."""
  output_padding: int = 0

  def apply_kernel(self, x, kernel):
    return conv_transpose(x, kernel, self.strides, self.padding, self.output_padding)


def _channel_sum(x: Array) -> Array:
  """Per-channel sum over every other axis, as a matrix-vector product.

  XLA:CPU lowers `x.sum((0, 1, 2))` with a narrow channel axis to a slow two-stage
  reduce-window; ones[M] @ x[M, C] runs as a GEMV, 3-14x faster at DCGAN shapes
  (benchmarks/batch_norm.py). The batch stays the leading factor of M, so a
  batch-sharded x needs no reshard.
  """
  c = x.shape[-1]
  return jnp.ones((x.size // c,), x.dtype) @ x.reshape(-1, c)


@jax.custom_vjp
def add_bias(y: Array, bias: Array) -> Array:
  """y + bias over the last axis, whose gradient, the channel sum of dy, is `_channel_sum`
  (`_channel_sum`'s reason): with autodiff's reduction over (N, H, W) instead, a
  CycleGAN-64 step is 5% slower (benchmarks/step_variants.py `autodiff_bias`)."""
  return y + bias


def _add_bias_fwd(y, bias):
  return y + bias, None


def _add_bias_bwd(_, dy):
  return dy, _channel_sum(dy.astype(_accumulator(dy.dtype))).astype(dy.dtype)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


@jax.custom_vjp
def _batch_norm_train(x: Array, scale: Array, bias: Array, eps: float):
  """y = (x - mean) / sqrt(var + eps) * scale + bias with batch statistics; -> (y, mean, var)."""
  m = x.size // x.shape[-1]
  mean = _channel_sum(x) / m
  var = jnp.maximum(_channel_sum(jnp.square(x)) / m - jnp.square(mean), 0.0)
  inv = lax.rsqrt(var + eps)
  return (x - mean) * (inv * scale) + bias, mean, var


def _batch_norm_fwd(x, scale, bias, eps):
  y, mean, var = _batch_norm_train(x, scale, bias, eps)
  return (y, mean, var), (x, mean, lax.rsqrt(var + eps), scale)


def _batch_norm_bwd(residuals, cotangents):
  # Statistics are not differentiated through separately: gradients reach them only via y.
  x, mean, inv, scale = residuals
  dy = cotangents[0]
  m = x.size // x.shape[-1]
  x_hat = (x - mean) * inv
  d_bias = _channel_sum(dy)
  d_scale = _channel_sum(dy * x_hat)
  dx = (scale * inv / m) * (m * dy - d_bias - x_hat * d_scale)
  return dx, d_scale, d_bias, None


_batch_norm_train.defvjp(_batch_norm_fwd, _batch_norm_bwd)


class BatchNorm(nn.Module):
  """`torch.nn.BatchNorm2d` with its defaults (momentum 0.1, eps 1e-5), in NHWC.

  Same variables as `flax.linen.BatchNorm` (params scale/bias, batch_stats mean/var);
  differs from it where PyTorch does: the running variance takes the UNBIASED batch
  variance (x m/(m-1)), as torch does. The backward pass is written in closed form
  (a `custom_vjp`) and the channel sums are matrix-vector products (`_channel_sum`):
  forward+backward 1.7-8x faster than `flax.linen.BatchNorm` on XLA:CPU at DCGAN
  shapes (benchmarks/batch_norm.py). (Folding space into a wide reduced axis, reported
  faster in ../shared/PERF_NOTES.md, was slower here with the CPU flag set.) Scale
  starts from N(1, 0.02) (DCGAN init). Under `jit` on a `Mesh` with the batch sharded,
  the statistics are reductions over the global batch. Whatever the compute `dtype`, the
  normalisation runs in float32 (statistics, running averages, scale and shift) and only
  its output is cast to `dtype`.
  """
  train: bool = True
  momentum: float = 0.1  # PyTorch's convention: running = (1 - momentum) * running + momentum * batch
  epsilon: float = 1e-5
  scale_init: Initializer = dcgan_scale_init
  dtype: Any = None  # of the output (None: the input's)

  @nn.compact
  def __call__(self, x):
    dtype = self.dtype or x.dtype
    x = x.astype(_accumulator(x.dtype))  # bfloat16 sums lose digits
    c = x.shape[-1]
    scale = self.param("scale", self.scale_init, (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
    if not self.train:
      inv = lax.rsqrt(ra_var.value + self.epsilon) * scale
      return ((x - ra_mean.value) * inv + bias).astype(dtype)
    y, mean, var = _batch_norm_train(x, scale, bias, self.epsilon)
    if not self.is_initializing():
      m = x.size // c
      ra_mean.value = (1 - self.momentum) * ra_mean.value + self.momentum * mean
      ra_var.value = (1 - self.momentum) * ra_var.value + self.momentum * var * m / max(m - 1, 1)
    return y.astype(dtype)


def _spatial_sum(x: Array) -> Array:
  """[N, H, W, C] -> [N, 1, 1, C]: each image's per-channel sum, as a batched
  matrix-vector product (`_channel_sum`'s reason: XLA:CPU's reduction over H, W with a
  narrow channel axis is slow)."""
  n, h, w, c = x.shape
  return jnp.einsum("m,nmc->nc", jnp.ones((h * w,), x.dtype),
                    x.reshape(n, h * w, c)).reshape(n, 1, 1, c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def instance_norm(x: Array, eps: float = 1e-5) -> Array:
  """(x - mean) / sqrt(var + eps) per image and channel over H x W, biased variance."""
  return _instance_norm_fwd(x, eps)[0]


def _instance_norm_fwd(x, eps):
  m = x.shape[1] * x.shape[2]
  centred = x - _spatial_sum(x) / m
  inv = lax.rsqrt(_spatial_sum(jnp.square(centred)) / m + eps)  # two passes: no cancellation
  y = centred * inv
  return y, (y, inv)


def _instance_norm_bwd(eps, residuals, dy):
  # The closed form of BatchNorm's backward pass (`_batch_norm_bwd`), per image.
  del eps
  y, inv = residuals
  m = y.shape[1] * y.shape[2]
  return ((inv / m) * (m * dy - _spatial_sum(dy) - y * _spatial_sum(dy * y)),)


instance_norm.defvjp(_instance_norm_fwd, _instance_norm_bwd)


class InstanceNorm(nn.Module):
  """`torch.nn.InstanceNorm2d` as pix2pix/CycleGAN use it: no affine parameters, no
  running statistics, eps 1e-5; each image and channel is normalised over its own H x W
  with the biased variance (Ulyanov et al. 2016). Sums as matrix products and the backward
  pass in closed form (`instance_norm`): forward+backward 2-9x faster than the plain
  `jnp.mean` form on XLA:CPU at CycleGAN's shapes (1x16x16x64 to 1x256x256x64). In float32
  whatever the compute `dtype`, as BatchNorm."""
  epsilon: float = 1e-5
  dtype: Any = None  # of the output (None: the input's)

  @nn.compact
  def __call__(self, x):
    dtype = self.dtype or x.dtype
    return instance_norm(x.astype(_accumulator(x.dtype)), self.epsilon).astype(dtype)


NORMS = ("batch", "instance")


def norm_layer(kind: str, train: bool, name: str | None = None, dtype: Any = None) -> nn.Module:
  """The references' `get_norm_layer(kind)`: BatchNorm2d (affine, running statistics) or
  InstanceNorm2d (neither). Convolutions feeding InstanceNorm keep their bias
  (`uses_bias`), those feeding BatchNorm drop it (BatchNorm's shift replaces it)."""
  if kind == "batch":
    return BatchNorm(train, name=name, dtype=dtype)
  if kind == "instance":
    return InstanceNorm(name=name, dtype=dtype)
  raise ConfigError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


def uses_bias(norm: str) -> bool:
  """junyanz's `use_bias = norm_layer == nn.InstanceNorm2d`."""
  return norm == "instance"
