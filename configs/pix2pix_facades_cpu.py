"""pix2pix on CMP facades at 128x128 with unet_128: pix2pix_facades.py sized for a CPU.

  python -m jaxgan.main --config configs/pix2pix_facades_cpu.py --workdir runs/pix2pix_facades_cpu \
      --config.data.manual_dir=../shared/data/facades
  python -m jaxgan.evaluate --workdir runs/pix2pix_facades_cpu

Everything as the paper's setting (pix2pix_facades.py) but the resolution and the length:
each half resized to 143 and cropped to 128 (the paper's 286/256 ratio), G unet_128 (7
levels, 41,828,995 parameters at ngf 64), the same 70x70 PatchGAN (14x14 logits), and 3
epochs at 2e-4 then 3 decaying linearly: 6 x 400 = 2,400 steps. Twice as long (the
counterpart of the paper's 100 + 100 against a 50 + 50 run):
`--config.schedule.n_epochs=6 --config.schedule.n_epochs_decay=6` (4,800 steps).

Hardware and time: this project's 2-core AMD EPYC VM (no GPU). `python
benchmarks/steps/step_time.py --config configs/pix2pix_facades_cpu.py` measured 0.65 s per step
(10 steps after about 30 s of initialisation and compilation, another training run sharing
the CPU): 4.4 min per epoch, about 26 min for the 2,400 steps and 53 min for 4,800, plus
compilation, grids and checkpoints (0.43 GB each on disk, one per epoch).
Measured (seed 0; docs/experiments/pix2pix_facades/README.md): 18 min 53 s wall, val L1 0.351, PSNR 13.06 dB, SSIM
0.242; twice as long, 61 min wall, 0.350, 12.99 dB, 0.260 (both with other jobs on the CPU).
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "pix2pix_facades.py")
  config.data.image_size = 128
  config.data.load_size = 143
  config.model.generator = "unet_128"
  config.schedule.n_epochs = 3
  config.schedule.n_epochs_decay = 3
  config.sample_every_steps = 400       # every epoch
  config.checkpoint_every_steps = 400
  return config
