"""One workdir, one run: a lock, an architecture check, and files that are written whole.

A run holds a `fcntl.flock` on the workdir folder itself for as long as it trains: a
user who deletes or replaces a leftover-looking `run.lock` cannot free it, so a second run
on the same workdir is refused while the first lives, and never removes the first's
partial saves. Where the file system cannot lock a folder (NFS emulates flock with POSIX
locks, which a folder cannot take), `run.lock` itself is locked, and its inode checked
after locking, so a file deleted or replaced meanwhile is not mistaken for the lock. The
kernel drops the lock when the process ends in any way (SIGKILL, a preempted machine's
process killed, a crash), so a killed run never leaves the workdir stuck; a second run is
refused with the holder's pid, host and start time, which the holder writes into
`run.lock`. Only process 0 of a multi-host job takes it.

A workdir that already holds checkpoints of a run whose `config.json` differs from the new
config in an architecture field (`ARCHITECTURE_FIELDS`) is refused, with the differing
fields listed, unless the user asks to start over; starting over moves the old run into a sibling folder
(`<workdir>.old-<time>`) and never deletes it. Other fields (`num_train_steps`, the
learning rate, logging) may change between runs of one workdir: that is how a run is
extended.

`write_json` and `write_text` write to a temporary file and rename it over the target,
so a run killed while writing leaves the old file or the new one, never half of one. A
write that the storage refuses (disk full, quota, read-only, I/O error) is a `WriteError`:
one line naming the cause and the file (`write_errors`).
"""

import contextlib
import errno as errno_lib
import fcntl
import json
import os
import re
import socket
import time
from typing import Any, Callable, Iterator, Optional

from absl import logging

from jaxgan.errors import WorkdirError, WriteError

LOCK_FILE = "run.lock"
CONFIG_FILE = "config.json"
# What fixes the networks and so the shapes of the state: a run that changes any of these
# cannot continue from the old checkpoints. "model" covers every field under it.
ARCHITECTURE_FIELDS = ("family", "model", "data.image_size", "data.channels")
# Fields under those that change how the networks are computed, not what they are: a run
# may switch them on resume.
NOT_ARCHITECTURE_FIELDS = ("model.remat",)


# The errors of a write that the storage, not the program, is to blame for.
STORAGE_ERRNOS = (errno_lib.ENOSPC, errno_lib.EDQUOT, errno_lib.EROFS, errno_lib.EIO,
                  errno_lib.EFBIG)


def storage_failure(e: Optional[BaseException]) -> Optional[tuple[int, str]]:
  """(errno, file) of the OS error under `e` (it, its causes and contexts, or TensorStore's
  `... "file": ... [os_error_code='28']` text), or None when there is none."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno:
      return e.errno, e.filename or ""
    code = re.search(r"os_error_code='(\d+)'", str(e))
    if code:
      path = re.search(r'Failed writing: "([^"]+)"', str(e)) or re.search(r'"(/[^"]+)"', str(e))
      return int(code.group(1)), path.group(1) if path else ""
    e = e.__cause__ or e.__context__
  return None


@contextlib.contextmanager
def write_errors(what: Callable[[], str], intact: Callable[[], str] = lambda: "",
                 errnos: Optional[tuple[int, ...]] = None) -> Iterator[None]:
  """Turns a failed write (any OS error, or only `errnos`) into a one-line WriteError:
  'cannot write <what()>: <cause> (<file>); <intact()>: ...'."""
  try:
    yield
  except (WriteError, KeyboardInterrupt):
    raise
  except Exception as e:  # pylint: disable=broad-except  (Orbax wraps OS errors in others)
    failure = storage_failure(e)
    if failure is None or (errnos is not None and failure[0] not in errnos):
      raise
    code, path = failure
    name = errno_lib.errorcode.get(code, str(code))
    state = intact()
    raise WriteError(f"cannot write {what()}: {os.strerror(code)} ({name}"
                     f"{', ' + path if path else ''}); {state + ': ' if state else ''}free "
                     "space or fix the storage, then run the same command to resume") from e


def write_text(path: str, text: str) -> None:
  """Replaces `path` with `text` in one rename: readers see the old file or the new one."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write_json(path: str, obj: Any) -> None:
  write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def read_json(path: str) -> Any:
  """The JSON in `path` (never code: configs in a workdir are data), or a WorkdirError."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f"{path} is unreadable ({type(e).__name__}: {e}); move it aside, or "
                       "pass --start_over to move the whole run aside") from e


def _holder(path: str) -> str:
  try:
    with open(path) as f:
      info = json.load(f)
    return f"pid {info['pid']} on {info['host']}, started {info['started']}"
  except (OSError, ValueError, KeyError, TypeError):
    return "holder unknown"


def _same_file(fd: int, path: str) -> bool:
  """Whether `path` still names the file or folder open as `fd` (not deleted or replaced)."""
  try:
    a, b = os.fstat(fd), os.stat(path)
  except OSError:
    return False
  return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _take(fd: int, workdir: str, path: str) -> None:
  """An exclusive flock on `fd`, or WorkdirError naming the holder of `path`."""
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    raise WorkdirError(f"{workdir} is in use by another run ({_holder(path)}): wait for it "
                       "to end, stop it, or use another --workdir") from None


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
  """Holds `workdir`'s lock for the duration; WorkdirError when another process holds it
  (module docstring: the folder is locked, else `run.lock`)."""
  path = os.path.join(workdir, LOCK_FILE)
  fds = []
  try:
    try:
      fds.append(os.open(workdir, os.O_RDONLY | os.O_DIRECTORY))
      fds.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError as e:
      raise WorkdirError(f"cannot write into {workdir} ({e.strerror})") from e
    folder, fd = fds
    try:
      _take(folder, workdir, path)
      if not _same_file(folder, workdir):
        raise WorkdirError(f"{workdir} was moved or replaced while this run started: run the "
                           "same command again")
    except OSError as e:  # folders cannot be locked here (NFS): lock the file instead
      try:
        _take(fd, workdir, path)
        if not _same_file(fd, path):  # deleted or replaced between open and lock
          raise WorkdirError(f"{path} was deleted or replaced while this run started: run "
                             "the same command again") from e
      except OSError as e2:  # a file system without locks (some FUSE mounts): run unguarded
        logging.warning("cannot lock %s (%s): a second run on this workdir will not be "
                        "refused", path, e2.strerror)
    holder = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    yield
  finally:
    for fd in fds:
      os.close(fd)  # closing the descriptors releases the lock


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(_flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def _is_architecture(field: str) -> bool:
  if field in NOT_ARCHITECTURE_FIELDS:
    return False
  return any(field == f or field.startswith(f + ".") for f in ARCHITECTURE_FIELDS)


def architecture_changes(saved: dict, new: dict) -> list[str]:
  """'model.ngf: 64 -> 8' for each architecture field that both configs have and set
  differently (a field only one has is left to the checkpoint's own shape check)."""
  old, now = _flatten(saved), _flatten(json.loads(json.dumps(new)))  # tuples as JSON lists
  return [f"{k}: {old[k]!r} -> {now[k]!r}" for k in sorted(old.keys() & now.keys())
          if _is_architecture(k) and old[k] != now[k]]


def has_checkpoint(workdir: str) -> bool:
  folder = os.path.join(workdir, "checkpoints")
  return os.path.isdir(folder) and any(e.isdigit() for e in os.listdir(folder))


def check_architecture(workdir: str, config: dict,
                       upgrade: Callable[[dict], dict] = lambda saved: saved) -> None:
  """WorkdirError when `workdir` holds checkpoints of a run of another architecture than
  `config` (a run that saved none leaves nothing to resume, and is started afresh); the
  saved config is first given the fields added since it was saved (`upgrade`)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path) or not has_checkpoint(workdir):
    return
  changes = architecture_changes(upgrade(read_json(path)), config)
  if changes:
    raise WorkdirError(f"{workdir} holds a run of another architecture ({'; '.join(changes)}); "
                       "nothing was changed: use another --workdir, or pass --start_over to "
                       "move that run aside and start afresh")


def move_aside(workdir: str) -> str | None:
  """Moves everything in `workdir` but the lock into a new sibling folder; returns it
  (None when there was nothing). config.json moves last: a run killed half way through
  still finds it and is refused again, until --start_over moves the rest."""
  entries = sorted((e for e in os.listdir(workdir) if e != LOCK_FILE), key=lambda e: e == CONFIG_FILE)
  if not entries:
    return None
  base = f"{os.path.normpath(workdir)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
  dest, n = base, 1
  while os.path.exists(dest):
    dest, n = f"{base}-{n}", n + 1
  os.makedirs(dest)
  for entry in entries:
    os.rename(os.path.join(workdir, entry), os.path.join(dest, entry))
  return dest


@contextlib.contextmanager
def claim(workdir: str, config: dict, start_over: bool = False, lead: bool = True,
          upgrade: Callable[[dict], dict] = lambda saved: saved) -> Iterator[None]:
  """`workdir` for this run alone: locked (by the lead process), and either checked to
  hold no run of another architecture (`check_architecture`, with `upgrade`) or, with
  `start_over`, emptied into a sibling."""
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f"cannot use {workdir} as a workdir ({e.strerror or e})") from e
  if not os.path.isdir(workdir):
    raise WorkdirError(f"{workdir} is not a folder")
  with lock(workdir) if lead else contextlib.nullcontext():
    if start_over:
      moved = move_aside(workdir) if lead else None
      sync_processes("jaxgan_start_over")
      if moved:
        print(f"--start_over: moved the previous run in {workdir} to {moved}", flush=True)
    else:
      check_architecture(workdir, config, upgrade)
    yield


def sync_processes(name: str) -> None:
  """A barrier across the processes of a multi-host job (nothing on one process)."""
  import jax  # pylint: disable=import-outside-toplevel
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices(name)
