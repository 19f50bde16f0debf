"""DCGAN shapes and parameter counts equal the PyTorch references'."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import models
from jaxgan.config import ConfigError


def count(variables):
  return sum(x.size for x in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize("size,channels,g_params,d_params", [
    (64, 3, 3_576_704, 2_765_568),   # the PyTorch DCGAN tutorial's numbers
    (28, 1, 837_504, 431_872),
])
def test_dcgan_shapes_and_counts(size, channels, g_params, d_params):
  g = models.create("dcgan_generator", image_size=size, channels=channels)
  d = models.create("dcgan_discriminator", image_size=size)
  z = jnp.zeros((2, 100))
  g_vars = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), z, train=False))
  images = jax.eval_shape(lambda v: g.apply(v, z, train=False), g_vars)
  assert images.shape == (2, size, size, channels)
  d_vars = jax.eval_shape(lambda: d.init(jax.random.PRNGKey(0), jnp.zeros(images.shape), train=False))
  logits = jax.eval_shape(lambda v: d.apply(v, jnp.zeros(images.shape), train=False), d_vars)
  assert logits.shape == (2,)
  assert count(g_vars) == g_params
  assert count(d_vars) == d_params


def test_generator_output_in_tanh_range_and_batchnorm_state():
  g = models.create("dcgan_generator", image_size=28, channels=1, ngf=8)
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 100))
  variables = g.init(jax.random.PRNGKey(1), z, train=False)
  images, updates = g.apply(variables, z * 50, train=True, mutable=["batch_stats"])
  assert float(jnp.abs(images).max()) <= 1.0
  assert set(updates["batch_stats"]) == {"BatchNorm_0", "BatchNorm_1", "BatchNorm_2"}


def test_wrong_image_shape_is_a_clear_error():
  d = models.create("dcgan_discriminator", image_size=64, ndf=8)
  with pytest.raises(ConfigError, match="64x64 images got shape"):
    d.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))


def test_unknown_model_and_size():
  with pytest.raises(ConfigError, match="unknown model"):
    models.create("stylegan")
  with pytest.raises(ConfigError, match="image sizes"):
    models.create("dcgan_generator", image_size=32).init(jax.random.PRNGKey(0), jnp.zeros((1, 100)))


def test_course_dcgan_shapes_counts_and_layers():
  """The CMU 16-726 course's DCGenerator / DCDiscriminator at conv_dim 32 (course_dcgan.py):
  G 100*256*16 + 256*128*9 + 128*64*9 + 64*32*9 + (32*3*9 + 3), D 3*32*16 + 32*64*16 +
  64*128*16 + 128*256*16 + (256*16 + 1); biases only on the last layers; PyTorch's
  default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  g = models.create("course_dcgan_generator", image_size=64, channels=3, ngf=32)
  d = models.create("course_dcgan_discriminator", image_size=64, ndf=32)
  z = jnp.ones((2, 100))
  g_vars = g.init(jax.random.PRNGKey(0), z, train=False)
  images = g.apply(g_vars, z)
  assert images.shape == (2, 64, 64, 3) and float(jnp.abs(images).max()) <= 1
  d_vars = d.init(jax.random.PRNGKey(0), images, train=False)
  assert d.apply(d_vars, images).shape == (2,)
  assert count(g_vars) == 797_539 == 100*256*16 + 256*128*9 + 128*64*9 + 64*32*9 + 32*3*9 + 3
  assert count(d_vars) == 693_761 == 3*32*16 + 32*64*16 + 64*128*16 + 128*256*16 + 256*16 + 1
  assert set(g_vars) == {"params"} and set(d_vars) == {"params"}  # InstanceNorm: no state
  biased = {name for name, p in {**g_vars["params"], **d_vars["params"]}.items() if "bias" in p}
  assert biased == {"up_conv5", "conv5"}
  kernel = g_vars["params"]["up_conv2"]["kernel"]  # fan_in 256 * 3 * 3
  assert 0.8 / 48 < float(jnp.abs(kernel).max()) <= 1 / 48
  with pytest.raises(ConfigError, match="defined for 64x64 images, not 32"):
    models.create("course_dcgan_generator", image_size=32).init(jax.random.PRNGKey(0), z)


def test_course_dcgan_equals_a_torch_port_of_the_course_nets():
  """The course's `up_conv` (nn.Upsample nearest x2, Conv2d, InstanceNorm2d, ReLU) and
  `conv` (Conv2d, InstanceNorm2d, ReLU) stacked as its DCGenerator / DCDiscriminator, in
  torch, with the same weights: the same outputs (skipped without torch)."""
  torch = pytest.importorskip("torch")
  nn = torch.nn
  torch.manual_seed(0)
  cd, nz = 4, 10

  def block(cin, cout, k, s, p, last, up):
    layers = ([nn.Upsample(scale_factor=2, mode="nearest")] if up else [])
    layers.append(nn.Conv2d(cin, cout, k, s, p, bias=last))
    return layers + ([] if last else [nn.InstanceNorm2d(cout), nn.ReLU()])

  g_ref = nn.Sequential(*block(nz, 8 * cd, 4, 1, 3, False, False),
                        *block(8 * cd, 4 * cd, 3, 1, 1, False, True),
                        *block(4 * cd, 2 * cd, 3, 1, 1, False, True),
                        *block(2 * cd, cd, 3, 1, 1, False, True),
                        *block(cd, 3, 3, 1, 1, True, True), nn.Tanh())
  d_ref = nn.Sequential(*block(3, cd, 4, 2, 1, False, False),
                        *block(cd, 2 * cd, 4, 2, 1, False, False),
                        *block(2 * cd, 4 * cd, 4, 2, 1, False, False),
                        *block(4 * cd, 8 * cd, 4, 2, 1, False, False),
                        *block(8 * cd, 1, 4, 1, 0, True, False))

  def port(net, names):
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    params = {}
    for name, c in zip(names, convs):
      params[name] = {"kernel": c.weight.detach().numpy().transpose(2, 3, 1, 0)}
      if c.bias is not None:
        params[name]["bias"] = c.bias.detach().numpy()
    return {"params": params}

  z = torch.randn(2, nz)
  with torch.no_grad():
    want_images = g_ref(z.view(2, nz, 1, 1))
    want_logits = d_ref(want_images).view(2)
  g = models.create("course_dcgan_generator", channels=3, ngf=cd)
  d = models.create("course_dcgan_discriminator", ndf=cd)
  images = g.apply(port(g_ref, [f"up_conv{i}" for i in range(1, 6)]), jnp.asarray(z.numpy()))
  np.testing.assert_allclose(images, want_images.numpy().transpose(0, 2, 3, 1), atol=2e-5)
  logits = d.apply(port(d_ref, [f"conv{i}" for i in range(1, 6)]), images)
  np.testing.assert_allclose(logits, want_logits.numpy(), atol=2e-5)
