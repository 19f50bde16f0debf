"""A conditional GAN whose discriminator also classifies: 10 digits + "fake".

  python -m jaxgan.main --config configs/cgan_multiclass_mnist.py \
      --workdir runs/cgan_multiclass_mnist --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.evaluate --workdir runs/cgan_multiclass_mnist

G is the cDCGAN generator (configs/cdcgan_mnist.py). D is the MNIST DCGAN
discriminator with 11 outputs and no label input, trained with categorical
cross-entropy: real images to their digit, generated images to "fake" (class 10);
G is trained so that D assigns its image to the digit it was asked for (the `multiclass`
loss, jaxgan/losses.py; Salimans et al. 2016, sec. 5). The claim to check: such a D
leaves less room for ambiguous digits (3 vs 7, 4 vs 9) than a real/fake D that reads
the label. Same budget as the other three models of the comparison.
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "cdcgan_mnist.py")
  config.loss.name = "multiclass"
  return config
