"""Class-conditional DDPM on MNIST with classifier-free guidance (Ho and Salimans 2022).

  python -m jaxgan.main --config configs/ddpm_mnist_conditional.py \
      --workdir runs/ddpm_mnist_conditional --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.sample --workdir runs/ddpm_mnist_conditional --label 7 --num 64 --grid sevens.png
  python -m jaxgan.sample --workdir runs/ddpm_mnist_conditional --guidance 0 --grid unguided.png
  python -m jaxgan.evaluate --workdir runs/ddpm_mnist_conditional --sampler ddim --steps 50

configs/ddpm_mnist.py with the label embedding added to the time embedding (10 classes
and a null label), labels dropped with probability 0.1 in training, and sampling guided
at w = 2 (eps_u + 2 (eps_c - eps_u); Ho and Salimans' w = 1), changed at sampling time
with `--guidance`. Grids: a row per digit, the same x_T down each column. Its cost is
configs/ddpm_mnist.py's (the label embedding adds 1,408 parameters); a guided sample costs
two network passes a step. configs/ddpm_mnist_conditional_cpu.py is its 2-core CPU twin.
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "ddpm_mnist.py")
  config.model.num_classes = 10
  config.diffusion.p_uncond = 0.1  # Ho and Salimans 2022, sec. 4 (they found 0.1-0.2 best)
  config.sampling.guidance = 2.0
  config.num_grid_images = 100  # a row per digit, 10 columns of fixed x_T
  return config
