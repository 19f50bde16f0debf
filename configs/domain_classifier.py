"""The domain classifier that judges CycleGAN translations (jaxgan/models/classifier.py:
`DomainClassifier`): domain A or domain B, trained on the real training images of both.

  python -m jaxgan.main --config configs/domain_classifier.py \
      --workdir ~/.cache/jaxgan/domain_classifier/unpaired_grumpifycat \
      --config.data.manual_dir=../shared/data/grumpifyCat
  python -m jaxgan.evaluate --workdir ~/.cache/jaxgan/domain_classifier/unpaired_grumpifycat

`python -m jaxgan.evaluate` on a CycleGAN run trains it on demand when it finds none (the
place: --classifier_dir, else ~/.cache/jaxgan/domain_classifier/<data set>, the data set's
name with / as _), with the run's data settings: `data.name`, `data_dir`, `manual_dir`,
the run's training phase as `trainA+trainB` (TFDS's labels: 0 = A, 1 = B) and its eval phase
for the accuracy; where the set has no test phase (the 64x64 sets), it trains on 80% of
each domain and its accuracy is measured on the other 20% (`jaxgan.evaluate.
classifier_splits`). Small CNN (4 conv + pool, global average, dropout 0.5) at 64x64 (larger
images are resized, bilinear with antialiasing; the evaluation resizes translations the
same way), Adam(1e-3, 0.9, 0.999), batch 32, 800 steps. Accuracy: see the README.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config("classifier")
  config.data.name = "unpaired/grumpifycat"   # set to the CycleGAN run's data set
  config.data.split = "trainA+trainB"         # both domains, labels 0 (A) and 1 (B)
  config.data.eval_split = "trainA+trainB"    # where `jaxgan.evaluate` measures accuracy
  config.data.image_size = 64
  config.data.channels = 3
  config.model.classifier = "domain_classifier"
  config.model.num_classes = 2
  config.batch_size = 32
  config.num_train_steps = 800
  config.num_grid_images = 0  # a classifier draws no samples
  config.log_every_steps = 50
  config.checkpoint_every_steps = 800
  config.optimizer.learning_rate = 1e-3
  config.optimizer.b1 = 0.9
  return config
