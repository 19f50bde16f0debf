"""DCGAN on the grumpy cats of CMU 16-726 "When Cats meet GANs" (DCGAN part), 64x64, with
the augmentation chosen by config.

  python -m jaxgan.main --config configs/dcgan_grumpycat.py --workdir runs/dcgan_grumpycat
  python -m jaxgan.main --config configs/dcgan_grumpycat.py --workdir runs/dcgan_grumpycat_deluxe \
      --config.augment.kind=deluxe
  python -m jaxgan.main --config configs/dcgan_grumpycat.py --workdir runs/dcgan_grumpycat_diffaug \
      --config.augment.kind=diffaugment --config.augment.policy=color,translation,cutout

Data: the folder of the course's 204 Grumpy Cat images (grumpifyBprocessed/, 64x64 PNG),
read as any folder of images (`--config.data.name=folder --config.data.path=DIR`,
jaxgan/datasets/folder.py). The default path is grumpifyCat/grumpifyBprocessed under
$JAXGAN_DATA_DIR (default ~/jaxgan_data); --config.data.path=DIR names the folder holding
the course's grumpifyBprocessed images (or any other folder of images).

The course's setting: its DCGenerator / DCDiscriminator at conv_dim 32 (jaxgan/models/
course_dcgan.py: 797,539 / 693,761 parameters), z of 100, batch 16, Adam(2e-4, 0.5, 0.999),
the least-squares loss (`lsgan`: MSE to 1 for real, to 0 for fake; the D loss is the sum of
the two terms, where some years of the course halve it). 500 epochs of 204 // 16 = 12 steps
(6,000 steps).

Augmentation (`config.augment`; jaxgan/augment.py, jaxgan/datasets/transforms.py):
- `none` (this file's default);
- `deluxe`: the course's deluxe preprocessing of the real images: resize to int(1.1 * 64)
  = 70 (bicubic), a random 64x64 crop, a random horizontal flip; add
  `--config.augment.color_jitter=true` for a mild random brightness, contrast and saturation;
- `diffaugment`: DiffAugment (Zhao et al. 2020) on real and generated images wherever D
  sees them, `--config.augment.policy` any comma-separated list of color, translation,
  cutout.

Hardware, wall time and the figure it reaches: not measured yet.
"""

from jaxgan.config import data_path, default_config


def get_config():
  config = default_config("gan")
  config.data.name = "folder"
  config.data.path = data_path("grumpifyCat", "grumpifyBprocessed")
  config.data.image_size = 64
  config.data.channels = 3
  config.model.generator = "course_dcgan_generator"
  config.model.discriminator = "course_dcgan_discriminator"
  config.model.latent_dim = 100
  config.model.ngf = config.model.ndf = 32  # the course's conv_dim
  config.loss.name = "lsgan"
  config.batch_size = 16
  config.num_train_steps = 500 * (204 // 16)
  config.log_every_steps = 12
  config.sample_every_steps = 600
  config.checkpoint_every_steps = 600
  config.num_grid_images = 64
  config.augment.kind = "none"
  return config
