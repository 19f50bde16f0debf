"""The vanilla GAN on MNIST: fully connected G and D (Goodfellow et al. 2014).

  python -m jaxgan.main --config configs/gan_mnist.py --workdir runs/gan_mnist \
      --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.evaluate --workdir runs/gan_mnist

Networks of eriklindernoren/PyTorch-GAN gan.py (jaxgan/models/mlp.py): G 100 -> 128 ->
256 -> 512 -> 1024 -> 784 (1,510,032 parameters), D 784 -> 512 -> 256 -> 1 (533,505);
BCE loss, non-saturating for G, Adam(2e-4, 0.5, 0.999), batch 64 as the reference.
5 epochs (4687 steps), the budget of the README's conditional-GAN comparison: about
2 minutes on a 2-core CPU (the README gives the measured time and the digit metrics).
"""

from jaxgan.config import default_config


def get_config():
  config = default_config("gan")
  config.data.name = "mnist"
  config.data.image_size = 28
  config.data.channels = 1
  config.model.generator = "mlp_generator"
  config.model.discriminator = "mlp_discriminator"
  config.loss.name = "non_saturating"
  config.batch_size = 64
  config.num_train_steps = 5 * 60_000 // 64  # 5 epochs
  config.sample_every_steps = 500
  config.checkpoint_every_steps = 1000
  return config
