"""Command line entry point: `python -m jaxgan.main --config configs/X.py --workdir DIR`.

Thin, as the Flax examples' main.py: parse flags, keep TensorFlow off accelerators,
optionally join a multi-host job, then hand over to `train.train_and_evaluate`.
Any config field can be overridden: `--config.num_train_steps=500 --config.batch_size=64`.
Every mistake in a config, a data folder or a workdir ends the command with one line on
stderr and a non-zero exit status, never a traceback.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

import jaxgan  # noqa: F401  (sets CPU XLA flags before JAX starts its backend)

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  """The command line's flags, on `flag_values` (tests parse into a fresh set)."""
  flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.",
                      flag_values=flag_values)
  flags.DEFINE_bool("start_over", False,
                    "The workdir holds a run (of another architecture, say): move it into "
                    "a sibling folder <workdir>.old-<time> and start afresh. Nothing is deleted.",
                    flag_values=flag_values)
  flags.DEFINE_bool("distributed", False,
                    "Call jax.distributed.initialize() first (multi-host GPU/TPU jobs; "
                    "cluster settings come from the environment).", flag_values=flag_values)
  config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py).",
                                  lock_config=True, flag_values=flag_values)
  flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)


define_flags()


def _config_path(argv):
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _unknown_fields(argv) -> list[str]:
  """The `--config.a.b=...` overrides whose path the config file does not have."""
  from jaxgan import config as config_lib  # pylint: disable=import-outside-toplevel
  path = _config_path(argv)
  if path is None or not os.path.exists(path):
    return []
  config, unknown = config_lib.load(path), []
  for arg in argv:
    if arg.startswith("--config."):
      node = config
      for part in arg[len("--config."):].split("=", 1)[0].split("."):
        if not hasattr(node, "keys") or part not in node:
          unknown.append(arg.split("=", 1)[0][2:])
          break
        node = node[part]
  return unknown


def parse_flags(argv, flag_values: flags.FlagValues = FLAGS):
  """absl's parsing, with every mistake reported as one line instead of a traceback."""
  path = _config_path(argv)
  if path is not None and not os.path.isfile(path):
    print(f"error: config file {path} not found (the experiments are in configs/)", file=sys.stderr)
    sys.exit(2)
  try:
    rest = flag_values(argv)
    if isinstance(flag_values.config, config_flags.config_flags._ErrorConfig):  # pylint: disable=protected-access
      flag_values.config.unlock()  # a config file that failed to load raises its error on any use
    return rest
  except Exception as e:  # pylint: disable=broad-except
    unknown = _unknown_fields(argv)
    if unknown:
      message = f"unknown config field {unknown[0]} (check the spelling; fields are in the config file)"
    else:
      message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import jax  # pylint: disable=import-outside-toplevel
  if FLAGS.distributed:
    jax.distributed.initialize()
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.config.set_visible_devices([], "GPU")  # TF only reads data; keep it off accelerators

  from jaxgan import errors, train  # pylint: disable=import-outside-toplevel
  logging.info("JAX process %d/%d, local devices: %s", jax.process_index(),
               jax.process_count(), jax.local_devices())
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir, start_over=FLAGS.start_over)
  except errors.user_errors() as e:  # one clear line, no traceback
    errors.exit_with(e)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
