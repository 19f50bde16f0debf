"""The convolutional conditional GAN on MNIST (cDCGAN).

  python -m jaxgan.main --config configs/cdcgan_mnist.py --workdir runs/cdcgan_mnist \
      --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.evaluate --workdir runs/cdcgan_mnist

The MNIST DCGAN of configs/dcgan_mnist.py made conditional (jaxgan/models/dcgan.py):
G reads z concatenated with the one-hot label (110 inputs), D reads the image with 10
label maps as extra input channels. Non-saturating BCE, Adam(2e-4, 0.5, 0.999). Batch
64 and 5 epochs (4687 steps): the budget shared by the four models of the README's
conditional-GAN comparison.
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "dcgan_mnist.py")
  config.model.num_classes = 10
  config.batch_size = 64
  config.num_train_steps = 5 * 60_000 // 64  # 5 epochs
  config.sample_every_steps = 500
  config.checkpoint_every_steps = 1000
  config.num_grid_images = 100  # a row per digit, 10 columns of fixed noise
  return config
