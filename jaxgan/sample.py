"""Draw samples from a trained run's latest checkpoint.

  python -m jaxgan.sample --workdir W --num 1000 --seed 0 --out samples.npz [--grid grid.png]
  python -m jaxgan.sample --workdir W --input_dir DIR --output_dir OUT   # image-to-image

Rebuilds the model from `W/config.json`, restores the newest checkpoint in
`W/checkpoints`, and writes `images` (uint8 [N, H, W, C]) to the npz (and, for
conditional families, the `labels` they were asked for). With `--input_dir`, an
image-to-image run (pix2pix) translates every image in DIR instead and writes each output
into OUT under the same file name, at the model's resolution (`jaxgan.translate`).
"""

import sys

from absl import app, flags

import jaxgan  # noqa: F401  (sets CPU XLA flags before JAX starts its backend)

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The run's --workdir.")
flags.DEFINE_integer("num", 1000, "Number of images.")
flags.DEFINE_integer("seed", 0, "Seed of the noise.")
flags.DEFINE_integer("batch_size", 500, "Images generated per call.")
flags.DEFINE_string("out", "samples.npz", "Output .npz path.")
flags.DEFINE_string("grid", None, "Also write the first 64 images as a PNG grid here.")
flags.DEFINE_string("input_dir", None, "Image-to-image runs: translate every image in this "
                    "folder (any size; resized to the model's resolution).")
flags.DEFINE_string("output_dir", None, "With --input_dir: where the outputs go, same file names.")
flags.mark_flags_as_required(["workdir"])


def sample(workdir: str, num: int, seed: int, batch_size: int = 500):
  """uint8 images [num, H, W, C] from the latest checkpoint of `workdir`."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from jaxgan import inference, visualize  # pylint: disable=import-outside-toplevel

  _, family, state = inference.load_run(workdir)
  generate = jax.jit(family.generate)
  images = []
  for i, start in enumerate(range(0, num, batch_size)):
    inputs = family.fixed_inputs(jax.random.fold_in(jax.random.PRNGKey(seed), i),
                                 min(batch_size, num - start))
    images.append(visualize.to_uint8(jax.device_get(generate(state, inputs))))
  return np.concatenate(images)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import numpy as np  # pylint: disable=import-outside-toplevel

  from jaxgan import checkpoint, inference, translate, visualize  # pylint: disable=import-outside-toplevel
  if FLAGS.input_dir:
    if not FLAGS.output_dir:
      raise app.UsageError("--input_dir needs --output_dir")
    try:
      _, family, state = inference.load_run(FLAGS.workdir)
      # Full-size image-to-image nets: 16 images a call unless asked otherwise.
      batch_size = FLAGS.batch_size if FLAGS["batch_size"].present else 16
      names = translate.translate_folder(family, state, FLAGS.input_dir, FLAGS.output_dir,
                                         FLAGS.seed, batch_size)
    except (checkpoint.CheckpointError, FileNotFoundError, ValueError) as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(1)
    print(f"translated {len(names)} images from {FLAGS.input_dir} into {FLAGS.output_dir}")
    return
  try:
    images = sample(FLAGS.workdir, FLAGS.num, FLAGS.seed, FLAGS.batch_size)
  except (checkpoint.CheckpointError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  np.savez_compressed(FLAGS.out, images=images)
  if FLAGS.grid:
    visualize.save_png(visualize.image_grid(images[:64]), FLAGS.grid)
  print(f"wrote {len(images)} images {images.shape[1:]} to {FLAGS.out}")


if __name__ == "__main__":
  app.run(main)
