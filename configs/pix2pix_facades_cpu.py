"""pix2pix on CMP facades at 128x128 with unet_128: pix2pix_facades.py sized for a CPU.

  python -m jaxgan.main --config configs/pix2pix_facades_cpu.py --workdir runs/pix2pix_facades_cpu \
      --config.data.manual_dir=../shared/data/facades
  python -m jaxgan.evaluate --workdir runs/pix2pix_facades_cpu

Everything as the paper's setting (pix2pix_facades.py) but the resolution: each half
resized to 143 and cropped to 128 (the paper's 286/256 ratio), G unet_128 (7 levels,
41,828,995 parameters at ngf 64), the same 70x70 PatchGAN (14x14 logits), and fewer
epochs: 5 at 2e-4 then 5 decaying linearly (10 x 400 = 4,000 steps).

Hardware and time: this project's 2-core CPU VM, XXX.
Expected figures (eval.json on the val split): not measured yet.
"""

import os

from jaxgan import config as config_lib


def get_config():
  config = config_lib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "pix2pix_facades.py"))
  config.data.image_size = 128
  config.data.load_size = 143
  config.model.generator = "unet_128"
  config.schedule.n_epochs = 5
  config.schedule.n_epochs_decay = 5
  config.sample_every_steps = 400       # every epoch
  config.checkpoint_every_steps = 400
  return config
