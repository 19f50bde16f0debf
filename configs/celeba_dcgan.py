"""DCGAN with the paper's dense projection on CelebA at 64x64 (Radford et al. 2016, Fig. 1).

  python -m jaxgan.main --config configs/celeba_dcgan.py --workdir runs/celeba_dcgan

G: z (100) -> dense -> 4x4x1024 -> BatchNorm, ReLU -> stride-2 4x4 transposed convolutions
to 8x8x512, 16x16x256, 32x32x128, 64x64x3, tanh; D the mirror (LeakyReLU 0.2, BatchNorm
but on the first layer) ending in a dense layer to one logit (jaxgan/models/
dcgan_projection.py: 12,658,432 / 11,036,160 parameters; N(0, 0.02) init;
`--config.model.generator=dcgan_projection_generator_5x5
--config.model.discriminator=dcgan_projection_discriminator_5x5` for the figure's 5x5
kernels). Non-saturating BCE, Adam(2e-4, 0.5, 0.999) as the paper; batch 64 (the paper's
is 128) to fit a CPU budget.

Data: a folder of CelebA's aligned crops (178x218 JPEGs), by default the 6,000-image
subset in celeba_subset/img_align_celeba under $JAXGAN_DATA_DIR (default ~/jaxgan_data),
or `--config.data.path=DIR`, e.g. the full `img_align_celeba/`.
Each image is resized (short side to 64) and center-cropped to 64x64, as the PyTorch DCGAN
tutorial's `Resize(64)` + `CenterCrop(64)` (the loader's `center_square`): the whole
178-wide face with some hair and background, not the tighter 108x108 center crop of some
TensorFlow ports. With TFDS `celeb_a` instead (its archives downloaded, or in
`--config.data.manual_dir`):

  python -m jaxgan.main --config configs/celeba_dcgan.py --workdir runs/celeba_dcgan_tfds \
      --config.data.name=celeb_a --config.data.path= --config.data.num_train_examples=162770

An epoch is `data.num_train_examples // batch_size` steps (93 for the folder at batch 64);
a grid from the fixed noise and a checkpoint are written every epoch, and the run lasts
`num_epochs` epochs (each follows --config.batch_size, --config.num_epochs and
--config.data.num_train_examples overrides).

Measured (docs/experiments/celeba/README.md): 2 epochs (186 steps) on the
folder took 45 min 24 s wall (44 min training, 14.2 s/step) on a 2-core AMD EPYC VM shared
with other jobs (load average 14-19); the grid after 2 epochs shows blurred but
recognisable faces of little variety. No FID: the repo has no face metric.
"""

from jaxgan.config import data_path, default_config


def celeba_data(config, num_epochs: int):
  """CelebA at 64x64 from the subset's folder, and the epoch-based step counts."""
  config.data.name = "folder"
  config.data.path = data_path("celeba_subset", "img_align_celeba")
  config.data.image_size = 64
  config.data.channels = 3
  config.data.num_train_examples = 6_000  # an epoch; 162_770 for TFDS celeb_a's train split
  config.num_epochs = num_epochs
  # Follow --config.batch_size, --config.num_epochs and num_train_examples overrides.
  steps_per_epoch = config.data.get_ref("num_train_examples") // config.get_ref("batch_size")
  config.num_train_steps = config.get_ref("num_epochs") * steps_per_epoch
  config.sample_every_steps = steps_per_epoch  # a grid per epoch
  config.checkpoint_every_steps = steps_per_epoch
  config.log_every_steps = 5
  config.num_grid_images = 64
  return config


def get_config():
  config = default_config("gan")
  config.model.generator = "dcgan_projection_generator"
  config.model.discriminator = "dcgan_projection_discriminator"
  config.model.latent_dim = 100
  config.model.ngf = config.model.ndf = 128  # 8 * 128 = the figure's 1024 channels at 4x4
  config.loss.name = "non_saturating"
  config.batch_size = 64
  return celeba_data(config, num_epochs=2)
