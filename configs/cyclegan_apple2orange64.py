"""CycleGAN on apple2orange at 64x64 (the CMU 16-726 course's copy), sized for a CPU.

  python -m jaxgan.main --config configs/cyclegan_apple2orange64.py \
      --workdir runs/cyclegan_apple2orange64 --config.data.manual_dir=../shared/data/apple2orange64
  python -m jaxgan.evaluate --workdir runs/cyclegan_apple2orange64

Data: `unpaired/apple2orange64` (jaxgan/datasets/unpaired.py), prepared offline from a folder
holding trainA/ (995 apples) and trainB/ (1019 oranges), 64x64 PNG, train only, so the
evaluation runs on the training images. Images keep their 64x64 (load size = crop size)
and get a random flip; batch 1; an epoch is 1019 steps.

Everything as the paper's setting (cyclegan_apple2orange.py) but the resolution, the
networks and the length: G_A, G_B are the 64x64 generator of the course
(`cycle_generator_64` at ngf 32, the course's g_conv_dim: two stride-2 4x4 convolutions,
six residual blocks at 16x16, two transposed convolutions; 511,875 parameters), D_A, D_B
the reference's PatchGAN with two downsamplings (`n_layers` 2: 34x34 patches, 14x14 logits,
about half the image side as the course's 46x46-patch discriminator; n_layers 3 would see
70x70, more than the image; 662,977 parameters); 8 epochs at 2e-4, then 8 decaying linearly
to 0: 16 x 1019 = 16,304 steps.

Hardware and time: this project's 2-core AMD EPYC VM (no GPU), another training run
sharing the CPU. `python benchmarks/steps/step_time.py --config configs/cyclegan_apple2orange64.py`
measured 0.096 s per step (30 steps after 14 s of initialisation and compilation): 1.6 min
per epoch, about 26 min for the 16,304 steps, plus evaluation grids and checkpoints.
`python benchmarks/steps/train_step.py --case cyclegan64` times it against the reference's step
in PyTorch (docs/performance.md, "The whole train step against PyTorch").
Measured (seed 0, 43 min wall on the shared CPU; docs/experiments/cyclegan/README.md): in the target domain
A -> B 0.935, B -> A 0.929; cycle L1 0.139 / 0.139 (eval.json on the training images;
domain classifier 0.955 on held-out images).
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "cyclegan_apple2orange.py")
  config.data.name = "unpaired/apple2orange64"
  config.data.eval_split = "train"       # the 64x64 copy has no test split
  config.data.image_size = 64
  config.data.load_size = 64             # no resize, no crop: the flip only
  config.data.num_train_examples = 1019
  config.model.generator = "cycle_generator_64"
  config.model.ngf = 32                  # the course's g_conv_dim
  config.model.n_layers = 2
  config.schedule.n_epochs = 8
  config.schedule.n_epochs_decay = 8
  config.sample_every_steps = 1019       # every epoch
  config.checkpoint_every_steps = 1019
  return config
