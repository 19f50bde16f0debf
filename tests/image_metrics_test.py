"""PSNR, SSIM and mean L1 on inputs whose answers are known, and SSIM against tf.image.ssim."""

import math

import numpy as np
import pytest
import tensorflow as tf

from jaxgan import image_metrics


def images(seed, shape=(3, 32, 40, 3)):
  return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


def test_identical_images():
  x = images(0)
  assert np.all(np.isinf(image_metrics.psnr(x, x)))
  np.testing.assert_allclose(image_metrics.ssim(x, x), 1.0, rtol=1e-6)
  np.testing.assert_array_equal(image_metrics.mean_l1(x, x), 0.0)


def test_known_noise_level_gives_known_psnr():
  # +-d on a checkerboard: MSE = d^2 exactly, so PSNR = 20 log10(255 / d).
  base = np.full((2, 16, 16, 3), 128.0, np.float32)
  sign = np.where(np.indices((16, 16)).sum(0) % 2, 1.0, -1.0)[None, :, :, None]
  for d in (1.0, 5.0, 16.0):
    noisy = base + d * sign
    np.testing.assert_allclose(image_metrics.psnr(base, noisy), 20 * math.log10(255 / d), rtol=1e-5)
    np.testing.assert_allclose(image_metrics.mean_l1(base, noisy), d / 127.5, rtol=1e-6)


def test_ssim_equals_tensorflow_ssim():
  a = images(1)
  b = np.clip(a + np.random.default_rng(2).normal(0, 20, a.shape), 0, 255).astype(np.float32)
  want = tf.image.ssim(tf.constant(a), tf.constant(b), max_val=255.0, filter_size=11,
                       filter_sigma=1.5, k1=0.01, k2=0.03).numpy()
  np.testing.assert_allclose(image_metrics.ssim(a, b), want, atol=1e-5)
  assert 0.0 < float(image_metrics.ssim(a, b)[0]) < 1.0


def test_ssim_ignores_a_constant_offset_less_than_psnr():
  # A brightness shift leaves structure (the covariance term) intact: SSIM stays high.
  a = images(3)[:, :, :, :1] * 0.5 + 64
  shifted = a + 10.0
  assert float(image_metrics.ssim(a, shifted)[0]) > 0.98
  np.testing.assert_allclose(image_metrics.psnr(a, shifted), 20 * math.log10(25.5), rtol=1e-5)


def test_gaussian_window():
  w = np.asarray(image_metrics.gaussian_window())
  assert w.shape == (11,) and w.sum() == pytest.approx(1.0) and w.argmax() == 5
  assert w[0] / w[5] == pytest.approx(math.exp(-25 / (2 * 1.5 ** 2)), rel=1e-5)
