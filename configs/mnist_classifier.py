"""The MNIST classifier that judges generated digits (jaxgan/models/classifier.py).

  python -m jaxgan.main --config configs/mnist_classifier.py \
      --workdir ~/.cache/jaxgan/mnist_classifier --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.evaluate --workdir ~/.cache/jaxgan/mnist_classifier   # test accuracy

`python -m jaxgan.evaluate` trains it there on demand when a digit evaluation needs it
and finds none (the place: --classifier_dir, else $JAXGAN_CLASSIFIER_DIR, else
~/.cache/jaxgan/mnist_classifier). Small CNN (2 conv + pool, 128-d features, dropout
0.5), Adam(1e-3, 0.9, 0.999), batch 128, 6 epochs (2812 steps). Expected: >= 99.0% test
accuracy (the README gives the measured figure and time).
"""

from jaxgan.config import default_config


def get_config():
  config = default_config("classifier")
  config.data.name = "mnist"
  config.data.image_size = 28
  config.data.channels = 1
  config.model.classifier = "mnist_classifier"
  config.model.num_classes = 10
  config.batch_size = 128
  config.num_train_steps = 6 * 60_000 // 128  # 6 epochs
  config.num_grid_images = 0  # a classifier draws no samples
  config.log_every_steps = 100
  config.checkpoint_every_steps = 2812
  config.optimizer.learning_rate = 1e-3
  config.optimizer.b1 = 0.9
  return config
