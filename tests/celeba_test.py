"""CelebA at 64x64 (configs/celeba_gan.py, configs/celeba_dcgan.py): the vanilla MLP GAN
and the paper's dense-projection DCGAN (jaxgan/models/dcgan_projection.py), their shapes
and parameter counts, the projection's equivalence to the tutorial's 1x1 transposed
convolution, and an epoch of each config on a mock folder of JPEGs (no real data)."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from jaxgan import config as config_lib, models, train
from jaxgan.config import ConfigError


def count(variables):
  return sum(x.size for x in jax.tree.leaves(variables["params"]))


def shapes(module, x):
  """Abstract variables, and the output's shape, of `module` on an input like `x`."""
  variables = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x, train=False))
  return variables, jax.eval_shape(lambda v: module.apply(v, x, train=False), variables).shape


# By hand, ngf = ndf = 128 (widths 1024, 512, 256, 128), z of 100, 3 channels; no biases,
# BatchNorm 2 parameters (scale, bias) per channel.
# G: dense 100 * (4*4*1024) = 1,638,400; transposed convs k*k*(1024*512 + 512*256 +
#    256*128 + 128*3) = k*k * 688,512 (4x4: 11,016,192; 5x5: 17,212,800); BatchNorm
#    2 * (1024 + 512 + 256 + 128) = 3,840. 4x4: 12,658,432; 5x5: 18,855,040.
# D: convs k*k*(3*128 + 128*256 + 256*512 + 512*1024) = k*k * 688,512 (the same sum);
#    dense 4*4*1024 * 1 = 16,384; BatchNorm 2 * (256 + 512 + 1024) = 3,584 (none on the
#    first layer). 4x4: 11,036,160; 5x5: 17,232,768.
@pytest.mark.parametrize("suffix,g_params,d_params", [
    ("", 1_638_400 + 16 * 688_512 + 3_840, 16 * 688_512 + 16_384 + 3_584),
    ("_5x5", 1_638_400 + 25 * 688_512 + 3_840, 25 * 688_512 + 16_384 + 3_584),
])
def test_dense_projection_dcgan_shapes_and_counts(suffix, g_params, d_params):
  g = models.create("dcgan_projection_generator" + suffix, "noise-to-image generator",
                    image_size=64, channels=3, ngf=128)
  d = models.create("dcgan_projection_discriminator" + suffix, "image discriminator",
                    image_size=64, ndf=128)
  g_vars, image_shape = shapes(g, jnp.zeros((2, 100)))
  d_vars, logit_shape = shapes(d, jnp.zeros(image_shape))
  assert image_shape == (2, 64, 64, 3) and logit_shape == (2,)
  assert (count(g_vars), count(d_vars)) == (g_params, d_params)
  assert g_params == (12_658_432 if not suffix else 18_855_040)
  assert d_params == (11_036_160 if not suffix else 17_232_768)
  # z is projected by a dense layer (no bias) into a 4x4x1024 tensor, then BatchNorm.
  assert g_vars["params"]["projection"]["kernel"].shape == (100, 4 * 4 * 1024)
  assert "bias" not in g_vars["params"]["projection"]
  _, state = jax.eval_shape(lambda v: g.apply(v, jnp.zeros((2, 100)), train=False,
                                              capture_intermediates=True), g_vars)
  inter = state["intermediates"]
  assert inter["BatchNorm_0"]["__call__"][0].shape == (2, 4, 4, 1024)
  assert [inter[f"ConvTranspose_{i}"]["__call__"][0].shape[1:] for i in range(4)] == [
      (8, 8, 512), (16, 16, 256), (32, 32, 128), (64, 64, 3)]
  assert d_vars["params"]["logit"]["kernel"].shape == (4 * 4 * 1024, 1)
  assert "BatchNorm_2" in d_vars["params"] and "BatchNorm_3" not in d_vars["params"]


def test_vanilla_mlp_gan_at_64x64x3_shapes_and_counts():
  """By hand: G 100*128+128 + 128*256+256 + 256*512+512 + 512*1024+1024 + 1024*12288+12288
  + BatchNorm 2*(256+512+1024); D 12288*512+512 + 512*256+256 + 256+1."""
  g = models.create("mlp_generator", image_size=64, channels=3)
  d = models.create("mlp_discriminator", image_size=64)
  g_vars, image_shape = shapes(g, jnp.zeros((2, 100)))
  d_vars, logit_shape = shapes(d, jnp.zeros(image_shape))
  assert image_shape == (2, 64, 64, 3) and logit_shape == (2,)
  assert count(g_vars) == 13_301_632 == (100*128 + 128 + 128*256 + 256 + 256*512 + 512
                                         + 512*1024 + 1024 + 1024*12288 + 12288
                                         + 2 * (256 + 512 + 1024))
  assert count(d_vars) == 6_423_553 == 12288*512 + 512 + 512*256 + 256 + 256 + 1


def test_init_is_normal_002_and_bad_use_is_one_line():
  g = models.create("dcgan_projection_generator", image_size=64, channels=3, ngf=16)
  variables = g.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)
  for name in ("projection", "ConvTranspose_0", "ConvTranspose_3"):
    kernel = np.asarray(variables["params"][name]["kernel"])
    assert abs(kernel.mean()) < 2e-3 and 0.018 < kernel.std() < 0.022, name
  with pytest.raises(ConfigError, match="defined for 64x64 images, not 32"):
    models.create("dcgan_projection_generator", image_size=32).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 100)))
  with pytest.raises(ConfigError, match="64x64 images got shape"):
    models.create("dcgan_projection_discriminator", ndf=4).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 3)))


def test_4x4_nets_compute_the_tutorial_nets_at_the_same_width():
  """The dense projection is the tutorial's 4x4 transposed convolution of a 1x1 input, and
  D's dense logit its last 4x4 valid convolution: with the weights ported, the outputs
  (training-mode BatchNorm) are equal."""
  width = 8
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 100))
  tutorial_g = models.create("dcgan_generator", image_size=64, channels=3, ngf=width)
  paper_g = models.create("dcgan_projection_generator", image_size=64, channels=3, ngf=width)
  t = tutorial_g.init(jax.random.PRNGKey(1), z, train=False)["params"]
  kernel = t["ConvTranspose_0"]["kernel"]  # [4, 4, 100, 8 * width], HWIO
  ported = {"projection": {"kernel": kernel.transpose(2, 0, 1, 3).reshape(100, -1)},
            **{f"ConvTranspose_{i}": t[f"ConvTranspose_{i + 1}"] for i in range(4)},
            **{f"BatchNorm_{i}": t[f"BatchNorm_{i}"] for i in range(4)}}
  stats = jax.tree.map(jnp.zeros_like, paper_g.init(jax.random.PRNGKey(2), z)["batch_stats"])
  run = lambda module, params: module.apply({"params": params, "batch_stats": stats}, z,
                                            train=True, mutable=["batch_stats"])[0]
  images = run(tutorial_g, t)
  np.testing.assert_allclose(run(paper_g, ported), images, atol=1e-5)

  tutorial_d = models.create("dcgan_discriminator", image_size=64, ndf=width)
  paper_d = models.create("dcgan_projection_discriminator", image_size=64, ndf=width)
  t = tutorial_d.init(jax.random.PRNGKey(3), images, train=False)["params"]
  ported = {**{f"Conv_{i}": t[f"Conv_{i}"] for i in range(4)},
            **{f"BatchNorm_{i}": t[f"BatchNorm_{i}"] for i in range(3)},
            "logit": {"kernel": t["Conv_4"]["kernel"].reshape(-1, 1)}}
  stats = jax.tree.map(jnp.zeros_like, paper_d.init(jax.random.PRNGKey(4), images)["batch_stats"])
  run = lambda module, params: module.apply({"params": params, "batch_stats": stats}, images,
                                            train=True, mutable=["batch_stats"])[0]
  np.testing.assert_allclose(run(paper_d, ported), run(tutorial_d, t), rtol=1e-4, atol=1e-5)


def write_faces(folder, count=8):
  """`count` random 178x218 JPEGs, the size of CelebA's aligned crops."""
  folder.mkdir(parents=True)
  rng = np.random.default_rng(0)
  for i in range(count):
    Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(
        folder / f"{i + 1:06d}.jpg")


@pytest.mark.parametrize("name", ["celeba_gan", "celeba_dcgan"])
def test_an_epoch_of_each_config_on_a_mock_folder(name, tmp_path):
  """8 images at batch 4: an epoch is 2 steps, with its grid and checkpoint."""
  config = config_lib.load(str(REPO / "configs" / f"{name}.py"))
  write_faces(tmp_path / "faces")
  config.data.path = str(tmp_path / "faces")
  config.data.data_dir = str(tmp_path / "tfds")
  config.data.num_train_examples = 8
  config.batch_size = 4
  config.num_epochs = 1
  config.model.ngf = config.model.ndf = 4
  config.log_every_steps = 1
  config.num_grid_images = 4
  # The step counts follow the overrides: one epoch of 8 // 4 steps, a grid and a
  # checkpoint at its end.
  assert config.num_train_steps == config.sample_every_steps == config.checkpoint_every_steps == 2
  state = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert int(state.step) == 2
  for path in ["samples/step_000000.png", "samples/step_000002.png", "checkpoints/2",
               "losses.png", "real_vs_fake.png"]:
    assert (tmp_path / "run" / path).exists(), path
  assert not (tmp_path / "run" / "samples" / "step_000001.png").exists()
  params = json.loads((tmp_path / "run" / "params.json").read_text())
  expected = {"celeba_gan": (13_301_632, 6_423_553),  # the MLPs do not take ngf
              "celeba_dcgan": (100 * 16 * 32 + 16 * (32 * 16 + 16 * 8 + 8 * 4 + 4 * 3)
                               + 2 * (32 + 16 + 8 + 4),
                               16 * (3 * 4 + 4 * 8 + 8 * 16 + 16 * 32) + 16 * 32
                               + 2 * (8 + 16 + 32))}[name]
  assert (params["generator"], params["discriminator"]) == expected
