"""The fully connected conditional GAN on MNIST (Mirza and Osindero 2014).

  python -m jaxgan.main --config configs/cgan_mnist.py --workdir runs/cgan_mnist \
      --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.evaluate --workdir runs/cgan_mnist
  python -m jaxgan.sample --workdir runs/cgan_mnist --label 7 --num 64 --grid sevens.png

Networks of eriklindernoren/PyTorch-GAN cgan.py (jaxgan/models/mlp.py): G reads z
concatenated with a learned 10-d label embedding (1,511,412 parameters); D reads the
flattened image concatenated with its own label embedding, 794 -> 512 -> 512 -> 512 -> 1
with dropout 0.4 (932,965). LSGAN (MSE) loss as the reference, Adam(2e-4, 0.5, 0.999),
batch 64. 5 epochs (4687 steps), the README comparison's budget.
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "gan_mnist.py")
  config.model.num_classes = 10
  config.model.discriminator = "cgan_mlp_discriminator"
  config.loss.name = "lsgan"
  config.num_grid_images = 100  # a row per digit, 10 columns of fixed noise
  return config
