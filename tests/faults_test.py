"""Fault injection: real training processes killed with SIGKILL at random moments.

Each trial trains a toy DCGAN on mock MNIST through the real command line
(`tests/fault_launcher.py` runs `jaxgan.main`), a checkpoint every 2 steps of 24, and kills
it with SIGKILL again and again, then restarts it until it finishes. A kill comes at one
of three kinds of moment, drawn from a seeded RNG:

- `any`: a random time after launch (start-up, restore, compilation or training);
- `training`: a random time after the process logged its first step;
- `save`: just after Orbax's temporary folder of the n-th save of the process appears,
  so that the kill lands while a checkpoint is being written or old ones deleted.

After every kill the latest checkpoint must restore; every restarted process must log
the step after it first; at the end the whole state must equal an uninterrupted run's
bit for bit, metrics.jsonl must hold every step once with the uninterrupted run's losses,
and no partial save may be left behind. The counts are printed (the README quotes them).

JAXGAN_FAULT_TRIALS (3), JAXGAN_FAULT_KILLS (kills per trial, 3) and JAXGAN_FAULT_SEED (0)
set the size and the draw; a failure names the seed and trial to reproduce it.
"""

import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from conftest import REPO
from jaxgan import checkpoint, inference

pytestmark = pytest.mark.faults

LAUNCHER = REPO / "tests" / "fault_launcher.py"
STEPS = 24
ARGS = ["--config", "configs/dcgan_mnist.py", f"--config.num_train_steps={STEPS}",
        "--config.batch_size=4", "--config.model.ngf=4", "--config.model.ndf=4",
        "--config.log_every_steps=1", "--config.checkpoint_every_steps=2",
        "--config.keep_checkpoints=2", "--config.sample_every_steps=1000",
        "--config.num_grid_images=0"]
TRIALS = int(os.environ.get("JAXGAN_FAULT_TRIALS", "3"))
KILLS_PER_TRIAL = int(os.environ.get("JAXGAN_FAULT_KILLS", "3"))
SEED = int(os.environ.get("JAXGAN_FAULT_SEED", "0"))
PARTIAL = ".orbax-checkpoint-tmp"
TIMEOUT = 180  # seconds for one process


class Run:
  """One training process; a thread collects the steps its progress lines report."""

  def __init__(self, workdir, log):
    self.proc = subprocess.Popen([sys.executable, str(LAUNCHER), *ARGS, "--workdir", str(workdir)],
                                 cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
    self.steps = []
    self.started = time.time()
    threading.Thread(target=self._read, daemon=True).start()

  def _read(self):
    for line in self.proc.stdout:
      match = re.match(r"step (\d+)/", line)
      if match:
        self.steps.append(int(match.group(1)))

  def running(self, seconds=0.0) -> bool:
    """Whether the process still runs after waiting up to `seconds` for it to end."""
    try:
      self.proc.wait(timeout=seconds) if seconds > 0 else None
    except subprocess.TimeoutExpired:
      return True
    return self.proc.poll() is None

  def wait_until(self, predicate) -> bool:
    """True once `predicate()` holds; False if the process ends first."""
    while not predicate():
      if not self.running(0.002):
        return False
      assert time.time() - self.started < TIMEOUT, "the training process hangs"
    return True

  def finish(self) -> int:
    self.proc.wait(timeout=TIMEOUT)
    return self.proc.returncode


def partial_saves(workdir) -> list[str]:
  folder = workdir / "checkpoints"
  return sorted(e for e in os.listdir(folder) if PARTIAL in e) if folder.exists() else []


KINDS = ("any", "training", "save")


def kill_at_random_moment(run: Run, workdir, kind: str, rng: random.Random) -> None:
  """Waits for a random moment of `kind`, then SIGKILLs `run` (unless it ended first)."""
  if kind == "any":
    run.running(rng.uniform(0.0, 8.0))
  elif kind == "training":
    if run.wait_until(lambda: run.steps):
      run.running(rng.uniform(0.0, 1.5))
  else:
    seen, saves = set(), rng.randint(1, 3)

    def nth_save_started():
      seen.update(partial_saves(workdir))
      return len(seen) >= saves

    if run.wait_until(lambda: run.steps) and run.wait_until(nth_save_started):
      time.sleep(rng.uniform(0.0, 0.03))
  if run.proc.poll() is None:
    run.proc.send_signal(signal.SIGKILL)
  run.proc.wait(timeout=TIMEOUT)


def latest_restorable(workdir):
  """The latest checkpoint's step after restoring it (None: no checkpoint yet)."""
  if checkpoint.Checkpoints(str(workdir / "checkpoints")).latest_step() is None:
    return None
  _, _, state = inference.load_run(str(workdir))  # CheckpointError if it does not restore
  return int(jax.device_get(state.step))


def losses(workdir) -> list[tuple]:
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines() if l]
  return [(r["step"], r["d_loss"], r["g_loss"], r["d_real"], r["d_fake"]) for r in rows]


def final_state(workdir):
  return jax.device_get(inference.load_run(str(workdir))[2])


@dataclasses.dataclass
class Counts:
  processes: int = 0
  kills: int = 0
  kills_in_save: int = 0  # kills that left a partial save behind
  kinds: dict = dataclasses.field(default_factory=dict)


def run_trial(workdir, rng: random.Random, counts: Counts, log) -> None:
  """Starts, kills and restarts training in `workdir` until it finishes; the kinds of
  moment take turns, in a random order."""
  kinds = [KINDS[i % len(KINDS)] for i in range(KILLS_PER_TRIAL)]
  rng.shuffle(kinds)
  kills = 0
  while True:
    resume_from = latest_restorable(workdir) or 0
    run = Run(workdir, log)
    counts.processes += 1
    kind = kinds[kills] if kills < len(kinds) else None
    if kind:
      kill_at_random_moment(run, workdir, kind, rng)
    code = run.finish()
    if run.steps:  # the restarted process went on from the latest checkpoint
      assert run.steps[0] == resume_from + 1, (run.steps[:3], resume_from)
    if code == 0:
      return
    assert code == -signal.SIGKILL, f"training failed (exit {code}); see {log.name}"
    kills += 1
    counts.kills += 1
    counts.kinds[kind] = counts.kinds.get(kind, 0) + 1
    counts.kills_in_save += bool(partial_saves(workdir))
    latest = latest_restorable(workdir)  # raises if the latest checkpoint does not restore
    assert (latest or 0) >= resume_from


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  with open(workdir.parent / "uninterrupted.log", "w") as log:
    assert Run(workdir, log).finish() == 0, f"see {log.name}"
  return workdir


def test_sigkill_at_random_moments_loses_nothing(uninterrupted, tmp_path, capsys):
  counts = Counts()
  expected_state, expected_losses = final_state(uninterrupted), losses(uninterrupted)
  assert [row[0] for row in expected_losses] == list(range(1, STEPS + 1))
  for trial in range(TRIALS):
    rng = random.Random(f"{SEED}-{trial}")
    workdir = tmp_path / f"trial{trial}"
    with open(tmp_path / f"trial{trial}.log", "w") as log:
      try:
        run_trial(workdir, rng, counts, log)
        assert latest_restorable(workdir) == STEPS
        for got, want in zip(jax.tree.leaves(final_state(workdir)), jax.tree.leaves(expected_state)):
          np.testing.assert_array_equal(got, want)
        assert losses(workdir) == expected_losses  # every step logged once, as uninterrupted
        assert partial_saves(workdir) == []
      except AssertionError as e:
        raise AssertionError(f"JAXGAN_FAULT_SEED={SEED} trial {trial}: {e}") from e
  with capsys.disabled():
    print(f"\nfaults: {TRIALS} trials, {counts.processes} training processes, {counts.kills} "
          f"SIGKILLs survived ({counts.kills_in_save} left a partial checkpoint save; by kind "
          f"{dict(sorted(counts.kinds.items()))}); final states equal to the uninterrupted run's")
  assert counts.kills >= TRIALS  # the kills did happen
