"""The vanilla GAN on CelebA at 64x64: fully connected G and D (Goodfellow et al. 2014).

  python -m jaxgan.main --config configs/celeba_gan.py --workdir runs/celeba_gan

The MNIST vanilla GAN's networks (configs/gan_mnist.py; eriklindernoren/PyTorch-GAN
gan.py, jaxgan/models/mlp.py) with the image widened to 64x64x3 = 12,288 values: G 100 ->
128 -> 256 -> 512 -> 1024 -> 12,288, tanh (13,301,632 parameters), D 12,288 -> 512 -> 256
-> 1 (6,423,553). Non-saturating BCE, Adam(2e-4, 0.5, 0.999), batch 64.

Data, epochs, grids and checkpoints exactly as configs/celeba_dcgan.py (the same folder of
6,000 aligned crops resized and center-cropped to 64x64, a grid per epoch, the same
switch to TFDS `celeb_a`), so the two train on equal terms:

  python -m jaxgan.main --config configs/celeba_gan.py --workdir runs/celeba_gan_tfds \
      --config.data.name=celeb_a --config.data.path= --config.data.num_train_examples=162770

Measured (docs/experiments/celeba/README.md): 2 epochs (186 steps) trained in
198 s on a 2-core AMD EPYC VM shared with other jobs (plus 6 min 25 s of one-time folder
preparation); the grid after 2 epochs is grey with faint ghosts of one mean face.
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "celeba_dcgan.py")
  config.model.generator = "mlp_generator"
  config.model.discriminator = "mlp_discriminator"
  return config
