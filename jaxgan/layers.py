"""jaxgan's layers: convolutions with PyTorch's semantics, normalisations, DCGAN init.

PyTorch references (the DCGAN tutorial, junyanz/pytorch-CycleGAN-and-pix2pix) define
layers as `Conv2d(k, stride, padding)` and `ConvTranspose2d(k, stride, padding,
output_padding)`; the modules here take the same four numbers and compute the same
function, in NHWC. Kernels are stored HWIO in PyTorch's orientation (no flip):
`conv` kernel[h, w, i, o] == torch_conv.weight[o, i, h, w] and `conv_transpose`
kernel[h, w, i, o] == torch_convT.weight[i, o, h, w], so parameter counts and weight
ports match the references one to one.

Every function here has two implementations (`jaxgan.implementation`): the portable one,
written below with XLA's own ops (`lax.conv_general_dilated`, plain reductions, two-pass
float32 statistics), which every accelerator runs; and the forms of `jaxgan.layers_cpu`,
tuned for XLA:CPU and used only where XLA:CPU compiles the program.

Mixed precision (`config.dtype`): every layer computes in its `dtype` (None: the dtype of
its input), with its parameters stored in float32 and cast at use, as Flax's own layers do
with `dtype` and `param_dtype`; the gradients reaching the parameters are float32 again
(the transpose of the cast). The normalisation layers compute their statistics and their
whole normalisation in float32 and only hand back the compute dtype (as
`flax.linen.BatchNorm` keeps its statistics in float32 under `dtype=bfloat16`).
"""

import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgan import implementation
from jaxgan import layers_cpu
from jaxgan.errors import ConfigError
from jaxgan.conv_arith import DIMS, accumulator

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
  threefry draw separately, so a net's module-by-module init compiles many times slower
  (benchmarks/layers/instance_norm.py times both)."""
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


def conv_portable(x: Array, kernel: Array, stride: int = 1, padding: int = 0) -> Array:
  """PyTorch `Conv2d(k, stride, padding)` as XLA's convolution."""
  return lax.conv_general_dilated(x, kernel, (stride, stride), [(padding, padding)] * 2,
                                  dimension_numbers=DIMS, precision=implementation.precision())


def conv(x: Array, kernel: Array, stride: int = 1, padding: int = 0) -> Array:
  """PyTorch `Conv2d(k, stride, padding)` (zero padding) in NHWC/HWIO."""
  return implementation.choose(lambda x, k: layers_cpu.conv(x, k, stride, padding),
                               lambda x, k: conv_portable(x, k, stride, padding), x, kernel)


def conv_transpose_portable(x: Array, kernel: Array, stride: int, padding: int = 0,
                            output_padding: int = 0) -> Array:
  """PyTorch `ConvTranspose2d` as XLA's convolution of the input dilated by the stride
  with the spatially flipped kernel (the textbook form, Dumoulin and Visin 2016)."""
  k, p = kernel.shape[0], padding
  pad = [(k - 1 - p, k - 1 - p + output_padding)] * 2
  return lax.conv_general_dilated(x, kernel[::-1, ::-1], (1, 1), pad,
                                  lhs_dilation=(stride, stride), dimension_numbers=DIMS,
                                  precision=implementation.precision())


def conv_transpose(x: Array, kernel: Array, stride: int, padding: int = 0,
                   output_padding: int = 0) -> Array:
  """PyTorch `ConvTranspose2d(k, stride, padding, output_padding)` in NHWC/HWIO."""
  args = (stride, padding, output_padding)
  return implementation.choose(lambda x, k: layers_cpu.conv_transpose(x, k, *args),
                               lambda x, k: conv_transpose_portable(x, k, *args), x, kernel)


def add_bias(y: Array, bias: Array) -> Array:
  """y + bias over the last axis (its gradient, a per-channel sum, differs by implementation)."""
  return implementation.choose(layers_cpu.add_bias, lambda y, b: y + b, y, bias)


def batch_statistics(x: Array) -> tuple[Array, Array]:
  """Per-channel mean and biased variance over every other axis, two passes in x's dtype
  (float32 in the layers): no product, so no backend's matrix precision touches them."""
  axes = tuple(range(x.ndim - 1))
  mean = jnp.mean(x, axes)
  return mean, jnp.mean(jnp.square(x - mean), axes)


def _batch_norm_train_portable(x: Array, scale: Array, bias: Array, eps: float):
  mean, var = batch_statistics(x)
  return (x - mean) * (lax.rsqrt(var + eps) * scale) + bias, mean, var


def normalise(x: Array, axes: tuple[int, ...], eps: float) -> Array:
  """(x - mean) / sqrt(var + eps) with mean and biased variance over `axes`, two passes:
  InstanceNorm's and GroupNorm's portable form."""
  centred = x - jnp.mean(x, axes, keepdims=True)
  return centred * lax.rsqrt(jnp.mean(jnp.square(centred), axes, keepdims=True) + eps)


def instance_norm_portable(x: Array, eps: float = 1e-5) -> Array:
  """(x - mean) / sqrt(var + eps) per image and channel over H x W, two-pass variance."""
  return normalise(x, (1, 2), eps)


def instance_norm(x: Array, eps: float = 1e-5) -> Array:
  """(x - mean) / sqrt(var + eps) per image and channel over H x W, biased variance."""
  return implementation.choose(lambda x: layers_cpu.instance_norm(x, eps),
                               lambda x: instance_norm_portable(x, eps), x)


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
    y = jnp.matmul(x, kernel.astype(x.dtype), precision=implementation.precision())
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


class BatchNorm(nn.Module):
  """`torch.nn.BatchNorm2d` with its defaults (momentum 0.1, eps 1e-5), in NHWC.

  Same variables as `flax.linen.BatchNorm` (params scale/bias, batch_stats mean/var);
  differs from it where PyTorch does: the running variance takes the UNBIASED batch
  variance (x m/(m-1)), as torch does. The statistics are `batch_statistics` (two-pass,
  float32), or on XLA:CPU `layers_cpu.batch_norm_train`'s. Scale starts from N(1, 0.02)
  (DCGAN init). Under `jit` on a `Mesh` with the batch sharded,
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
    x = x.astype(accumulator(x.dtype))  # bfloat16 sums lose digits
    c = x.shape[-1]
    scale = self.param("scale", self.scale_init, (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
    if not self.train:
      inv = lax.rsqrt(ra_var.value + self.epsilon) * scale
      return ((x - ra_mean.value) * inv + bias).astype(dtype)
    eps = self.epsilon
    y, mean, var = implementation.choose(
        lambda *a: layers_cpu.batch_norm_train(*a, eps),
        lambda *a: _batch_norm_train_portable(*a, eps), x, scale, bias)
    if not self.is_initializing():
      m = x.size // c
      ra_mean.value = (1 - self.momentum) * ra_mean.value + self.momentum * mean
      ra_var.value = (1 - self.momentum) * ra_var.value + self.momentum * var * m / max(m - 1, 1)
    return y.astype(dtype)


class InstanceNorm(nn.Module):
  """`torch.nn.InstanceNorm2d` as pix2pix/CycleGAN use it: no affine parameters, no
  running statistics, eps 1e-5; each image and channel is normalised over its own H x W
  with the biased variance (Ulyanov et al. 2016). In float32 whatever the compute `dtype`,
  as BatchNorm."""
  epsilon: float = 1e-5
  dtype: Any = None  # of the output (None: the input's)

  @nn.compact
  def __call__(self, x):
    dtype = self.dtype or x.dtype
    return instance_norm(x.astype(accumulator(x.dtype)), self.epsilon).astype(dtype)


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

