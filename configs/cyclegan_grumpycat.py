"""CycleGAN on the grumpy cat set of CMU 16-726 "When Cats meet GANs": Russian Blue (A)
<-> Grumpy Cat (B), 64x64.

  python -m jaxgan.main --config configs/cyclegan_grumpycat.py --workdir runs/cyclegan_grumpycat \
      --config.data.manual_dir=../shared/data/grumpifyCat
  python -m jaxgan.evaluate --workdir runs/cyclegan_grumpycat

Data: `unpaired/grumpifycat` (jaxgan/datasets/unpaired.py), prepared offline from the
course's folders grumpifyAprocessed/ (75 Russian Blue) and grumpifyBprocessed/ (204 Grumpy
Cat), 64x64 PNG; no test split, so the evaluation runs on the training images. Images keep
their 64x64 and get a random flip; batch 1; an epoch is 204 steps (the larger domain).

Networks as cyclegan_apple2orange64.py: the course's 64x64 generator (`cycle_generator_64`,
ngf 32, 511,875 parameters) and the reference's PatchGAN with `n_layers` 2 (662,977); the
reference's losses and optimiser (LSGAN, cycle 10, identity 0.5 x 10, pool 50, Adam(2e-4,
0.5)) where the course used its own (10,000 iterations at batch 16, Adam(3e-4)); 40 epochs
at 2e-4, then 40 decaying linearly to 0: 80 x 204 = 16,320 steps, each Russian Blue seen
about 218 times and each Grumpy Cat 80 times.

Hardware and time: this project's 2-core AMD EPYC VM (no GPU), another training run
sharing the CPU. `python benchmarks/steps/step_time.py --config configs/cyclegan_grumpycat.py`
measured 0.096 s per step (30 steps after 14 s of initialisation and compilation): about
26 min for the 16,320 steps, plus evaluation grids and checkpoints.
Measured (seed 0, the command above, 22 min 24 s wall on the shared CPU; docs/experiments/cyclegan/README.md):
in the target domain A -> B 1.000, B -> A 0.990; cycle L1 0.094 / 0.114 (eval.json on
the training images; domain classifier 1.000 on held-out images).
"""

from jaxgan.config import load_sibling


def get_config():
  config = load_sibling(__file__, "cyclegan_apple2orange64.py")
  config.data.name = "unpaired/grumpifycat"
  config.data.num_train_examples = 204
  config.schedule.n_epochs = 40
  config.schedule.n_epochs_decay = 40
  config.sample_every_steps = 2040       # every 10 epochs
  config.checkpoint_every_steps = 2040
  return config
