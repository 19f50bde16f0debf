"""DDPM on MNIST 28x28 (Ho et al. 2020; jaxgan/families/ddpm.py, jaxgan/models/ddpm_unet.py).

  python -m jaxgan.main --config configs/ddpm_mnist.py --workdir runs/ddpm_mnist \
      --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.sample --workdir runs/ddpm_mnist --num 64 --grid grid.png   # ancestral, 1000 steps
  python -m jaxgan.sample --workdir runs/ddpm_mnist --sampler ddim --steps 50 --num 1000
  python -m jaxgan.evaluate --workdir runs/ddpm_mnist --sampler ddim --steps 50

T = 1000 steps of the linear schedule (beta 1e-4 .. 0.02; `--config.diffusion.schedule=cosine`
for Nichol and Dhariwal's), the epsilon objective, Adam 2e-4 with 1000 warmup steps and
gradient clipping at 1, EMA of the weights (decay up to 0.9995) used for sampling. The
U-Net: base width 32, ch_mult (1, 2, 2) at 28, 14 and 7 pixels, 2 residual blocks per
level, self-attention in the middle block (7x7), dropout 0.1, 3x3 stride-2 convolutions
downsampling (1,539,329 parameters).
Batch 128, 20k steps (about 43 epochs): a GPU-sized default. On the README's 2-core CPU a run of 20 minutes
reaches a fraction of that; the README section "Diffusion baseline: DDPM on MNIST" gives the
exact overrides used there, the wall time and the numbers reached.

Samples, grids and `jaxgan.evaluate` use `config.sampling` (ancestral `ddpm` over all
1000 steps by default) unless `--sampler`, `--steps`, `--eta` say otherwise.
"""

import ml_collections

from jaxgan.config import base_config


def get_config():
  config = base_config()
  config.family = "ddpm"
  config.data.name = "mnist"
  config.data.image_size = 28
  config.data.channels = 1
  config.batch_size = 128
  config.num_train_steps = 20_000
  config.log_every_steps = 100
  config.sample_every_steps = 5000  # each grid runs the sampler: 1000 network evaluations
  config.checkpoint_every_steps = 1000
  config.num_grid_images = 64
  del config.loss  # the objective is the diffusion's own (config.diffusion)

  config.model = ml_collections.ConfigDict()
  config.model.denoiser = "ddpm_unet"
  config.model.ch = 32
  config.model.ch_mult = (1, 2, 2)
  config.model.num_res_blocks = 2
  config.model.dropout = 0.1
  config.model.downsample = "conv"  # Ho et al.'s strided conv; "avg_pool": faster on a CPU
  config.model.num_classes = 0   # > 0: class-conditional with classifier-free guidance

  config.diffusion = ml_collections.ConfigDict()
  config.diffusion.num_timesteps = 1000
  config.diffusion.schedule = "linear"  # jaxgan.diffusion.SCHEDULES
  config.diffusion.p_uncond = 0.1       # conditional models: label dropped in training
  config.diffusion.ema_decay = 0.9995   # the most the warmed-up EMA decay reaches

  config.sampling = ml_collections.ConfigDict()
  config.sampling.sampler = "ddpm"      # ancestral (all T steps) or "ddim"
  config.sampling.steps = 1000
  config.sampling.eta = 0.0             # ddim only: 0 deterministic, 1 DDPM's variance
  config.sampling.guidance = 1.0        # conditional models: eps_u + w (eps_c - eps_u)

  config.optimizer.learning_rate = 2e-4  # Ho et al., appendix B
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.warmup_steps = 1000   # Ho et al.: 5000 on CIFAR10 (800k steps)
  config.optimizer.grad_clip = 1.0
  return config
