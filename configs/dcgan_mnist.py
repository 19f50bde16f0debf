"""DCGAN on MNIST 28x28 (Radford et al. 2015; the nets of jaxgan/models/dcgan.py).

  python -m jaxgan.main --config configs/dcgan_mnist.py --workdir runs/dcgan_mnist

Offline, with the four MNIST .gz files in a folder:

  python -m jaxgan.main --config configs/dcgan_mnist.py --workdir runs/dcgan_mnist \
      --config.data.manual_dir=../shared/data/mnist

5 epochs at batch 128 (2343 steps): non-saturating BCE loss, Adam(2e-4, 0.5, 0.999).
Wall time and the resulting grid on a 2-core CPU: see the README ("A real run").
"""

from jaxgan.config import default_config


def get_config():
  config = default_config("gan")
  config.data.name = "mnist"
  config.data.image_size = 28
  config.data.channels = 1
  config.batch_size = 128
  config.num_train_steps = 5 * 60_000 // 128  # 5 epochs
  config.sample_every_steps = 250
  return config
