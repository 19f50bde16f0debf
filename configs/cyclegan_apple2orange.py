"""CycleGAN on apple2orange, apple <-> orange: the paper's setting (Zhu et al. 2017), as
junyanz/pytorch-CycleGAN-and-pix2pix trains it (`python train.py --dataroot
./datasets/apple2orange --model cycle_gan`), for a GPU or TPU.

  python -m jaxgan.main --config configs/cyclegan_apple2orange.py --workdir runs/cyclegan_apple2orange
  python -m jaxgan.evaluate --workdir runs/cyclegan_apple2orange   # eval.json, triplet grids
  python -m jaxgan.sample --workdir runs/cyclegan_apple2orange --input_dir DIR --output_dir OUT \
      --direction AtoB

Data: TFDS `cycle_gan/apple2orange` (downloads apple2orange.zip; offline, put that zip in a
folder and add `--config.data.manual_dir=FOLDER`, or point `--config.data.name=unpaired/
apple2orange --config.data.manual_dir=DIR` at the extracted trainA/ trainB/ testA/ testB/).
A = apple (995 train, 266 test), B = orange (1019, 248); each image resized to 286 (bicubic),
then its own random 256 crop and flip; batch 1; an epoch is 1019 steps (the larger domain).

G_A, G_B: resnet_9blocks (11,378,179 parameters each), D_A, D_B: the 70x70 PatchGAN on one
image (2,764,737 each), InstanceNorm, no dropout, init N(0, 0.02). Loss: LSGAN, cycle 10 L1
each way, identity 0.5 x 10 L1, D's loss halved, D trained on a history of 50 generated
images per direction. Adam(2e-4, 0.5, 0.999) for both optimizers, 100 epochs at 2e-4 then
100 decaying linearly to 0, stepped per epoch: 200 x 1019 = 203,800 steps.

Hardware and time: meant for a GPU or TPU; not measured on one here. CPU-measured on this
project's 2-core AMD EPYC VM with `python benchmarks/steps/step_time.py --config
configs/cyclegan_apple2orange.py --steps 5 --warmup 1` (another training run sharing the
CPU): 14.3 s per step, 4 h per epoch, about 34 days for the 200 epochs: six 256x256 passes
through a 9-block ResNet (about 49 GMAC each) and their gradients per step are a CPU's
limit, not the port's; on a CPU use cyclegan_apple2orange64.py instead.
Expected figures (eval.json on the test split): not measured yet.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config("cyclegan")
  config.batch_size = 1

  config.data.name = "cycle_gan/apple2orange"
  config.data.unpaired = True            # batches of A and B images drawn independently
  config.data.split = "train"            # the reference's --phase: splits trainA, trainB
  config.data.eval_split = "test"        # testA, testB
  config.data.image_size = 256           # --crop_size
  config.data.load_size = 286            # --load_size: resized to this, then cropped
  config.data.flip = True                # not --no_flip
  config.data.channels = 3
  config.data.num_train_examples = 1019  # max(|trainA|, |trainB|): an epoch

  config.model.generator = "resnet_9blocks"
  config.model.discriminator = "patch_discriminator"
  config.model.n_layers = 3              # 70x70 receptive field
  config.model.norm = "instance"
  config.model.ngf = config.model.ndf = 64

  config.loss.name = "lsgan"             # --gan_mode lsgan
  config.loss.lambda_a = 10.0            # cycle A -> B -> A
  config.loss.lambda_b = 10.0            # cycle B -> A -> B
  config.loss.lambda_identity = 0.5      # identity weight: 0.5 x lambda
  config.loss.pool_size = 50             # history of generated images for each D

  config.schedule.n_epochs = 100         # at the initial learning rate
  config.schedule.n_epochs_decay = 100   # then linearly to 0
  epochs = config.schedule.get_ref("n_epochs") + config.schedule.get_ref("n_epochs_decay")
  # Follows --config.schedule.* and --config.batch_size overrides (ml_collections references).
  config.num_train_steps = ((epochs * config.data.get_ref("num_train_examples")
                             + config.get_ref("batch_size") - 1) // config.get_ref("batch_size"))

  config.log_every_steps = 100
  config.sample_every_steps = 10190      # every 10 epochs
  config.checkpoint_every_steps = 10190
  config.num_grid_images = 8             # 4 apples and 4 oranges: x | G(x) | F(G(x))
  return config
