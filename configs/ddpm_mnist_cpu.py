"""DDPM on MNIST sized for a 2-core CPU: Ho et al.'s U-Net at width 16, trained in 33 minutes.

  python -m jaxgan.main --config configs/ddpm_mnist_cpu.py --workdir runs/ddpm_mnist_cpu \
      --config.data.manual_dir=../shared/data/mnist
  python -m jaxgan.evaluate --workdir runs/ddpm_mnist_cpu --num 10000

configs/ddpm_mnist.py (the paper-sized config, for accelerators) with what a CPU can afford:
the same U-Net structure (ch_mult (1, 2, 2) at 28, 14 and 7 pixels, self-attention in the
middle block, 3x3 stride-2 convolutions downsampling) at base width 16 with one residual
block per level and no dropout; batch 64 and 6,000 steps (6.4 epochs); Adam at 1e-3 after
200 warmup steps (a short run takes a larger step than Ho et al.'s 2e-4), clipping at 1;
the EMA's decay capped at 0.999 (an average over about the last thousand steps: 0.9999
would still be mostly the early weights at step 6,000). Grids and evaluation sample with
50-step DDIM (eta 0).

The step was measured before choosing the batch and length
(`benchmarks/steps/step_time.py --config configs/ddpm_mnist.py --set ...` on the 2-core
AMD EPYC VM): 2.32 s at the paper-sized width 32, 2 blocks, batch 128; 0.69 s at width 16,
1 block, batch 128; 0.34 s at width 16, 1 block, batch 64. The run's wall time and the FID
it reaches are in docs/experiments/ddpm_mnist/README.md.
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "ddpm_mnist.py")
  config.model.ch = 16
  config.model.num_res_blocks = 1
  config.model.dropout = 0.0
  config.batch_size = 64
  config.num_train_steps = 6000
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 200
  config.ema_decay = 0.999
  config.sampling.sampler = "ddim"
  config.sampling.steps = 50
  config.log_every_steps = 100
  config.sample_every_steps = 2000
  config.checkpoint_every_steps = 1000
  return config
