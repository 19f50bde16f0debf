"""The U-Net generator and the PatchGAN equal junyanz/pytorch-CycleGAN-and-pix2pix's:
parameter counts, receptive fields, every feature-map shape and, when torch is
installed, the outputs of the reference networks (tests/torch_reference/torch_pix2pix.py)
given the same weights."""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from jaxgan import layers, models
from jaxgan.config import ConfigError
from jaxgan.models.patchgan import output_size, receptive_field


def count(variables):
  return sum(x.size for x in jax.tree.leaves(variables["params"]))


def abstract_init(module, shape):
  x = jnp.zeros(shape)
  return jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x, train=False))


def numpy_init(module, shape, seed=0):
  """Variables drawn with NumPy as the reference initialises them (kernels N(0, 0.02),
  norm scales 1, biases 0, running statistics 0 and 1): values without compiling JAX's
  random number generator for every parameter shape."""
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = jax.tree_util.keystr(path)
    if "kernel" in name:
      return rng.normal(0.0, 0.02, leaf.shape).astype(np.float32)
    return np.full(leaf.shape, 1.0 if ("scale" in name or "'var'" in name) else 0.0, np.float32)

  return jax.tree_util.tree_map_with_path(draw, abstract_init(module, shape))


@pytest.mark.parametrize("name,size,params", [
    ("unet_256", 256, 54_413_955),   # the reference's count (torch, ngf 64, BatchNorm)
    ("unet_128", 128, 41_828_995),
])
def test_unet_parameter_counts(name, size, params):
  assert count(abstract_init(models.create(name), (1, size, size, 3))) == params


@pytest.mark.parametrize("channels,norm,params", [
    (6, "batch", 2_768_705),     # pix2pix: D(concat(input, output)), BatchNorm
    (3, "instance", 2_764_737),  # CycleGAN: D(image), InstanceNorm (conv biases instead)
])
def test_patch_discriminator_parameter_counts(channels, norm, params):
  d = models.create("patch_discriminator", norm=norm)
  variables = abstract_init(d, (1, 256, 256, channels))
  assert count(variables) == params
  assert ("batch_stats" in variables) == (norm == "batch")


def test_receptive_fields():
  assert [receptive_field(n) for n in range(1, 7)] == [16, 34, 70, 142, 286, 574]


@pytest.mark.parametrize("n_layers,size,out", [(3, 256, 30), (3, 128, 14), (1, 256, 126),
                                               (5, 256, 6)])
def test_patch_map_size(n_layers, size, out):
  d = models.create("patch_discriminator", n_layers=n_layers, ndf=4)
  x = jnp.zeros((2, size, size, 6))
  logits = jax.eval_shape(lambda v: d.apply(v, x, train=False), abstract_init(d, x.shape))
  assert logits.shape == (2, out, out) and output_size(size, n_layers) == out


# unet_256 on a 256x256x3 image, NHWC. encoder_i: level i's down path; decoder_i: level i's
# block output, [encoder_{i-1}, up_i] joined. decoder_3 is the reference's [1, 512, 32, 32].
UNET_256_MAPS = {
    "encoder_0": (128, 128, 64), "encoder_1": (64, 64, 128), "encoder_2": (32, 32, 256),
    "encoder_3": (16, 16, 512), "encoder_4": (8, 8, 512), "encoder_5": (4, 4, 512),
    "encoder_6": (2, 2, 512), "encoder_7": (1, 1, 512),
    "decoder_7": (2, 2, 1024), "decoder_6": (4, 4, 1024), "decoder_5": (8, 8, 1024),
    "decoder_4": (16, 16, 1024), "decoder_3": (32, 32, 512), "decoder_2": (64, 64, 256),
    "decoder_1": (128, 128, 128),
}


def test_every_unet_256_feature_map_shape():
  g = models.create("unet_256")
  x = jnp.zeros((1, 256, 256, 3))
  out, state = jax.eval_shape(
      lambda v: g.apply(v, x, train=False, mutable=["intermediates"]), abstract_init(g, x.shape))
  maps = {k: v[0].shape[1:] for k, v in state["intermediates"].items()}
  assert maps == UNET_256_MAPS
  assert out.shape == (1, 256, 256, 3)


def test_dropout_only_in_the_three_middle_decoder_levels():
  g = models.create("unet_256", ngf=2)
  x = jax.random.uniform(jax.random.PRNGKey(0), (1, 256, 256, 3), minval=-1, maxval=1)
  variables = numpy_init(g, x.shape)

  @jax.jit
  def maps(rng):
    _, state = g.apply(variables, x, train=True, rngs={"dropout": rng},
                       mutable=["intermediates", "batch_stats"])
    return {k: v[0] for k, v in state["intermediates"].items()}

  a, b = jax.device_get((maps(jax.random.PRNGKey(2)), maps(jax.random.PRNGKey(3))))
  changed = sorted(k for k in a if not np.array_equal(a[k], b[k]))
  # Dropout hits levels 4, 5, 6 (maps joined at 16x16, 8x8, 4x4); everything upstream of
  # level 6 in the decoder changes with it, nothing in the encoder or at level 7 does.
  assert changed == ["decoder_1", "decoder_2", "decoder_3", "decoder_4", "decoder_5",
                     "decoder_6"]
  for level in (4, 5, 6):  # half of the upsampled half is zeroed, the skip half never
    skip_channels = a[f"decoder_{level}"].shape[-1] // 2
    assert not np.array_equal(a[f"decoder_{level}"][..., skip_channels:],
                              b[f"decoder_{level}"][..., skip_channels:])
    np.testing.assert_array_equal(a[f"decoder_{level}"][..., :skip_channels],
                                  b[f"decoder_{level}"][..., :skip_channels])


def test_generator_range_and_wrong_sizes():
  g = models.create("unet_128", num_downs=5, ngf=2, dropout=0.0)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 32, 32, 3)) * 5
  variables = numpy_init(g, x.shape)
  y, _ = jax.jit(lambda v, x: g.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
  assert y.shape == x.shape and float(jnp.abs(y).max()) <= 1.0
  with pytest.raises(ConfigError, match="multiples of 128, got shape"):
    abstract_init(models.create("unet_128"), (1, 96, 96, 3))
  with pytest.raises(ConfigError, match="at least 5 levels"):
    abstract_init(models.create("unet_256", num_downs=4), (1, 16, 16, 3))
  with pytest.raises(ConfigError, match="PatchGAN needs images of at least 24x24"):
    abstract_init(models.create("patch_discriminator"), (1, 8, 8, 6))
  # The smallest input doubles per layer: a deep PatchGAN is named at once (a search up
  # from 1 took ~2^n steps, and hung bad_input_test's generated overrides at n_layers 127
  # or 300).
  with pytest.raises(ConfigError, match=f"at least {3 * 2 ** 40}x{3 * 2 ** 40}"):
    abstract_init(models.create("patch_discriminator", n_layers=40), (1, 256, 256, 6))
  with pytest.raises(ConfigError, match="unknown norm 'group'"):
    abstract_init(models.create("patch_discriminator", norm="group"), (1, 64, 64, 6))


def test_instance_norm_is_torch_instance_norm():
  rng = np.random.default_rng(0)
  x = rng.normal(3.0, 2.0, size=(2, 5, 4, 3)).astype(np.float32)
  mean = x.mean((1, 2), keepdims=True)
  want = (x - mean) / np.sqrt(x.var((1, 2), keepdims=True) + 1e-5)
  got = layers.InstanceNorm().apply({}, x)
  np.testing.assert_allclose(got, want, atol=1e-5)


# ---------------------------------------------------------------------------------------
# Against the PyTorch reference networks (skipped without torch, the `bench` extra).


def torch_reference(name="torch_pix2pix"):
  """(torch, tests/torch_reference/<name>.py as a module); the test is skipped without torch."""
  torch = pytest.importorskip("torch")
  spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "torch_reference"
                                                / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return torch, module


def conv_kernel(conv):
  w = conv.weight.detach().numpy()
  # Conv2d weight [out, in, h, w] -> HWIO; ConvTranspose2d [in, out, h, w] -> HWIO as well.
  return w.transpose(2, 3, 1, 0) if type(conv).__name__ == "Conv2d" else w.transpose(2, 3, 0, 1)


def port_conv(conv):
  p = {"kernel": conv_kernel(conv)}
  if conv.bias is not None:
    p["bias"] = conv.bias.detach().numpy()
  return p


def port_norm(norm):
  return {"scale": norm.weight.detach().numpy(), "bias": norm.bias.detach().numpy()}


def port_unet(net, num_downs):
  """The reference's nested blocks, outermost first, onto the flat names of UNetGenerator."""
  params, block = {}, net
  for level in range(num_downs):
    layers_ = list(block.model)
    convs = [m for m in layers_ if "Conv" in type(m).__name__]
    norms = [m for m in layers_ if "BatchNorm" in type(m).__name__]
    params[f"down_{level}"], params[f"up_{level}"] = port_conv(convs[0]), port_conv(convs[1])
    if level > 0:
      if level < num_downs - 1:
        params[f"down_norm_{level}"] = port_norm(norms[0])
      params[f"up_norm_{level}"] = port_norm(norms[-1])
    block = next((m for m in layers_ if type(m).__name__ == "UnetBlock"), None)
  return params


def test_unet_and_patchgan_equal_the_torch_reference():
  torch, ref = torch_reference()
  torch.manual_seed(0)
  num_downs, size = 5, 32
  net = ref.unet_generator(num_downs, ngf=8, use_dropout=False)
  disc = ref.patch_discriminator(6, ndf=8, n_layers=2)
  x = torch.rand(2, 3, size, size) * 2 - 1
  with torch.no_grad():  # train mode, as pix2pix runs both nets: batch statistics
    want_g = net(x).numpy().transpose(0, 2, 3, 1)
    want_d = disc(torch.cat([x, x], 1)).numpy()[:, 0]
  g = models.create("unet_256", num_downs=num_downs, ngf=8, dropout=0.0)
  x_nhwc = jnp.asarray(x.numpy().transpose(0, 2, 3, 1))
  g_vars = numpy_init(g, x_nhwc.shape)
  got_g, _ = g.apply({"params": port_unet(net, num_downs), "batch_stats": g_vars["batch_stats"]},
                     x_nhwc, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(got_g, want_g, atol=2e-5)

  d = models.create("patch_discriminator", ndf=8, n_layers=2)
  pair = jnp.concatenate([x_nhwc, x_nhwc], -1)
  d_vars = numpy_init(d, pair.shape)
  convs = [m for m in disc if type(m).__name__ == "Conv2d"]
  norms = [m for m in disc if type(m).__name__ == "BatchNorm2d"]
  d_params = {f"Conv_{i}": port_conv(c) for i, c in enumerate(convs)}
  d_params.update({f"BatchNorm_{i}": port_norm(n) for i, n in enumerate(norms)})
  assert jax.tree.structure(d_params) == jax.tree.structure(d_vars["params"])
  got_d, _ = d.apply({"params": d_params, "batch_stats": d_vars["batch_stats"]}, pair,
                     train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(got_d, want_d, atol=2e-5)
