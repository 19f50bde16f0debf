"""The mistakes a user can make in a config, a data folder or a workdir, which every
command (train, sample, evaluate) answers with one line on stderr and exit status 1.

This module defines every such error class (`USER_ERRORS`); the modules that find the
mistakes raise them from here. It imports nothing of the package, so any module can. A
write that the storage refuses (`WriteError`) is answered the same way; the tracebacks
behind it, which Orbax's background threads log by the hundred lines, go to a file
(`TracebackLog`).
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
# The workdir's file of the records below WARNING (`TracebackLog.log_into`), and how many
# of them a TracebackLog holds until it knows the workdir.
INFO_LOG = "train.log"
MAX_HELD = 10_000
_FORMAT = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")


class ConfigError(ValueError):
  """A config value (or a command line's setting) that no run can use."""


class DataError(Exception):
  """Data that no run can use: a missing dataset, an unreadable file, an empty split."""


class DataNotFoundError(DataError):
  """The dataset is neither prepared, nor in manual_dir, nor downloadable."""


class CheckpointError(Exception):
  """A checkpoint exists but cannot be restored into this run's state."""


class WorkdirError(Exception):
  """A workdir that this run may not use as it is."""


class WriteError(Exception):
  """A write into the workdir that the storage refused: disk full, quota, read-only, I/O."""


class DivergenceError(Exception):
  """Training produced NaN or infinite values."""


# What commands catch and print as one line (subclasses included).
USER_ERRORS = (ConfigError, DataError, CheckpointError, WorkdirError, WriteError,
               DivergenceError)


class TracebackLog(logging.Filter):
  """A filter for the terminal's log handler that keeps the terminal to the progress line,
  warnings and errors.

  It holds back every record logged with a traceback, and the tracebacks of threads that
  die, for `write` to put into a file; and the records below WARNING (the libraries' INFO:
  Orbax's saves, JAX's compilations) go to `<workdir>/train.log` once `log_into` names the
  workdir, held in memory until then.
  """

  def __init__(self):
    super().__init__()
    self.traces = collections.deque(maxlen=MAX_TRACES)  # a long run keeps the latest
    self.held = collections.deque(maxlen=MAX_HELD)  # INFO lines before the file is known
    self.file = None
    self.lock = threading.Lock()  # Orbax's threads log too

  def filter(self, record: logging.LogRecord) -> bool:
    if record.exc_info:
      self.traces.append(_FORMAT.format(record))
      return False
    if record.levelno < logging.WARNING:
      self._info(_FORMAT.format(record))
      return False
    return True

  def _info(self, line: str) -> None:
    with self.lock:
      self.held.append(line)
      self._flush()

  def _flush(self) -> None:
    """Writes the held lines, if there is a file (the lock held)."""
    if self.file is None:
      return
    try:
      self.file.write("".join(line + "\n" for line in self.held))
      self.file.flush()
    except (OSError, ValueError):  # a full disk: the run's own error says so, not this log
      self.file = None
    self.held.clear()

  def log_into(self, folder: str) -> None:
    """From now on the records below WARNING are appended to `<folder>/train.log`, those
    held so far first (kept in memory when the file cannot be opened)."""
    with self.lock:
      try:
        self.file = open(os.path.join(folder, INFO_LOG), "a")
      except OSError:
        return
      self._flush()

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
  where = ""
  if log is not None and folder and isinstance(error, WriteError):
    where = f" (the full trace is in {log.write(folder, error)})"
  print(f"error: {error}{where}", file=sys.stderr)
  sys.exit(1)


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
