"""Class-conditional DDPM on MNIST sized for a 2-core CPU (classifier-free guidance).

  python -m jaxgan.main --config configs/ddpm_mnist_conditional_cpu.py \
      --workdir runs/ddpm_mnist_conditional_cpu --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.evaluate --workdir runs/ddpm_mnist_conditional_cpu --num 10000

configs/ddpm_mnist_cpu.py (width 16, one residual block per level, batch 64, 6,000 steps,
50-step DDIM) made conditional as configs/ddpm_mnist_conditional.py makes the
paper-sized one: the label embedding added to the time embedding (10 classes and a null
label), labels dropped with probability 0.1 in training, sampling guided at w = 2. A
guided sample costs two network passes a step. Its wall time and the accuracy and FID it
reaches are in docs/experiments/ddpm_mnist/README.md.
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "ddpm_mnist_cpu.py")
  config.model.num_classes = 10
  config.diffusion.p_uncond = 0.1  # Ho and Salimans 2022, sec. 4
  config.sampling.guidance = 2.0
  config.num_grid_images = 100  # a row per digit, 10 columns of fixed x_T
  return config
