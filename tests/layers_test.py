"""The PyTorch-semantics layers equal direct references, values and gradients: the forms
tuned for XLA:CPU (`jaxgan.layers_cpu`) in every variant their thresholds pick, and the
portable ones (XLA's own ops); tests/implementation_test.py holds the two against each other."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import implementation, layers, layers_cpu


def naive_conv_transpose(x, w, s, p, op):
  """PyTorch ConvTranspose2d by its definition: each input pixel scatters k*k taps."""
  n, h, wd, _ = x.shape
  k = w.shape[0]
  oh, ow = (h - 1) * s - 2 * p + k + op, (wd - 1) * s - 2 * p + k + op
  y = np.zeros((n, oh, ow, w.shape[-1]))
  for i, j, a, b in itertools.product(range(h), range(wd), range(k), range(k)):
    o1, o2 = s * i - p + a, s * j - p + b
    if 0 <= o1 < oh and 0 <= o2 < ow:
      y[:, o1, o2] += x[:, i, j] @ w[a, b]
  return y


def naive_conv(x, w, s, p):
  """PyTorch Conv2d (cross-correlation, zero padding) by its definition."""
  x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  k = w.shape[0]
  oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
  y = np.zeros((x.shape[0], oh, ow, w.shape[-1]))
  for i, j in itertools.product(range(oh), range(ow)):
    patch = x[:, s * i:s * i + k, s * j:s * j + k]
    y[:, i, j] = np.einsum("nhwc,hwco->no", patch, w)
  return y


# (kernel, stride, padding, output_padding, input size): DCGAN's blocks, CycleGAN's
# upsampling (3, 2, 1, 1), 1x1 projections of z, and odd cases.
TRANSPOSED = [(4, 2, 1, 0, 4), (4, 2, 1, 0, 5), (3, 2, 1, 1, 4), (3, 2, 1, 0, 4), (4, 1, 0, 0, 1),
              (7, 1, 0, 0, 1), (5, 3, 2, 1, 3), (4, 2, 0, 0, 3), (3, 1, 1, 0, 5), (4, 2, 3, 1, 6),
              (2, 2, 0, 0, 3), (4, 2, 1, 1, 1), (3, 1, 1, 0, 1)]
CONVS = [(4, 2, 1, 8), (4, 2, 1, 7), (4, 1, 0, 4), (3, 2, 1, 7), (6, 3, 1, 9), (7, 1, 3, 6),
         (3, 1, 1, 5), (3, 2, 1, 8), (5, 2, 2, 10)]


@pytest.fixture(params=["kernel_bound", "activation_bound"])
def formulation(request, monkeypatch):
  """Both formulations of every layer on every case: the matrix products on the kernel as
  stored, and the sub-pixel / space-to-depth forms (`layers_cpu.kernel_bound` decides which
  one a layer takes; here it is forced either way)."""
  monkeypatch.setattr(layers_cpu, "kernel_bound", lambda *_: request.param == "kernel_bound")
  return request.param


@pytest.mark.parametrize("k,s,p,op,h", TRANSPOSED)
@pytest.mark.parametrize("union_waste", [1.0, 10 ** 9], ids=["phase_per_conv", "one_conv"])
def test_conv_transpose_values_match_definition(k, s, p, op, h, formulation, union_waste,
                                                monkeypatch):
  monkeypatch.setattr(layers_cpu, "UNION_WASTE", union_waste)  # both sub-pixel forwards
  rng = np.random.default_rng(k * 100 + s * 10 + p)
  x = rng.normal(size=(2, h, h + 1, 3)).astype(np.float32)
  w = rng.normal(size=(k, k, 3, 5)).astype(np.float32)
  expected = naive_conv_transpose(x, w, s, p, op)
  got = layers_cpu.conv_transpose(x, w, s, p, op)
  assert got.shape == expected.shape
  np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("k,s,p,op,h", TRANSPOSED)
@pytest.mark.parametrize("wide_from", [0, 10 ** 9], ids=["product_per_tap", "taps_side_by_side"])
def test_conv_transpose_gradients_match_reference(k, s, p, op, h, formulation, wide_from,
                                                  monkeypatch):
  monkeypatch.setattr(layers_cpu, "WIDE_PRODUCT", wide_from)  # both forms of `_weight_grad`
  rng = np.random.default_rng(k + s + p + h)
  x = jnp.asarray(rng.normal(size=(2, h, h, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, 3, 4)), jnp.float32)
  out = naive_conv_transpose(np.asarray(x), np.asarray(w), s, p, op)
  target = jnp.asarray(rng.normal(size=out.shape), jnp.float32)

  def loss(fn):
    return lambda x, w: jnp.sum(fn(x, w, s, p, op) * target)

  got = jax.grad(loss(layers_cpu.conv_transpose), argnums=(0, 1))(x, w)
  want = jax.grad(loss(layers.conv_transpose_portable), argnums=(0, 1))(x, w)
  for g, r in zip(got, want):
    np.testing.assert_allclose(g, r, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("k,s,p,h", CONVS)
@pytest.mark.parametrize("batched_from", [1, 10 ** 9], ids=["xla_weight_grad", "s2d_weight_grad"])
@pytest.mark.parametrize("narrow", [4, 0], ids=["narrow", "xla_stride1"])
def test_conv_values_and_gradients(k, s, p, h, formulation, batched_from, narrow, monkeypatch):
  monkeypatch.setattr(layers_cpu, "BATCHED_WEIGHT_GRAD", batched_from)  # both of `_conv_strided`'s
  monkeypatch.setattr(layers_cpu, "NARROW", narrow)  # 3 -> 4 channels: `_conv_narrow` or XLA's
  rng = np.random.default_rng(k * 7 + h)
  x = jnp.asarray(rng.normal(size=(2, h, h, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, 3, 4)), jnp.float32)
  expected = naive_conv(np.asarray(x), np.asarray(w), s, p)
  np.testing.assert_allclose(layers_cpu.conv(x, w, s, p), expected, atol=1e-5, rtol=1e-5)

  def direct(x, w):
    return jax.lax.conv_general_dilated(x, w, (s, s), [(p, p)] * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  target = jnp.asarray(rng.normal(size=expected.shape), jnp.float32)
  got = jax.grad(lambda x, w: jnp.sum(layers_cpu.conv(x, w, s, p) * target), (0, 1))(x, w)
  want = jax.grad(lambda x, w: jnp.sum(direct(x, w) * target), (0, 1))(x, w)
  for g, r in zip(got, want):
    np.testing.assert_allclose(g, r, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("k,s,p,op,h", TRANSPOSED)
def test_portable_conv_transpose_matches_definition(k, s, p, op, h):
  rng = np.random.default_rng(k * 100 + s * 10 + p)
  x = rng.normal(size=(2, h, h + 1, 3)).astype(np.float32)
  w = rng.normal(size=(k, k, 3, 5)).astype(np.float32)
  np.testing.assert_allclose(layers.conv_transpose_portable(x, w, s, p, op),
                             naive_conv_transpose(x, w, s, p, op), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("k,s,p,h", CONVS)
def test_portable_conv_matches_definition(k, s, p, h):
  rng = np.random.default_rng(k * 7 + h)
  x = rng.normal(size=(2, h, h, 3)).astype(np.float32)
  w = rng.normal(size=(k, k, 3, 4)).astype(np.float32)
  np.testing.assert_allclose(layers.conv_portable(x, w, s, p), naive_conv(x, w, s, p),
                             atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cin,cout,k,p", [(20, 1, 4, 1), (64, 3, 3, 0), (3, 64, 5, 2)])
def test_narrow_convolution_values_and_gradients_match_xla(cin, cout, k, p):
  # Wide on one side: each of `_conv_narrow`'s directions (the weight gradient from dy's
  # shifted copies only for 20 -> 1) against XLA's convolution and its autodiff.
  rng = np.random.default_rng(cin + cout)
  x = jnp.asarray(rng.normal(size=(2, 9, 8, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)

  def direct(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), [(p, p)] * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  want_y = direct(x, w)
  np.testing.assert_allclose(layers_cpu.conv_narrow(x, w, p), want_y, rtol=1e-4, atol=1e-4)
  target = jnp.asarray(rng.normal(size=want_y.shape), jnp.float32)
  got = jax.grad(lambda x, w: jnp.sum(layers_cpu.conv_narrow(x, w, p) * target), (0, 1))(x, w)
  want = jax.grad(lambda x, w: jnp.sum(direct(x, w) * target), (0, 1))(x, w)
  for g, r in zip(got, want):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_modules_store_pytorch_shaped_kernels():
  x = jnp.zeros((1, 4, 4, 6))
  ct = layers.ConvTranspose(5, 4, 2, 1, use_bias=False).init(jax.random.PRNGKey(0), x)
  c = layers.Conv(5, 3, 1, 1).init(jax.random.PRNGKey(0), x)
  assert ct["params"]["kernel"].shape == (4, 4, 6, 5)  # torch: (in=6, out=5, 4, 4)
  assert "bias" not in ct["params"]
  assert c["params"]["kernel"].shape == (3, 3, 6, 5) and c["params"]["bias"].shape == (5,)


def test_dcgan_init_statistics():
  kernel = layers.dcgan_kernel_init(jax.random.PRNGKey(0), (4, 4, 256, 256))
  scale = layers.dcgan_scale_init(jax.random.PRNGKey(1), (100_000,))
  assert abs(float(kernel.mean())) < 1e-3 and abs(float(kernel.std()) - 0.02) < 1e-3
  assert abs(float(scale.mean()) - 1.0) < 1e-3 and abs(float(scale.std()) - 0.02) < 1e-3


def torch_batch_norm_reference(x, scale, bias, running_mean, running_var, eps=1e-5, momentum=0.1):
  """torch.nn.BatchNorm2d.forward in training mode, written out (NHWC)."""
  axes = tuple(range(x.ndim - 1))
  m = x.size // x.shape[-1]
  mean, var = x.mean(axes), x.var(axes)
  y = (x - mean) / np.sqrt(var + eps) * scale + bias
  return (y, (1 - momentum) * running_mean + momentum * mean,
          (1 - momentum) * running_var + momentum * var * m / (m - 1))


@pytest.mark.parametrize("shape", [(8, 3, 3, 4), (4, 4, 4, 512), (2, 6, 5, 3), (16, 7)])
@pytest.mark.parametrize("impl", ["portable", "cpu"])
def test_batchnorm_matches_pytorch_training_mode(shape, impl):
  rng = np.random.default_rng(0)
  x = rng.normal(2.0, 3.0, size=shape).astype(np.float32)
  bn = layers.BatchNorm(train=True)
  variables = bn.init(jax.random.PRNGKey(1), x)
  variables = {"params": variables["params"],
               "batch_stats": {"mean": jnp.full(shape[-1], 0.5), "var": jnp.full(shape[-1], 2.0)}}
  with implementation.use(impl):
    y, updates = bn.apply(variables, x, mutable=["batch_stats"])
  scale = np.asarray(variables["params"]["scale"])
  want_y, want_mean, want_var = torch_batch_norm_reference(x, scale, 0.0, 0.5, 2.0)
  np.testing.assert_allclose(y, want_y, atol=2e-4)
  np.testing.assert_allclose(updates["batch_stats"]["mean"], want_mean, atol=1e-5)
  np.testing.assert_allclose(updates["batch_stats"]["var"], want_var, atol=1e-4)


def test_batchnorm_gradients_match_autodiff():
  jax.config.update("jax_enable_x64", True)
  try:
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(4, 4, 4, 32)))
    scale, bias = jnp.asarray(rng.normal(size=32)), jnp.asarray(rng.normal(size=32))
    target = jnp.asarray(rng.normal(size=x.shape))

    def direct(x, scale, bias):
      mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
      return (x - mean) / jnp.sqrt(var + 1e-5) * scale + bias

    got = jax.grad(lambda *a: jnp.sum(layers_cpu.batch_norm_train(*a, 1e-5)[0] * target),
                   (0, 1, 2))(x, scale, bias)
    want = jax.grad(lambda *a: jnp.sum(direct(*a) * target), (0, 1, 2))(x, scale, bias)
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, atol=1e-10)
  finally:
    jax.config.update("jax_enable_x64", False)


def test_batchnorm_eval_mode_uses_running_statistics():
  x = jnp.ones((2, 2, 2, 3))
  bn = layers.BatchNorm(train=False)
  variables = bn.init(jax.random.PRNGKey(0), x)
  variables = {"params": {"scale": jnp.full(3, 2.0), "bias": jnp.full(3, 0.5)},
               "batch_stats": {"mean": jnp.full(3, 3.0), "var": jnp.full(3, 4.0)}}
  np.testing.assert_allclose(bn.apply(variables, x), (1 - 3) / np.sqrt(4 + 1e-5) * 2 + 0.5, rtol=1e-6)


def test_add_bias_gradient_is_the_sum_over_all_but_channels():
  rng = np.random.default_rng(1)
  y, b = (jnp.asarray(rng.normal(size=shape), jnp.float32) for shape in ((2, 3, 5, 4), (4,)))
  dy = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
  got = jax.vjp(layers_cpu.add_bias, y, b)[1](dy)
  np.testing.assert_allclose(layers_cpu.add_bias(y, b), y + b)
  np.testing.assert_allclose(got[0], dy)
  np.testing.assert_allclose(got[1], dy.sum((0, 1, 2)), rtol=1e-5, atol=1e-5)


def test_instance_norm_values_and_gradient_match_the_plain_formula():
  def plain(x, eps=1e-5):
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True) + eps)

  rng = np.random.default_rng(0)
  x = (rng.normal(size=(2, 5, 7, 3)) * 3 + 10).astype(np.float32)  # a large mean: no cancellation
  dy = rng.normal(size=x.shape).astype(np.float32)
  np.testing.assert_allclose(layers_cpu.instance_norm(x), plain(x), atol=1e-5)
  got = jax.vjp(layers_cpu.instance_norm, x)[1](dy)[0]
  want = jax.vjp(plain, x)[1](dy)[0]
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_init_weights_is_the_references_normal_init():
  shapes = {"conv": {"kernel": jax.ShapeDtypeStruct((4, 4, 64, 128), jnp.float32),
                     "bias": jax.ShapeDtypeStruct((128,), jnp.float32)},
            "norm": {"scale": jax.ShapeDtypeStruct((4096,), jnp.float32)}}
  params = jax.jit(lambda k: layers.init_weights(shapes, k))(jax.random.PRNGKey(0))
  kernel = np.asarray(params["conv"]["kernel"])
  assert kernel.shape == (4, 4, 64, 128)
  assert abs(kernel.mean()) < 1e-3 and abs(kernel.std() - 0.02) < 1e-3
  np.testing.assert_array_equal(params["conv"]["bias"], np.zeros(128))
  assert abs(np.asarray(params["norm"]["scale"]).mean() - 1) < 2e-3
  other = layers.init_weights(shapes, jax.random.PRNGKey(1))
  assert not np.array_equal(other["conv"]["kernel"], kernel)
