"""DCGAN at 64x64 on CelebA: the PyTorch DCGAN tutorial, exactly.

  python -m jaxgan.main --config configs/dcgan64.py --workdir runs/dcgan64

G and D are the tutorial's (nz=100, ngf=ndf=64; 3,576,704 and 2,765,568 parameters),
images resized to 64 and center-cropped, batch 128, Adam(2e-4, 0.5, 0.999),
non-saturating BCE, 5 epochs of the 162,770 training faces (6358 steps).
Data comes from TFDS `celeb_a` (which needs its archives downloaded or placed in
`--config.data.manual_dir`).
"""

from jaxgan.config import default_config


def get_config():
  config = default_config("gan")
  config.data.name = "celeb_a"
  config.data.image_size = 64
  config.data.channels = 3
  config.batch_size = 128
  config.num_train_steps = 5 * 162_770 // 128  # 5 epochs
  config.checkpoint_every_steps = 1000
  config.sample_every_steps = 500
  return config
