"""DDPM on MNIST 28x28 (Ho et al. 2020; jaxgan/families/ddpm.py, jaxgan/models/ddpm_unet.py).

  python -m jaxgan.main --config configs/ddpm_mnist.py --workdir runs/ddpm_mnist \
      --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.sample --workdir runs/ddpm_mnist --num 64 --grid grid.png   # ancestral, 1000 steps
  python -m jaxgan.sample --workdir runs/ddpm_mnist --sampler ddim --steps 50 --num 1000
  python -m jaxgan.evaluate --workdir runs/ddpm_mnist --sampler ddim --steps 50

T = 1000 steps of the linear schedule (beta 1e-4 .. 0.02; `--config.diffusion.schedule=cosine`
for Nichol and Dhariwal's), the epsilon objective, Adam 2e-4 with 1000 warmup steps and
gradient clipping at 1, EMA of the weights (decay 0.9999, Ho et al.'s; `jaxgan.ema`) used for sampling. The
U-Net: base width 32, ch_mult (1, 2, 2) at 28, 14 and 7 pixels, 2 residual blocks per
level, self-attention in the middle block (7x7), dropout 0.1, 3x3 stride-2 convolutions
downsampling (1,539,329 parameters).
Batch 128, 20k steps (about 43 epochs): sized for an accelerator. What it costs: on the
2-core AMD EPYC VM a step takes 2.32 s (`benchmarks/steps/step_time.py --config
configs/ddpm_mnist.py`), so the run would take about 13 hours there; it has not been timed
on a GPU or TPU here (docs/accelerators.md has the device check). On a CPU, train
configs/ddpm_mnist_cpu.py instead: the same U-Net at width 16, about 40 minutes on two
cores (docs/experiments/ddpm_mnist/README.md).

Samples, grids and `jaxgan.evaluate` use `config.sampling` (ancestral `ddpm` over all
1000 steps by default) unless `--sampler`, `--steps`, `--eta` say otherwise.
"""

from jaxgan.config import default_config


def get_config():
  """The ddpm family's defaults (jaxgan/families/ddpm.py: the U-Net, diffusion, sampler and
  optimizer above) on MNIST."""
  config = default_config("ddpm")
  config.data.name = "mnist"
  config.data.image_size = 28
  config.data.channels = 1
  config.batch_size = 128
  config.num_train_steps = 20_000
  config.log_every_steps = 100
  config.sample_every_steps = 5000  # each grid runs the sampler: 1000 network evaluations
  config.checkpoint_every_steps = 1000
  config.num_grid_images = 64
  return config
