"""How close generated images are to real ones, per image: mean L1, PSNR, SSIM.

Inputs are batches [N, H, W, C] on a [0, max_value] scale; each function returns one value
per image. pix2pix's evaluation compares the uint8 images a user gets (the PNGs written),
so max_value is 255.

- `mean_l1`: mean |a - b| over pixels and channels, divided by max_value / 2: the [-1, 1]
  scale of the L1 term pix2pix trains on.
- `psnr`: 10 log10(max_value^2 / MSE), MSE over pixels and channels; infinite for
  identical images.
- `ssim`: the structural similarity of Wang, Bovik, Sheikh and Simoncelli (2004, eq. 13)
  as their reference code computes it: local means, variances and covariance under an
  11x11 Gaussian window with sigma 1.5 (normalised to sum 1), only where the window fits
  in the image ("valid"), C1 = (0.01 L)^2 and C2 = (0.03 L)^2 with L = max_value, the
  SSIM map averaged. Colour images: per channel, then averaged over channels (as
  `tf.image.ssim` and scikit-image's `channel_axis` do; tests check it against
  `tf.image.ssim`).
"""

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def mean_l1(a: Array, b: Array, max_value: float = 255.0) -> Array:
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  return jnp.mean(jnp.abs(a - b), axis=(1, 2, 3)) / (max_value / 2)


def psnr(a: Array, b: Array, max_value: float = 255.0) -> Array:
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  mse = jnp.mean(jnp.square(a - b), axis=(1, 2, 3))
  return 10.0 * jnp.log10(max_value ** 2 / mse)  # mse 0 -> inf


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Array:
  """The 1-D factor of the normalised 2-D Gaussian window."""
  x = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
  g = jnp.exp(-jnp.square(x) / (2 * sigma ** 2))
  return g / jnp.sum(g)


def _local_mean(x: Array, window: Array) -> Array:
  """Each channel filtered by the separable window, valid positions only."""
  c = x.shape[-1]
  dims = ("NHWC", "HWIO", "NHWC")
  for kernel in (window[:, None, None, None], window[None, :, None, None]):
    x = lax.conv_general_dilated(x, jnp.tile(kernel, (1, 1, 1, c)), (1, 1), "VALID",
                                 dimension_numbers=dims, feature_group_count=c)
  return x


def ssim(a: Array, b: Array, max_value: float = 255.0) -> Array:
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  window = gaussian_window()
  c1, c2 = (SSIM_K1 * max_value) ** 2, (SSIM_K2 * max_value) ** 2
  mu_a, mu_b = _local_mean(a, window), _local_mean(b, window)
  var_a = _local_mean(a * a, window) - mu_a * mu_a
  var_b = _local_mean(b * b, window) - mu_b * mu_b
  cov = _local_mean(a * b, window) - mu_a * mu_b
  ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2) /
              ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)))
  return jnp.mean(ssim_map, axis=(1, 2, 3))
