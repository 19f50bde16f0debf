"""pix2pix on CMP facades, label map -> photo: the paper's setting (Isola et al. 2017), as
junyanz/pytorch-CycleGAN-and-pix2pix trains it (`python train.py --dataroot
./datasets/facades --model pix2pix --direction BtoA`), for a GPU or TPU.

  python -m jaxgan.main --config configs/pix2pix_facades.py --workdir runs/pix2pix_facades
  python -m jaxgan.evaluate --workdir runs/pix2pix_facades   # eval.json, triplet grids

Offline, with the extracted facades folder (train/ and val/) on disk, add
`--config.data.manual_dir=../shared/data/facades`.

G: unet_256 (54,413,955 parameters), D: the 70x70 PatchGAN on (label map, photo)
(2,768,705), BatchNorm, dropout 0.5 in the decoder. Data: each half resized to 286,
random 256 crop and flip, the same for both; batch 1. Loss: vanilla GAN (BCE) + 100 L1,
D's loss halved. Adam(2e-4, 0.5, 0.999), 100 epochs at 2e-4, then 100 decaying linearly
to 0, stepped per epoch: 200 epochs x 400 images = 80,000 steps.

Hardware and time: meant for a GPU or TPU; not measured on one here. CPU-measured on this
project's 2-core AMD EPYC VM with `python benchmarks/steps/step_time.py --config
configs/pix2pix_facades.py` (8 steps after compilation, another training run sharing the
CPU): 1.26 s per step, 8.4 min per epoch, about 28 h for the 200 epochs; on a CPU use
pix2pix_facades_cpu.py instead.
Expected figures (eval.json on the val split): not measured yet.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config("pix2pix")
  config.batch_size = 1

  config.data.name = "pix2pix/facades"   # jaxgan.datasets.pix2pix
  config.data.direction = "BtoA"         # label map (right half) -> photo (left half)
  config.data.image_size = 256           # the reference's --crop_size
  config.data.load_size = 286            # --load_size: resized to this, then cropped
  config.data.flip = True                # not --no_flip
  config.data.channels = 3
  config.data.eval_split = "val"
  config.data.num_train_examples = 400   # an epoch, for the schedule and the step count

  config.model.generator = "unet_256"
  config.model.discriminator = "patch_discriminator"
  config.model.n_layers = 3              # 70x70 receptive field
  config.model.norm = "batch"
  config.model.dropout = 0.5
  config.model.ngf = config.model.ndf = 64

  config.loss.name = "non_saturating"    # the reference's GANLoss('vanilla')
  config.loss.lambda_l1 = 100.0

  config.schedule.n_epochs = 100         # at the initial learning rate
  config.schedule.n_epochs_decay = 100   # then linearly to 0
  epochs = config.schedule.get_ref("n_epochs") + config.schedule.get_ref("n_epochs_decay")
  # Follows --config.schedule.* and --config.batch_size overrides (ml_collections references).
  config.num_train_steps = ((epochs * config.data.get_ref("num_train_examples")
                             + config.get_ref("batch_size") - 1) // config.get_ref("batch_size"))

  config.eval_mode = False               # True: the reference's test.py --eval
  config.log_every_steps = 100
  config.sample_every_steps = 4000       # every 10 epochs
  config.checkpoint_every_steps = 4000
  config.num_grid_images = 8             # 4 train and 4 val pairs
  return config
