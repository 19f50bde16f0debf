"""The mistakes a user can make in a config, a data folder or a workdir, which every
command (train, sample, evaluate) answers with one line on stderr and exit status 1.

Each is an exception class of the module that finds the mistake; this is the one list
of them, imported lazily (the data pipeline brings TensorFlow).
"""

import sys
from typing import NoReturn


def user_errors() -> tuple[type[Exception], ...]:
  from jaxgan import checkpoint, config, divergence, input_pipeline, workdir  # pylint: disable=import-outside-toplevel
  return (checkpoint.CheckpointError, config.ConfigError, input_pipeline.DataError,
          workdir.WorkdirError, divergence.DivergenceError)


def exit_with(error: Exception) -> NoReturn:
  print(f"error: {error}", file=sys.stderr)
  sys.exit(1)
