"""Command line entry point: `python -m jaxgan.main --config configs/X.py --workdir DIR`.

Thin, as the Flax examples' main.py: parse flags, keep TensorFlow off accelerators,
optionally join a multi-host job, then hand over to `train.train_and_evaluate`.
Any config field can be overridden: `--config.num_train_steps=500 --config.batch_size=64`.
Every mistake in a config, a data folder or a workdir ends the command with one line on
stderr and a non-zero exit status, never a traceback. The terminal gets the progress line,
warnings and errors; the libraries' INFO logs go to `<workdir>/train.log`.
"""

import os
import sys

# TensorFlow's C++ INFO lines (its CPU features, say) bypass Python's logging: keep them off
# the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import app, flags, logging
from ml_collections import config_flags

import jaxgan  # noqa: F401  (sets CPU XLA flags before JAX starts its backend)

FLAGS = flags.FLAGS

# --distributed's settings: (flag, type, what it is, the environment variable read when the
# flag is not given). JAX itself reads $JAX_COORDINATOR_ADDRESS; the other two follow suit.
DISTRIBUTED_SETTINGS = (
    ("coordinator_address", str, "host:port of process 0, which runs the coordinator",
     "JAX_COORDINATOR_ADDRESS"),
    ("num_processes", int, "the number of processes", "JAX_NUM_PROCESSES"),
    ("process_id", int, "this process's index, 0 .. num_processes - 1", "JAX_PROCESS_ID"),
)


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  """The command line's flags, on `flag_values` (tests parse into a fresh set)."""
  flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.",
                      flag_values=flag_values)
  flags.DEFINE_bool("start_over", False,
                    "The workdir holds a run (of another architecture, say): move it into "
                    "a sibling folder <workdir>.old-<time> and start afresh. Nothing is deleted.",
                    flag_values=flag_values)
  flags.DEFINE_bool("distributed", False,
                    "Join a multi-process job with jax.distributed.initialize() before anything "
                    "else: each process reads its own shard, process 0 writes the logs. On TPU "
                    "pods, SLURM and Open MPI JAX finds the job's settings itself; elsewhere "
                    "give the three flags below (or their environment variables).",
                    flag_values=flag_values)
  for name, kind, what, env in DISTRIBUTED_SETTINGS:
    define = flags.DEFINE_integer if kind is int else flags.DEFINE_string
    define(name, None, f"With --distributed: {what} (default ${env}, else the cluster's).",
           flag_values=flag_values)
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
  from jaxgan import config as config_lib, errors  # pylint: disable=import-outside-toplevel
  path = _config_path(argv)
  if path is not None:  # a file that is missing, does not parse or has no get_config()
    errors.exit_on_argument_problems([p for p in [config_lib.file_problem(path)] if p])
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


def _from_env(name: str, kind: type):
  value = os.environ.get(name)
  try:
    return None if value in (None, "") else kind(value)
  except ValueError:
    print(f"error: ${name}={value!r} is not an integer", file=sys.stderr)
    sys.exit(2)


def initialize_distributed(**given) -> None:
  """`jax.distributed.initialize` with the `DISTRIBUTED_SETTINGS` given (None: not given),
  else those of the environment.

  JAX itself reads $JAX_COORDINATOR_ADDRESS; $JAX_NUM_PROCESSES and $JAX_PROCESS_ID are
  read here with the same prefix. Whatever is still unset, JAX detects from the cluster
  (TPU pods, SLURM, Open MPI, ...). When all three are given, its detection is skipped
  (`cluster_detection_method="deactivate"`): on a machine outside any cluster it would
  otherwise still probe for one. Must run before anything touches a JAX backend. On
  the CPU, processes exchange gradients through gloo collectives (JAX 0.10's default;
  set here where an older JAX defaults to none, which cannot cross processes).
  """
  import jax  # pylint: disable=import-outside-toplevel
  kwargs = {name: given.get(name) if given.get(name) not in (None, "") else _from_env(env, kind)
            for name, kind, _, env in DISTRIBUTED_SETTINGS}
  if None not in kwargs.values():
    kwargs["cluster_detection_method"] = "deactivate"
  if getattr(jax.config, "jax_cpu_collectives_implementation", "gloo") in (None, "none"):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(**kwargs)
  except (ValueError, TypeError, RuntimeError) as e:  # missing or wrong settings, no coordinator
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    print(f"error: --distributed: {first} (give --coordinator_address, --num_processes and "
          "--process_id, or run inside a cluster JAX recognises)", file=sys.stderr)
    sys.exit(2)


def _exit_hard_on_error(kind, value, tb) -> None:
  """sys.excepthook of a multi-process job: report, then end the process at once.

  A process that raised would otherwise wait in JAX's shutdown for the others, while they
  wait for it in the step's all-reduce; exiting hard ends the wait for all of them (the
  others lose their coordinator or their collective peer and stop with an error).
  """
  sys.__excepthook__(kind, value, tb)
  sys.stderr.flush()
  sys.stdout.flush()
  os._exit(1)  # pylint: disable=protected-access


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from jaxgan import errors  # pylint: disable=import-outside-toplevel
  errors.exit_on_argument_problems(errors.argument_problems(
      nonnegative={"process_id": FLAGS.process_id},
      positive={"num_processes": FLAGS.num_processes}, output_dirs={"workdir": FLAGS.workdir}))
  # INFO records go to the workdir's train.log once the run holds it; a failed save's
  # tracebacks go to its error.log.
  traces = errors.TracebackLog.install()
  import jax  # pylint: disable=import-outside-toplevel
  from jaxgan import compilation_cache  # pylint: disable=import-outside-toplevel
  compilation_cache.enable()
  settings = {name: FLAGS[name].value for name, *_ in DISTRIBUTED_SETTINGS}
  given = [name for name, value in settings.items() if value is not None]
  if given and not FLAGS.distributed:  # else the run would silently train alone
    print(f"error: --{given[0]} is a setting of --distributed, which was not given",
          file=sys.stderr)
    sys.exit(2)
  if FLAGS.distributed:
    initialize_distributed(**settings)
    sys.excepthook = _exit_hard_on_error
    if jax.process_index() > 0:  # process 0 speaks for the job; the others only warn
      logging.set_verbosity(logging.WARNING)
  from jaxgan import config as config_lib  # pylint: disable=import-outside-toplevel
  try:  # a mistake in the config ends the command before TensorFlow and the data load
    config_lib.validate(FLAGS.config)
  except errors.USER_ERRORS as e:
    errors.exit_with(e)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.config.set_visible_devices([], "GPU")  # TF only reads data; keep it off accelerators

  from jaxgan import train  # pylint: disable=import-outside-toplevel
  logging.info("JAX process %d/%d, local devices: %s", jax.process_index(),
               jax.process_count(), jax.local_devices())
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir, start_over=FLAGS.start_over,
                             on_claimed=traces.log_into if jax.process_index() == 0 else None)
  except errors.USER_ERRORS as e:  # one clear line, no traceback
    if jax.process_count() > 1:  # alone: the other processes must not wait for this one
      print(f"error: {e}", file=sys.stderr, flush=True)
      os._exit(1)  # pylint: disable=protected-access
    errors.exit_with(e, traces, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
