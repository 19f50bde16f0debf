"""A training run whose disk fills up mid-run, then the same run started again with room
(tests/reliability_test.py).

  unshare --mount python tests/full_disk_launcher.py MOUNT [fault_launcher args ...]

Runs in a mount namespace of its own (the tmpfs it mounts at MOUNT is seen by no other
process and goes with it): trains into MOUNT/run until checkpoint 4 exists, fills the
tmpfs, lets the run fail, frees the space and starts it again with `--config.num_train_steps=6`.
Prints one JSON line: each run's exit status and stderr, the checkpoint folder's entries
after each, and the run's train.log (the libraries' INFO lines).
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(mount, *args):
  subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount], check=True)
  workdir = os.path.join(mount, "run")
  command = [sys.executable, os.path.join(HERE, "fault_launcher.py"), *args, "--workdir", workdir]
  run = subprocess.Popen(command, cwd=os.path.dirname(HERE), stderr=subprocess.PIPE, text=True,
                         stdout=subprocess.DEVNULL)
  started = time.time()
  while not os.path.isdir(os.path.join(workdir, "checkpoints", "4")) and run.poll() is None:
    assert time.time() - started < 300, "no checkpoint 4"
    time.sleep(0.02)
  filler = os.open(os.path.join(mount, "filler"), os.O_WRONLY | os.O_CREAT)
  try:
    while True:
      os.write(filler, b"\0" * 4096)
  except OSError:  # ENOSPC: full
    pass
  os.close(filler)
  _, full = run.communicate(timeout=300)
  after_full = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  os.remove(os.path.join(mount, "filler"))
  again = subprocess.run(command + ["--config.num_train_steps=6"], cwd=os.path.dirname(HERE),
                         capture_output=True, text=True, timeout=300, check=False)
  print(json.dumps({"full": [run.returncode, full], "after_full": after_full,
                    "again": [again.returncode, again.stderr],
                    "after_again": sorted(os.listdir(os.path.join(workdir, "checkpoints"))),
                    "logs": sorted(f for f in os.listdir(workdir) if f.endswith(".log")),
                    "train_log": read(os.path.join(workdir, "train.log"))}))


def read(path):
  """The file's text, or '' where there is none."""
  try:
    with open(path) as f:
      return f.read()
  except OSError:
    return ""


if __name__ == "__main__":
  main(*sys.argv[1:])
