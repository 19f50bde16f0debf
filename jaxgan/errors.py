"""The mistakes a user can make in a config, a data folder or a workdir, which every
command (train, sample, evaluate) answers with one line on stderr and exit status 1.

Each is an exception class of the module that finds the mistake; this is the one list
of them, imported lazily (the data pipeline brings TensorFlow). A write that the storage
refuses (`workdir.WriteError`) is answered the same way; the tracebacks behind it, which
Orbax's background threads log by the hundred lines, go to a file (`TracebackLog`).
"""

import collections
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
from typing import NoReturn, Optional

# Tracebacks a TracebackLog holds for its file.
MAX_TRACES = 50


def user_errors() -> tuple[type[Exception], ...]:
  from jaxgan import checkpoint, config, divergence, input_pipeline, workdir  # pylint: disable=import-outside-toplevel
  return (checkpoint.CheckpointError, config.ConfigError, input_pipeline.DataError,
          workdir.WorkdirError, workdir.WriteError, divergence.DivergenceError)


class TracebackLog(logging.Filter):
  """A filter for the terminal's log handler that holds back every record logged with a
  traceback, and the tracebacks of threads that die, for `write` to put into a file."""

  def __init__(self):
    super().__init__()
    self.traces = collections.deque(maxlen=MAX_TRACES)  # a long run keeps the latest

  def filter(self, record: logging.LogRecord) -> bool:
    if record.exc_info:
      self.traces.append(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
                         .format(record))
      return False
    return True

  @classmethod
  def install(cls) -> "TracebackLog":
    """A new filter on absl's handler (the one that writes to the terminal)."""
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    log = cls()
    absl_logging.get_absl_handler().addFilter(log)

    def thread_died(args):  # a library's thread that dies in a failed save (asyncio's, say)
      log.traces.append("".join(traceback.format_exception(args.exc_value)))
      absl_logging.warning("thread %s ended: %s: %s", getattr(args.thread, "name", "?"),
                           args.exc_type.__name__, str(args.exc_value).split("\n")[0])

    def unraisable(args):  # raised where no caller can catch it: a storage library's callback
      log.traces.append(f"{args.err_msg or 'Exception ignored in'}: {args.object!r}\n" + "".join(
          traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)))

    threading.excepthook = thread_died
    sys.unraisablehook = unraisable
    return log

  def write(self, folder: str, error: BaseException) -> str:
    """Appends the held tracebacks and `error`'s to `<folder>/error.log` (else, when that
    cannot be written, a file in the temporary folder); returns the file's path."""
    text = (f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n"
            + "\n".join(self.traces) + "\n"
            + "".join(traceback.format_exception(error)))
    for path in (os.path.join(folder, "error.log"),
                 os.path.join(tempfile.gettempdir(), f"jaxgan-error-{os.getpid()}.log")):
      try:
        with open(path, "a") as f:
          f.write(text)
        return path
      except OSError:
        continue
    return "(nowhere: no file could be written)"


def exit_with(error: Exception, log: Optional[TracebackLog] = None,
              folder: Optional[str] = None) -> NoReturn:
  """One line on stderr and exit status 1; with `log`, a write failure's traceback goes to
  a file in `folder` that the line names."""
  from jaxgan import workdir  # pylint: disable=import-outside-toplevel
  where = ""
  if log is not None and folder and isinstance(error, workdir.WriteError):
    where = f" (the full trace is in {log.write(folder, error)})"
  print(f"error: {error}{where}", file=sys.stderr)
  sys.exit(1)



def config_file_problem(path: str) -> Optional[str]:
  """What is wrong with the config file `path`, in one line (None: it loads and has a
  `get_config()` that returns a config)."""
  from jaxgan import config as config_lib  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(path):
    return (f"config file {path} not found (the experiments are in configs/)"
            if not os.path.isdir(path) else f"config file {path} is a folder, not a .py file")
  try:
    config_lib.load(path)
  except SyntaxError as e:
    return f"config file {path} does not parse: {e.msg} (line {e.lineno})"
  except AttributeError as e:
    if getattr(e, "name", None) == "get_config" and getattr(e, "obj", None) is not None:
      return (f"config file {path} has no get_config(): a config file defines get_config() "
              "returning an ml_collections.ConfigDict (see configs/)")
    return f"config file {path} failed to load: {_at_line(e, path)}"
  except Exception as e:  # pylint: disable=broad-except  (whatever the file's code raises)
    return f"config file {path} failed to load: {_at_line(e, path)}"
  return None


def _at_line(e: BaseException, path: str) -> str:
  """'ImportError: ... (line 3)': `e`'s first line and the line of `path` it came from."""
  line = next((f.lineno for f in reversed(traceback.extract_tb(e.__traceback__))
               if os.path.abspath(f.filename) == os.path.abspath(path)), None)
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0] if text else ''}{f' (line {line})' if line else ''}"


def argument_problems(positive: dict = (), nonnegative: dict = (), output_files: dict = (),
                      output_dirs: dict = ()) -> list[str]:
  """The command line's mistakes found without loading anything: {flag: value} of values
  that must be > 0 or >= 0 (None: not given), of files to be written (their folder must
  exist and be writable; the path no folder), and of folders to be created or written."""
  problems = [f"--{k}={v} must be positive" for k, v in dict(positive).items()
              if v is not None and v <= 0]
  problems += [f"--{k}={v} must not be negative" for k, v in dict(nonnegative).items()
               if v is not None and v < 0]
  for flag, path in dict(output_files).items():
    if path is None:
      continue
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
      problems.append(f"--{flag}={path} is a folder; give a file name")
    elif not os.path.isdir(parent):
      problems.append(f"--{flag}={path}: the folder {parent} does not exist; create it first")
    elif not os.access(parent, os.W_OK):
      problems.append(f"--{flag}={path}: the folder {parent} is not writable")
  for flag, path in dict(output_dirs).items():
    if path is None:
      continue
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
      existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
      problems.append(f"--{flag}={path}: {existing} is a file, not a folder")
    elif not os.access(existing, os.W_OK):
      problems.append(f"--{flag}={path}: {existing} is not writable")
  return problems


def exit_on_argument_problems(problems: list[str]) -> None:
  """The first problem as one line and exit status 2 (a usage mistake), if any."""
  if problems:
    print(f"error: {problems[0]}", file=sys.stderr)
    sys.exit(2)
