"""Draw samples from a trained run's latest checkpoint.

  python -m jaxgan.sample --workdir W --num 1000 --seed 0 --out samples.npz [--grid grid.png]
  python -m jaxgan.sample --workdir W --label 7 --num 64 --grid sevens.png   # conditional
  python -m jaxgan.sample --workdir W --sampler ddim --steps 50 --guidance 2 --num 1000  # diffusion
  python -m jaxgan.sample --workdir W --denoise denoising.png   # diffusion: the denoising view
  python -m jaxgan.sample --workdir W --trajectory trajectory.png --num 8   # noise to samples
  python -m jaxgan.sample --workdir W --input_dir DIR --output_dir OUT   # image-to-image
  python -m jaxgan.sample --workdir W --input_dir DIR --output_dir OUT --direction BtoA  # CycleGAN

Rebuilds the model from `W/config.json`, restores the newest checkpoint in
`W/checkpoints`, and writes `images` (uint8 [N, H, W, C]) to the npz; for conditional
models also the `labels` each image was asked for: `--label k` for all of them, else
0, 1, ..., 9, 0, 1, ... in turn. A conditional model's grid has one row per class and
the same noise down each column (with `--label`, the first 64 images).

Diffusion runs (`ddpm` family) sample with their config's sampler unless `--sampler`
(ddpm: ancestral over all T steps; ddim), `--steps`, `--eta` (DDIM's noise) or
`--guidance` (conditional models: eps_u + w (eps_c - eps_u); 0 ignores the label) say
otherwise; the time spent generating is printed. `--denoise PNG` draws their denoising
view instead of samples: test digits noised to each t of `--denoise_t`, the model's
one-step estimate of x_0, and the sampler's reverse process from there
(`DDPM.denoising_view`); `--trajectory PNG` draws the reverse process itself, a row per
seed from pure noise x_T to the sample, x_t at 8 evenly spaced steps of the sampler
(`DDPM.trajectory`; the same picture as a run's `trajectory.png`, from --seed).

Runs that keep a moving average of their weights (`config.ema_decay`: every diffusion
run, GANs that ask for it) sample from the average; `--raw_weights` samples from the
trained weights themselves.

With `--input_dir`, an image-to-image run (pix2pix, CycleGAN) translates every image in
DIR instead and writes each output into OUT under the same file name, at the model's
resolution (`jaxgan.translate`); a CycleGAN run goes A -> B (G_A) unless given
`--direction BtoA` (G_B).
"""


import os
import time

from absl import app, flags

import jaxgan  # noqa: F401  (sets CPU XLA flags before JAX starts its backend)
from jaxgan import errors, sampling_flags
from jaxgan.errors import ConfigError

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined only when run as a command, so that importing
  this module as a library defines none)."""
  flags.DEFINE_string("workdir", None, "The run's --workdir.")
  flags.DEFINE_integer("num", 1000, "Number of images.")
  flags.DEFINE_integer("seed", 0, "Seed of the noise.")
  flags.DEFINE_integer("batch_size", 500, "Images generated per call.")
  flags.DEFINE_integer("label", None, "Class-conditional models: the class of every image.")
  flags.DEFINE_string("out", "samples.npz", "Output .npz path.")
  flags.DEFINE_string("grid", None, "Also write a PNG grid here.")
  flags.DEFINE_string("input_dir", None, "Image-to-image runs: translate every image in this "
                      "folder (any size; resized to the model's resolution).")
  flags.DEFINE_string("output_dir", None, "With --input_dir: where the outputs go, same file "
                      "names.")
  flags.DEFINE_enum("direction", None, ["AtoB", "BtoA"], "With --input_dir, CycleGAN runs: "
                    "translate A -> B with G_A (the default) or B -> A with G_B.")
  sampling_flags.define()
  flags.adopt_module_key_flags(sampling_flags)  # --help lists them
  flags.DEFINE_string("denoise", None, "Diffusion runs: write the denoising view of --num "
                      "(at most 8) test digits here instead of sampling.")
  flags.DEFINE_list("denoise_t", ["50", "200", "500", "800"], "The timesteps of --denoise.")
  flags.DEFINE_string("trajectory", None, "Diffusion runs: write the reverse process of --num "
                      "(at most 16) seeds here instead of sampling, a row each.")
  flags.mark_flags_as_required(["workdir"])


def sample(workdir: str, num: int, seed: int, batch_size: int = 500, label=None, **sampling):
  """uint8 images [num, H, W, C] (and their labels) from the latest checkpoint of `workdir`;
  `sampling`: diffusion runs' sampler settings (`inference.load_run`)."""
  from jaxgan import inference  # pylint: disable=import-outside-toplevel
  _, family, state = inference.load_run(workdir, **sampling)
  return inference.generate(family, state, num, seed, batch_size, label)


def denoising_view(workdir: str, path: str, num: int, ts, seed: int = 0, label=None,
                   **sampling) -> None:
  """Writes the denoising view (`DDPM.denoising_view`) of the first `num` test digits,
  conditional models reading the digits' true labels (or `label`)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jaxgan import families, inference, visualize  # pylint: disable=import-outside-toplevel
  from jaxgan.datasets import preparation  # pylint: disable=import-outside-toplevel
  config, family, state = inference.load_run(workdir, **sampling)
  if not families.supports(family, families.DenoisingView):
    raise ConfigError("--denoise is for diffusion runs")
  test = preparation.load_split(config.data, config.data.get("eval_split") or "test", num)
  labels = None
  if family.num_classes:
    labels = np.broadcast_to(np.asarray(test["label"] if label is None else label, np.int32),
                             (len(test["image"]),))
  visualize.save_png(family.denoising_view(state, test["image"], [int(t) for t in ts], seed,
                                           labels), path)


def trajectory(workdir: str, path: str, num: int, seed: int = 0, label=None,
               **sampling) -> None:
  """Writes the reverse process of `num` seeds (`jaxgan.train.trajectory`); conditional
  models: labels 0, 1, ... in turn, or `label` for every row."""
  from jaxgan import families, inference, train, visualize  # pylint: disable=import-outside-toplevel
  _, family, state = inference.load_run(workdir, **sampling)
  if not families.supports(family, families.DenoisingView):
    raise ConfigError("--trajectory is for diffusion runs")
  visualize.save_png(train.trajectory(family, state, seed, num, label), path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from jaxgan import compilation_cache  # pylint: disable=import-outside-toplevel
  compilation_cache.enable()
  errors.exit_on_argument_problems(errors.argument_problems(  # before anything is loaded
      positive={"num": FLAGS.num, "batch_size": FLAGS.batch_size, "steps": FLAGS.steps},
      nonnegative={"label": FLAGS.label, "eta": FLAGS.eta, "guidance": FLAGS.guidance},
      output_files={"out": None if FLAGS.input_dir or FLAGS.denoise or FLAGS.trajectory
                    else FLAGS.out, "grid": FLAGS.grid, "denoise": FLAGS.denoise,
                    "trajectory": FLAGS.trajectory},
      output_dirs={"output_dir": FLAGS.output_dir}))
  if FLAGS.input_dir and not os.path.isdir(FLAGS.input_dir):
    errors.exit_on_argument_problems([f"--input_dir={FLAGS.input_dir} is not a folder"])
  for picture in ("denoise", "trajectory"):
    if FLAGS[picture].value and (FLAGS.input_dir or FLAGS.grid):
      errors.exit_on_argument_problems([f"--{picture} draws its own figure: leave out "
                                        "--input_dir and --grid"])
  if FLAGS.denoise and FLAGS.trajectory:
    errors.exit_on_argument_problems(["--denoise and --trajectory are two pictures: ask for "
                                      "one at a time"])
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from jaxgan import families, inference, translate, visualize  # pylint: disable=import-outside-toplevel
  sampling = sampling_flags.given()
  if FLAGS.input_dir and (FLAGS.raw_weights or any(v is not None for v in sampling.values())):
    raise app.UsageError("--sampler, --steps, --eta, --guidance, --clip_denoised and "
                         "--raw_weights are for sampling from noise, not --input_dir")
  if FLAGS.direction and not FLAGS.input_dir:
    raise app.UsageError("--direction goes with --input_dir and --output_dir")
  if FLAGS.input_dir:
    if not FLAGS.output_dir:
      raise app.UsageError("--input_dir needs --output_dir")
    try:
      _, family, state = inference.load_run(FLAGS.workdir)
      if not families.supports(family, families.Translation):
        raise ValueError(f"{family.__class__.__name__} does not translate images: --input_dir "
                         "needs the run of an image-to-image family (pix2pix, cyclegan)")
      # Full-size image-to-image nets: 16 images a call unless asked otherwise.
      batch_size = FLAGS.batch_size if FLAGS["batch_size"].present else 16
      names = translate.translate_folder(family, state, FLAGS.input_dir, FLAGS.output_dir,
                                         FLAGS.seed, batch_size, FLAGS.direction)
    except (*errors.USER_ERRORS, FileNotFoundError, ValueError) as e:
      errors.exit_with(e)
    print(f"translated {len(names)} images from {FLAGS.input_dir} into {FLAGS.output_dir}")
    return
  if FLAGS.denoise:
    try:
      denoising_view(FLAGS.workdir, FLAGS.denoise, min(FLAGS.num, 8), FLAGS.denoise_t,
                     FLAGS.seed, FLAGS.label, raw_weights=FLAGS.raw_weights, **sampling)
    except (*errors.USER_ERRORS, FileNotFoundError, ValueError) as e:
      errors.exit_with(e)
    print(f"wrote the denoising view to {FLAGS.denoise}")
    return
  if FLAGS.trajectory:
    try:
      trajectory(FLAGS.workdir, FLAGS.trajectory, min(FLAGS.num, 16), FLAGS.seed, FLAGS.label,
                 raw_weights=FLAGS.raw_weights, **sampling)
    except (*errors.USER_ERRORS, FileNotFoundError, ValueError) as e:
      errors.exit_with(e)
    print(f"wrote the reverse process of {min(FLAGS.num, 16)} seeds to {FLAGS.trajectory}")
    return
  try:
    _, family, state = inference.load_run(FLAGS.workdir, FLAGS.raw_weights, **sampling)
    start = time.perf_counter()
    images, labels = inference.generate(family, state, FLAGS.num, FLAGS.seed, FLAGS.batch_size,
                                        FLAGS.label)
    seconds = time.perf_counter() - start
  except (*errors.USER_ERRORS, FileNotFoundError, ValueError) as e:
    errors.exit_with(e)
  arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
  np.savez_compressed(FLAGS.out, **arrays)
  if FLAGS.grid:
    if labels is not None and FLAGS.label is None:  # a row per class, fixed noise per column
      inputs = family.fixed_inputs(jax.random.PRNGKey(FLAGS.seed), 100)
      grid = family.grid(inputs, jax.device_get(family.generate(state, inputs)))
    else:
      grid = visualize.image_grid(images[:64])
    visualize.save_png(grid, FLAGS.grid)
  print(f"wrote {len(images)} images {images.shape[1:]}"
        f"{'' if labels is None else ' with labels'} to {FLAGS.out}; generating took "
        f"{seconds:.1f} s (compilation included), {1000 * seconds / len(images):.1f} s per "
        "1000 images")


if __name__ == "__main__":
  define_flags()
  app.run(main)
