"""The forms of jaxgan's layers tuned for XLA:CPU, used only where XLA:CPU compiles the program.

`jaxgan.layers` computes each layer either with XLA's own ops (portable) or with the form
here, chosen per layer by `jaxgan.implementation` (by the compilation platform, unless
`config.implementation` forces one). Every function here computes exactly what its
portable twin computes, PyTorch's semantics in NHWC/HWIO; only the way differs:

- a stride-s transposed convolution as s*s stride-1 convolutions, one per output phase
  (the sub-pixel view, Shi et al. 2016), with its gradients in the forms XLA:CPU runs
  fastest (`conv_transpose_phases`); where the kernel outweighs the activations, matrix
  products on the kernel as stored (`kernel_bound`);
- a strided convolution's input gradient from its space-to-depth form, which is no dilated
  convolution (`conv_strided`), and narrow stride-1 convolutions as shifted-tap products
  (`conv_narrow`);
- per-channel sums (normalisation statistics, bias gradients) and the finiteness check as
  matrix-vector products, which XLA:CPU runs as GEMVs where it lowers reductions over a
  narrow channel axis to slow reduce-window trees. These products carry statistics, so
  they are full float32 on every platform (`exact_product`).

The thresholds that pick among these forms (`THRESHOLDS`: `KERNEL_BOUND`, `NARROW`,
`BATCHED_WEIGHT_GRAD`, `WIDE_PRODUCT`, `UNION_WASTE`) are all here, and `thresholds` moves
them within a context for benchmarks; docs/performance.md gives the measurements behind
them. `tests/layers_test.py` checks every form against the
portable one, values and gradients.
"""

import contextlib
import contextvars
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan import implementation
from jaxgan.conv_arith import DIMS, accumulator, conv_output_size, conv_transpose_output_size

Array = jax.Array
HIGHEST = lax.Precision.HIGHEST


def exact_product(subscripts: str, a: Array, b: Array) -> Array:
  """einsum(subscripts, a, b) in full float32 wherever it is compiled: at XLA:CPU's default
  precision, which is float32 there (bitwise HIGHEST's: tests/implementation_test.py) and
  runs faster than an explicit HIGHEST (docs/accelerators.md); at HIGHEST on any other
  platform (the CPU forms forced onto an accelerator), never at a default that rounds
  operands to bfloat16."""
  return implementation.on_platform(
      a, b, cpu=functools.partial(jnp.einsum, subscripts),
      default=functools.partial(jnp.einsum, subscripts, precision=HIGHEST))



# The thresholds that choose among the forms below, each defined beside the form it guards.
# `thresholds` moves them within a context, so that a benchmark can build a step with one
# form's choice undone (benchmarks/steps/step_variants.py); training never moves them.
THRESHOLDS = ("KERNEL_BOUND", "NARROW", "BATCHED_WEIGHT_GRAD", "WIDE_PRODUCT", "UNION_WASTE")
_OVERRIDES = contextvars.ContextVar("jaxgan_layers_cpu_thresholds", default={})


@contextlib.contextmanager
def thresholds(**values):
  """Within this context, the named thresholds (`THRESHOLDS`) take these values in place of
  the module's. It must hold while a function is traced; jit's cache of a function traced
  before does not see it, so trace a new function under it."""
  unknown = sorted(set(values) - set(THRESHOLDS))
  if unknown:
    raise ValueError(f"unknown thresholds {unknown}; choose from {', '.join(THRESHOLDS)}")
  token = _OVERRIDES.set({**_OVERRIDES.get(), **values})
  try:
    yield
  finally:
    _OVERRIDES.reset(token)


def _threshold(name: str):
  """The threshold in force: `thresholds`'s value, else the module's constant."""
  return _OVERRIDES.get().get(name, globals()[name])


def space_to_depth(x: Array, s: int) -> Array:
  """[N, H, W, C] -> [N, H/s, W/s, s*s*C], channels ordered (row phase, col phase, C)."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // s, s, w // s, s, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h // s, w // s, s * s * c)


# Activations per kernel channel up to which matrix products on the kernel as stored win
# (`kernel_bound`).
KERNEL_BOUND = 0.5


def kernel_bound(positions: int, in_channels: int, out_channels: int) -> bool:
  """Whether a layer applied at `positions` pixels (batch x map) is cheaper as matrix
  products on its kernel as stored (`conv_dots`, `conv_transpose_dots`).

  The space-to-depth and sub-pixel forms below move the kernel into a phase view in every
  direction: cheap for DCGAN's batch 128, but at pix2pix's batch 1 the U-Net's inner
  levels hold large kernels against maps of 1x1 to 8x8, and copying kernels dominates the
  step. The matrix forms copy activations instead (k*k of them, im2col), so they win where
  the activations are the smaller: positions <= `KERNEL_BOUND` * min(C_in, C_out)
  (profile and factor measured in docs/performance.md).
  """
  return positions <= _threshold("KERNEL_BOUND") * min(in_channels, out_channels)


def _taps(x: Array, k: int, s: int, out_h: int, out_w: int) -> Array:
  """[N, H, W, C] (padded) -> [N, out_h, out_w, k*k*C]: pixel (i, j) holds x[s*i + a,
  s*j + b] for every tap (a, b), ordered (a, b, C) as an HWIO kernel's rows."""
  taps = [x[:, a:a + s * (out_h - 1) + 1:s, b:b + s * (out_w - 1) + 1:s]
          for a in range(k) for b in range(k)]
  n, c = x.shape[0], x.shape[-1]
  return jnp.stack(taps, axis=3).reshape(n, out_h, out_w, k * k * c)

def conv_dots(x: Array, kernel: Array, stride: int, padding: int) -> Array:
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
    return conv_dots(x, kernel, stride, padding)
  if stride == 1:
    if min(kernel.shape[2:]) <= _threshold("NARROW") and padding < k - 1:  # not 1x1; dy's pad >= 0
      return conv_narrow(x, kernel, padding)
    return conv_xla(x, kernel, stride, padding)
  k_up = -(-k // stride) * stride  # the kernel zero-padded by `conv_strided`'s gradients
  if all(conv_output_size(n, k_up, stride, padding) == o
         for n, o in zip(x.shape[1:3], (out_h, out_w))):
    return conv_strided(x, kernel, stride, padding)
  return conv_xla(x, kernel, stride, padding)


def conv_xla(x: Array, kernel: Array, stride: int, padding) -> Array:
  """XLA's own convolution; padding an int (every side) or lax's spec ("VALID", pairs)."""
  if isinstance(padding, int):
    padding = [(padding, padding)] * 2
  return lax.conv_general_dilated(x, kernel, (stride, stride), padding, dimension_numbers=DIMS)


# Channels from which a side of a stride-1 convolution counts as narrow (`conv_narrow`):
# an image's 3 or a PatchGAN's 1 logit, not 64.
NARROW = 4


def _shifted_taps_sum(x: Array, kernel: Array) -> Array:
  """The VALID stride-1 convolution of x with a kernel of few output channels: every
  pixel's product with all k*k taps' [C_in, C_out] slices at once (one wide matrix
  product, [P, C_in] @ [C_in, k*k*C_out]), then each output the sum of its k*k shifted
  taps (rows first, then columns). XLA's convolution with 3 outputs runs a 3-wide
  product, slower than this (docs/performance.md, benchmarks/layers/layer_directions.py)."""
  k, _, cin, cout = kernel.shape
  n, h, w, _ = x.shape
  out_h, out_w = h - k + 1, w - k + 1
  z = jnp.matmul(x.reshape(-1, cin), kernel.transpose(2, 0, 1, 3).reshape(cin, k * k * cout),
                 preferred_element_type=accumulator(x.dtype))  # the sums below in float32
  z = z.reshape(n, h, w, k, k * cout)
  rows = sum(z[:, a:a + out_h, :, a] for a in range(k)).reshape(n, out_h, w, k, cout)
  return sum(rows[:, :, b:b + out_w, b] for b in range(k)).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_narrow(x: Array, kernel: Array, padding: int) -> Array:
  """A stride-1 convolution with few input or output channels (`NARROW`: CycleGAN's 7x7
  first and last layers, a PatchGAN's 1-logit last layer). Whichever direction produces
  the narrow side, the forward where C_out is narrow and the input gradient where C_in is,
  is `_shifted_taps_sum` (the input gradient as the convolution of dy, zero-padded by
  k - 1 - padding, with the flipped, transposed kernel); the rest are XLA's. The weight
  gradient is one product against dy's shifted copies (`_narrow_weight_grad`) where those
  are no larger than x (a PatchGAN's last layer), else XLA's. Measured per layer and in
  whole steps (step_variants.py `xla_narrow`) in docs/performance.md."""
  return _conv_narrow_fwd(x, kernel, padding)[0]


def _conv_narrow_fwd(x, kernel, padding):
  if kernel.shape[3] <= _threshold("NARROW"):
    y = _shifted_taps_sum(jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0))),
                          kernel)
  else:
    y = conv_xla(x, kernel, 1, padding)
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
                 preferred_element_type=accumulator(x.dtype))
  return g.reshape(k, k, cout, cin).transpose(0, 1, 3, 2).astype(x.dtype)


def _conv_narrow_bwd(padding, residuals, dy):
  x, kernel = residuals
  k, _, cin, cout = kernel.shape
  if k * k * cout <= cin:  # dy's shifted copies no larger than x (a PatchGAN's last layer)
    x_padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    dw = _narrow_weight_grad(x_padded, dy, k)
  else:
    _, dw_vjp = jax.vjp(lambda w: conv_xla(x, w, 1, padding), kernel)
    dw = dw_vjp(dy)[0]
  if kernel.shape[2] <= _threshold("NARROW"):
    edge = k - 1 - padding
    dy_padded = jnp.pad(dy, ((0, 0), (edge, edge), (edge, edge), (0, 0)))
    dx = _shifted_taps_sum(dy_padded, kernel[::-1, ::-1].transpose(0, 1, 3, 2))
  else:
    _, dx_vjp = jax.vjp(lambda x: conv_xla(x, kernel, 1, padding), x)
    dx = dx_vjp(dy)[0]
  return dx, dw


conv_narrow.defvjp(_conv_narrow_fwd, _conv_narrow_bwd)


# The batch from which XLA's own weight gradient of a strided convolution beats the
# space-to-depth form's (`conv_strided`): DCGAN's batches, not pix2pix's and CycleGAN's 1.
BATCHED_WEIGHT_GRAD = 8


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_strided(x: Array, kernel: Array, stride: int, padding: int) -> Array:
  """A strided convolution, each direction in the form XLA:CPU runs fastest.

  - Forward: XLA's strided convolution, faster than the stride-1 convolution of the
    space-to-depth form.
  - Input gradient: from the space-to-depth form (`conv_space_to_depth`), with the
    kernel zero-padded to a multiple of the stride (CycleGAN's 3x3 stride-2 layers): a
    stride-1 convolution, where XLA's own is a slower dilated one.
  - Weight gradient: XLA's, which contracts over the batch, from a batch of
    `BATCHED_WEIGHT_GRAD`; the space-to-depth form's below it (batch 1, where XLA's is
    slower).
  `conv` takes this path where the padded kernel keeps the output's size. Measured per
  layer and direction, and in whole steps, in docs/performance.md.
  """
  return conv_xla(x, kernel, stride, padding)


def _conv_strided_fwd(x, kernel, stride, padding):
  return conv_xla(x, kernel, stride, padding), (x, kernel)


def _conv_strided_bwd(stride, padding, residuals, dy):
  x, kernel = residuals
  k = kernel.shape[0]
  extra = -(-k // stride) * stride - k
  padded = jnp.pad(kernel, ((0, extra), (0, extra), (0, 0), (0, 0)))  # zero taps at the end
  if x.shape[0] >= _threshold("BATCHED_WEIGHT_GRAD"):
    _, dx_vjp = jax.vjp(lambda x: conv_space_to_depth(x, padded, stride, padding), x)
    _, dw_vjp = jax.vjp(lambda w: conv_xla(x, w, stride, padding), kernel)
    return dx_vjp(dy)[0], dw_vjp(dy)[0]
  _, vjp = jax.vjp(lambda x, w: conv_space_to_depth(x, w, stride, padding), x, padded)
  dx, dw = vjp(dy)
  return dx, dw[:k, :k]


conv_strided.defvjp(_conv_strided_fwd, _conv_strided_bwd)


def conv_space_to_depth(x: Array, kernel: Array, stride: int, padding: int) -> Array:
  """A stride-s conv whose kernel side is a multiple of s, as the stride-1 conv it is on
  a space-to-depth input: its input gradient is then no dilated convolution either.
  `conv_strided` takes its gradients from here (its forward is slower than XLA's)."""
  k, s = kernel.shape[0], stride
  _, h, w, cin = x.shape
  out_h, out_w = conv_output_size(h, k, s, padding), conv_output_size(w, k, s, padding)
  # Pad so both sides are multiples of s; the extra zero rows only feed outputs we crop.
  ph, pw = (-(h + 2 * padding)) % s, (-(w + 2 * padding)) % s
  x = jnp.pad(x, ((0, 0), (padding, padding + ph), (padding, padding + pw), (0, 0)))
  kernel = kernel.reshape(k // s, s, k // s, s, cin, -1).transpose(0, 2, 1, 3, 4, 5)
  kernel = kernel.reshape(k // s, k // s, s * s * cin, -1)
  y = conv_xla(space_to_depth(x, s), kernel, 1, "VALID")
  return y[:, :out_h, :out_w]


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
# (`weight_grad`): a 64-channel output, not an image's 3.
WIDE_PRODUCT = 64


def weight_grad(big: Array, small: Array, k: int, s: int) -> Array:
  """G[t_h, t_w] = sum over n, i, j of small[n, i, j] (outer) big[n, s*i + t_h, s*j + t_w].

  The weight gradient of a strided transposed convolution has this form (`small` its
  input, `big` its output gradient, zero-padded so every index exists). XLA:CPU computes
  it slowly as a convolution; here each tap's strided view of `big` is one matrix product
  contracting over batch and space, [C_small, N*H*W] @ [N*H*W, C_big], and where C_big is
  narrow (an image's channels: a product 3 wide runs badly) the k*k views are side by side
  in one product. The result is [k, k, C_small, C_big], the kernel's own layout: a
  gradient in another orientation makes every optimizer pass over it read across strides.
  The forms this was measured against: benchmarks/layers/alternatives.py `weight_grad`
  (docs/performance.md).
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
                           preferred_element_type=accumulator(small.dtype))

  if c_big >= _threshold("WIDE_PRODUCT"):
    g = jnp.stack([product(v) for v in views])  # [k*k, C_small, C_big]
  else:
    g = product(jnp.concatenate(views, axis=1)).reshape(c_small, k * k, c_big).transpose(1, 0, 2)
  return g.reshape(k, k, c_small, c_big).astype(small.dtype)


# How many times the outputs a phase needs the one convolution of every phase may compute
# before each phase gets its own (`conv_transpose_subpixel`). The phases' first inputs
# differ by one (DCGAN's 4x4 and CycleGAN's 3x3 stride-2 kernels), so the one convolution
# computes (q + 1)^2 outputs per phase for q^2: wasteful on small maps; from 16x16 on the
# two are even, and the one convolution wins narrow outputs (docs/performance.md).
UNION_WASTE = 1.2


def conv_transpose_subpixel(x: Array, kernel: Array, stride: int, padding: int,
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
    return conv_xla(x, kernel[::-1, ::-1], 1, pad)

  m, offsets, taps = _phase_taps(k, s, p)
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index -1 -> the zero row
  lo, hi = min(offsets), max(offsets)
  q_h, q_w = -(-out_h // s), -(-out_w // s)
  if (q_h + hi - lo) * (q_w + hi - lo) > _threshold("UNION_WASTE") * q_h * q_w:
    # Small maps: each phase its own convolution over exactly its q x q outputs.
    y = jnp.stack([jnp.stack([
        conv_xla(x, padded[taps[i][:, None], taps[j][None, :]], 1,
                  [(-a, q_h + a + m - 1 - h), (-b, q_w + b + m - 1 - w)])
        for j, b in enumerate(offsets)], axis=3) for i, a in enumerate(offsets)], axis=3)
  else:
    # Phase kernel: [m, m, cin, s, s, cout]; taps beyond the kernel are zero weights.
    phase_kernel = padded[taps[:, :, None, None], taps[None, None, :, :]]  # [s, m, s, m, i, o]
    phase_kernel = phase_kernel.transpose(1, 3, 4, 0, 2, 5).reshape(m, m, cin, s * s * cout)
    # z[u] = sum_j x[u + lo + j] * phase_kernel[j] for u in [0, q + hi - lo).
    pad = [(-lo, q_h + hi - lo + m - 1 - h + lo), (-lo, q_w + hi - lo + m - 1 - w + lo)]
    z = conv_xla(x, phase_kernel, 1, pad).reshape(n, q_h + hi - lo, q_w + hi - lo, s, s, cout)
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
  else the sub-pixel form with its own gradients (`conv_transpose_phases`)."""
  n, h, w, _ = x.shape
  if kernel_bound(n * h * w, *kernel.shape[2:]):
    return conv_transpose_dots(x, kernel, stride, padding, output_padding)
  return conv_transpose_phases(x, kernel, stride, padding, output_padding)


def conv_transpose_dots(x: Array, kernel: Array, stride: int, padding: int,
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
def conv_transpose_phases(x: Array, kernel: Array, stride: int, padding: int = 0,
                           output_padding: int = 0) -> Array:
  """`conv_transpose` where the activations outweigh the kernel (DCGAN at batch 128).

  Forward, input gradient and weight gradient are three views of one linear map, so each
  uses the kernel XLA:CPU runs fastest: the sub-pixel forward; the input gradient as the
  stride-s convolution it is (PyTorch's `conv2d(dy, w, stride, padding)`); the weight
  gradient as matrix products (`weight_grad`).
  """
  return conv_transpose_subpixel(x, kernel, stride, padding, output_padding)


def _conv_transpose_fwd(x, kernel, stride, padding, output_padding):
  return conv_transpose_phases(x, kernel, stride, padding, output_padding), (x, kernel)


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
                    preferred_element_type=accumulator(x.dtype))
    return dx, dw.astype(kernel.dtype)
  dw = weight_grad(dy_shifted, x, k, stride)
  return dx, dw.astype(kernel.dtype)


conv_transpose_phases.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)




def channel_sum(x: Array) -> Array:
  """Per-channel sum over every other axis, as a matrix-vector product.

  XLA:CPU lowers `x.sum((0, 1, 2))` with a narrow channel axis to a slow two-stage
  reduce-window; ones[M] @ x[M, C] runs as a GEMV, faster at DCGAN shapes
  (benchmarks/layers/batch_norm.py, docs/performance.md). The batch stays the leading
  factor of M, so a batch-sharded x needs no reshard.
  """
  c = x.shape[-1]
  return exact_product("m,mc->c", jnp.ones((x.size // c,), x.dtype), x.reshape(-1, c))


@jax.custom_vjp
def add_bias(y: Array, bias: Array) -> Array:
  """y + bias over the last axis, whose gradient, the channel sum of dy, is `channel_sum`
  (`channel_sum`'s reason), where autodiff's reduction over (N, H, W) is slower."""
  return y + bias


def _add_bias_fwd(y, bias):
  return y + bias, None


def _add_bias_bwd(_, dy):
  return dy, channel_sum(dy.astype(accumulator(dy.dtype))).astype(dy.dtype)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


@jax.custom_vjp
def batch_norm_train(x: Array, scale: Array, bias: Array, eps: float):
  """y = (x - mean) / sqrt(var + eps) * scale + bias with batch statistics; -> (y, mean, var).
  Two passes, as the portable form: E[x^2] - mean^2 loses digits where |mean| >> std."""
  m = x.size // x.shape[-1]
  mean = channel_sum(x) / m
  centred = x - mean
  var = channel_sum(jnp.square(centred)) / m
  inv = lax.rsqrt(var + eps)
  return centred * (inv * scale) + bias, mean, var


def _batch_norm_fwd(x, scale, bias, eps):
  y, mean, var = batch_norm_train(x, scale, bias, eps)
  return (y, mean, var), (x, mean, lax.rsqrt(var + eps), scale)


def _batch_norm_bwd(residuals, cotangents):
  # Statistics are not differentiated through separately: gradients reach them only via y.
  x, mean, inv, scale = residuals
  dy = cotangents[0]
  m = x.size // x.shape[-1]
  x_hat = (x - mean) * inv
  d_bias = channel_sum(dy)
  d_scale = channel_sum(dy * x_hat)
  dx = (scale * inv / m) * (m * dy - d_bias - x_hat * d_scale)
  return dx, d_scale, d_bias, None


batch_norm_train.defvjp(_batch_norm_fwd, _batch_norm_bwd)

def spatial_sum(x: Array) -> Array:
  """[N, H, W, C] -> [N, 1, 1, C]: each image's per-channel sum, as a batched
  matrix-vector product (`channel_sum`'s reason: XLA:CPU's reduction over H, W with a
  narrow channel axis is slow)."""
  n, h, w, c = x.shape
  return exact_product("m,nmc->nc", jnp.ones((h * w,), x.dtype),
                       x.reshape(n, h * w, c)).reshape(n, 1, 1, c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def instance_norm(x: Array, eps: float = 1e-5) -> Array:
  """(x - mean) / sqrt(var + eps) per image and channel over H x W, biased variance."""
  return _instance_norm_fwd(x, eps)[0]


def _instance_norm_fwd(x, eps):
  m = x.shape[1] * x.shape[2]
  centred = x - spatial_sum(x) / m
  inv = lax.rsqrt(spatial_sum(jnp.square(centred)) / m + eps)  # two passes: no cancellation
  y = centred * inv
  return y, (y, inv)


def _instance_norm_bwd(eps, residuals, dy):
  # The closed form of BatchNorm's backward pass (`_batch_norm_bwd`), per image.
  del eps
  y, inv = residuals
  m = y.shape[1] * y.shape[2]
  return ((inv / m) * (m * dy - spatial_sum(dy) - y * spatial_sum(dy * y)),)


instance_norm.defvjp(_instance_norm_fwd, _instance_norm_bwd)


def group_sums(x: Array, groups: int) -> Array:
  """[N, H, W, C] -> [N, 1, 1, C]: the sum over H, W and the channels of each channel's
  group (GroupNorm's statistics), the spatial part as `spatial_sum`."""
  n, _, _, c = x.shape
  per_group = spatial_sum(x).reshape(n, groups, c // groups).sum(-1, keepdims=True)
  return jnp.broadcast_to(per_group, (n, groups, c // groups)).reshape(n, 1, 1, c)


def row_products(x: Array) -> Array:
  """x @ 0 over its last axis: 0 in each row of finite values, NaN in a row holding a NaN
  or an infinity (0 * inf is NaN), and never an overflow. XLA:CPU runs the product as a
  GEMV, but a reduction of booleans over a large array as a slower reduce-window tree
  (benchmarks/layers/alternatives.py `finite`, docs/performance.md)."""
  rows = x.reshape(-1, x.shape[-1] if x.ndim else 1)
  return exact_product("mc,c->m", rows, jnp.zeros((rows.shape[-1],), x.dtype))


def leaf_finite(x: Array) -> Array:
  """Whether every value of one array is finite, read as `row_products`."""
  return jnp.all(jnp.isfinite(row_products(x)))


# Leaves below this many values are read together (`all_finite`).
SMALL_LEAF = 1 << 14


def all_finite(leaves) -> Array:
  """Whether every value of these arrays is finite, read as `row_products`: each large leaf
  on its own, the small ones (biases, normalisation scales, their optimizer moments)
  raveled into one vector per dtype, and one check over all the products. A step's
  program then holds one product per large leaf instead of several ops per leaf, which
  XLA:CPU compiles in less time, and computes the same flag."""
  small, products = {}, []
  for x in leaves:
    if x.size < SMALL_LEAF:
      small.setdefault(jnp.dtype(x.dtype), []).append(x.reshape(-1))
    else:
      products.append(row_products(x))
  products += [row_products(jnp.concatenate(xs)) for xs in small.values()]
  return jnp.all(jnp.isfinite(jnp.concatenate([p.astype(jnp.float32) for p in products])))
