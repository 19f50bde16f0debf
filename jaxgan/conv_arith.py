"""Convolution arithmetic that both implementations of the layers share.

PyTorch's output sizes for `Conv2d` and `ConvTranspose2d` (dilation 1), the NHWC/HWIO
dimension numbers, and the dtype in which sums over a batch are kept. Imports nothing of
the package, so `jaxgan.layers` and `jaxgan.layers_cpu` both build on it.
"""

import jax.numpy as jnp

DIMS = ("NHWC", "HWIO", "NHWC")


def conv_output_size(size: int, k: int, stride: int, padding: int) -> int:
  """PyTorch's Conv2d output size (dilation 1)."""
  return (size + 2 * padding - k) // stride + 1


def conv_transpose_output_size(size: int, k: int, stride: int, padding: int,
                               output_padding: int = 0) -> int:
  """PyTorch's ConvTranspose2d output size (dilation 1)."""
  return (size - 1) * stride - 2 * padding + k + output_padding


def accumulator(dtype):
  """The dtype sums over a batch are kept in: float32 for bfloat16 (and float16)
  operands, the operands' own dtype when wider."""
  return jnp.promote_types(dtype, jnp.float32)
