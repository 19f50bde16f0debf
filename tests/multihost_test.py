"""Multi-host training through JAX's own distributed runtime: two real processes on this
machine equal one process on the same global batch.

Two `python -m jaxgan.main --distributed` processes (the real command line) meet at a
coordinator on a free loopback port (`jax.distributed.initialize`; JAX's gloo collectives
carry the gradient all-reduce between CPU processes) and train a toy DCGAN for a few steps,
each process on one CPU device, so the mesh has two devices in two processes. The data is
a small TFDS dataset written into a temporary data dir (`tfds.dataset_builders.
store_as_tfds_dataset`), not `tfds.testing.mock_data`: mock data ignores the sub-splits
that `tfds.split_for_jax_process` makes, so under it both processes would read the same
examples and the test could not tell a process reading its own shard from one reading all.

Why the single-process reference is fed differently: with P processes, process k reads
only shard k of the split (its own half here) and shuffles it by (seed, epoch), so the
global batch is [process 0's rows, process 1's rows]; a single process shuffles the whole
split and would see another batch. Both runs see the same global batch when the single
process reads, for every step, both processes' rows side by side: its iterator is
`create_train_iterator(..., process_index=k, process_count=2)` for k = 0, 1, concatenated.
The comparison stays strict: were each process reading the whole split (or the same
shard), its global batch would hold one half twice, and the first losses already differ.

Then: the final states (parameters, batch statistics, both Adam states, step, key) are
equal to float32 round-off and every logged loss agrees; the checkpoints exist once (both
processes call Orbax's save; Orbax writes one checkpoint); `metrics.jsonl`, the progress
lines, the sample grids and the lock come from process 0 alone.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from conftest import REPO
from jaxgan import inference, train, workdir as workdir_lib
from jaxgan.datasets import streams
from train_test import tiny

DATASET = "jaxgan_multihost_digits"
NUM_EXAMPLES = 16  # 8 per process: an epoch is 2 steps of the global batch
STEPS = 3          # into the second epoch, so the reshuffle is compared too
OVERRIDES = {"data.name": DATASET, "num_train_steps": STEPS, "batch_size": 8,
             "model.ngf": 4, "model.ndf": 4, "log_every_steps": 1,
             "checkpoint_every_steps": 2, "sample_every_steps": 1000, "num_grid_images": 4}
TIMEOUT = 240  # seconds for the two processes together


def write_dataset(data_dir) -> None:
  """NUM_EXAMPLES random 28x28x1 digits as a prepared TFDS dataset in `data_dir`."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (NUM_EXAMPLES, 28, 28, 1), dtype=np.uint8)
  labels = (np.arange(NUM_EXAMPLES) % 10).astype(np.int64)
  features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(28, 28, 1)),
                                         "label": tfds.features.ClassLabel(num_classes=10)})
  split = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
  tfds.dataset_builders.store_as_tfds_dataset(DATASET, "1.0.0", features, {"train": split},
                                              data_dir=str(data_dir), disable_shuffling=True)


def make_config(data_dir):
  """The config the command line of `TwoProcesses` gives."""
  return tiny(str(REPO / "configs" / "dcgan_mnist.py"), STEPS,
              **{**OVERRIDES, "data.data_dir": str(data_dir)})


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class TwoProcesses:
  """Both processes of the job, started at once; `wait()` gives [(returncode, stdout,
  stderr, pid)] by process id."""

  def __init__(self, workdir, data_dir, timeout=TIMEOUT, **overrides):
    port = free_port()
    args = ["--config", "configs/dcgan_mnist.py", "--workdir", str(workdir), "--distributed",
            f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
            f"--config.data.data_dir={data_dir}",
            *(f"--config.{k}={v}" for k, v in {**OVERRIDES, **overrides}.items())]
    # The coordinator listens on loopback only (JAX's default binds every interface), and
    # gRPC must not send loopback traffic to a proxy (JAX warns of *_proxy variables).
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(JAX_PLATFORMS="cpu", JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}")
    self.logs = [[open(workdir.parent / f"process_{i}.{s}", "w+") for s in ("out", "err")]
                 for i in range(2)]
    self.procs = [subprocess.Popen([sys.executable, "-m", "jaxgan.main", *args,
                                    f"--process_id={i}"], cwd=REPO, env=env,
                                   stdout=self.logs[i][0], stderr=self.logs[i][1])
                  for i in range(2)]
    self.deadline = time.time() + timeout

  def wait(self):
    try:
      for proc in self.procs:
        proc.wait(timeout=max(1.0, self.deadline - time.time()))
    finally:
      for proc in self.procs:  # one left waiting for a dead peer: end it, report below
        if proc.poll() is None:
          proc.kill()
          proc.wait()
    results = []
    for proc, files in zip(self.procs, self.logs):
      texts = []
      for f in files:
        f.seek(0)
        texts.append(f.read())
        f.close()
      results.append((proc.returncode, *texts, proc.pid))
    return results


def two_process_iterator(real):
  """`create_train_iterator` that gives one process what a 2-process job's global batch
  holds: process 0's rows, then process 1's (the module docstring)."""

  def iterator(*args, **kwargs):
    shards = [real(*args, **kwargs, process_index=k, process_count=2) for k in range(2)]
    for parts in zip(*shards):
      yield {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

  return iterator


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp("tfds")
  write_dataset(folder)
  return folder


def metrics_rows(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line]


def test_each_process_reads_its_own_shard(data_dir):
  config = make_config(data_dir)

  def first_epoch(index, count):
    """The rows process `index` of `count` trains on in the first epoch (one batch of the
    global batch NUM_EXAMPLES is one epoch)."""
    it = streams.create_train_iterator(config.data, NUM_EXAMPLES, 0, process_index=index,
                                       process_count=count)
    return {row.tobytes() for row in next(it)["image"]}

  shards = [first_epoch(k, 2) for k in range(2)]
  assert len(shards[0]) == len(shards[1]) == NUM_EXAMPLES // 2
  assert not shards[0] & shards[1]  # disjoint, and together the whole split
  assert shards[0] | shards[1] == first_epoch(0, 1)


@pytest.mark.slow  # 80 s of CPU in three processes: about 45 s on two idle cores
def test_two_processes_equal_one_process(tmp_path, data_dir, monkeypatch):
  (tmp_path / "multi").mkdir()
  multi, single = tmp_path / "multi" / "run", tmp_path / "single"
  job = TwoProcesses(multi, data_dir)
  try:  # the reference trains here meanwhile
    monkeypatch.setattr(streams, "create_train_iterator",
                        two_process_iterator(streams.create_train_iterator))
    train.train_and_evaluate(make_config(data_dir), str(single))
  finally:
    results = job.wait()
  for i, (code, out, err, _) in enumerate(results):
    assert code == 0, f"process {i} exited with {code}:\n{out[-2000:]}\n{err[-4000:]}"

  # Logged once, by process 0: one row per step, progress lines only on its stdout.
  rows, reference = metrics_rows(multi), metrics_rows(single)
  assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
  assert f"step {STEPS}/{STEPS}" in results[0][1]
  assert "step " not in results[1][1], results[1][1][-1000:]
  for row, ref in zip(rows, reference):
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_fake_after"):
      assert abs(row[key] - ref[key]) <= 1e-5 * max(1.0, abs(ref[key])), (row["step"], key,
                                                                          row[key], ref[key])
  # The checkpoints exist once, whole, in the multi-process run's workdir.
  assert sorted(os.listdir(multi / "checkpoints")) == sorted(os.listdir(single / "checkpoints"))
  assert sorted(os.listdir(multi / "checkpoints")) == ["2", "3"]
  assert sorted(os.listdir(multi / "samples")) == ["step_000000.png", f"step_{STEPS:06d}.png"]
  lock = json.loads((multi / "run.lock").read_text())
  assert lock["pid"] == results[0][3]  # process 0 took the workdir's lock

  _, _, multi_state = inference.load_run(str(multi))
  _, _, single_state = inference.load_run(str(single))
  leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(multi_state))
  expected = jax.tree.leaves(jax.device_get(single_state))
  assert int(multi_state.step) == int(single_state.step) == STEPS
  worst = max((float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))),
               jax.tree_util.keystr(path)) for (path, a), b in zip(leaves, expected))
  print(f"two processes vs one, {STEPS} steps: largest state difference {worst[0]:.3g} "
        f"({worst[1]})")
  # Same math, different reduction order between the processes: float32 round-off. A
  # different global batch moves parameters by Adam steps of the learning rate (2e-4).
  assert worst[0] < 1e-5, worst


@pytest.mark.parametrize("args,env,message", [
    (["--distributed", "--num_processes=2"], {},
     "error: --distributed: coordinator_address should be defined"),
    (["--distributed"], {"JAX_PROCESS_ID": "first"},
     "error: $JAX_PROCESS_ID='first' is not an integer"),
    (["--process_id=1"], {}, "error: --process_id is a setting of --distributed, which was not"),
])
def test_distributed_settings_mistakes_are_one_line(tmp_path, args, env, message):
  clean = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COORDINATOR")}
  out = subprocess.run([sys.executable, "-m", "jaxgan.main", "--config", "configs/dcgan_mnist.py",
                        "--workdir", str(tmp_path), *args], cwd=REPO,
                       env={**clean, **env}, capture_output=True, text=True, timeout=60,
                       check=False)
  assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
  assert "Traceback" not in out.stderr


def test_a_failing_process_ends_the_job(tmp_path, data_dir):
  """Process 0 finds the workdir locked by another run and stops with one line; process 1,
  which takes no lock and would go on to wait for it in a collective, is ended by JAX's
  distributed runtime within seconds (process 0 exits hard, `jaxgan.main`)."""
  (tmp_path / "multi").mkdir()
  workdir = tmp_path / "multi" / "run"
  workdir.mkdir()
  with workdir_lib.lock(str(workdir)):  # the other run
    started = time.time()
    results = TwoProcesses(workdir, data_dir, timeout=120).wait()
  (code0, _, err0, _), (code1, _, err1, _) = results
  assert code0 == 1 and "is in use by another run" in err0.strip().splitlines()[-1], err0[-2000:]
  assert "Traceback" not in err0
  assert code1 not in (0, -9), (code1, err1[-2000:])  # ended by JAX, not by our kill
  assert time.time() - started < 120


@pytest.mark.slow  # two jobs of two processes: about a minute on two idle cores
def test_a_sigterm_to_one_process_stops_the_job_at_one_saved_step(tmp_path, data_dir):
  """A preemption signals one host only: both processes agree on the step to stop at, save
  it, say so and exit 0, and the same command resumes the job from that checkpoint."""
  (tmp_path / "multi").mkdir()
  workdir = tmp_path / "multi" / "run"
  endless = {"num_train_steps": 100_000, "log_every_steps": 5, "checkpoint_every_steps": 100_000,
             "sample_every_steps": 100_000, "num_grid_images": 0}
  job = TwoProcesses(workdir, data_dir, timeout=600, **endless)
  try:
    # Step 5's progress line: both processes are in the loop (each step is a collective).
    while "step 5/" not in (workdir.parent / "process_0.out").read_text():
      assert time.time() < job.deadline and all(p.poll() is None for p in job.procs)
      time.sleep(0.2)
    os.kill(job.procs[1].pid, signal.SIGTERM)
  finally:
    results = job.wait()
  for i, (code, out, err, _) in enumerate(results):
    assert code == 0, f"process {i} exited with {code}:\n{out[-2000:]}\n{err[-4000:]}"
  saved = [re.findall(r"^(.*): checkpoint saved at step (\d+);", out, re.M)
           for _, out, _, _ in results]
  assert saved[0] and saved[1], results
  (said0, step0), (said1, step1) = saved[0][-1], saved[1][-1]
  assert (said0, said1) == ("SIGTERM to process 1", "SIGTERM") and step0 == step1
  step = int(step0)
  assert step % 5 == 0  # decided at a log step, where the loop syncs anyway
  assert os.listdir(workdir / "checkpoints") == [str(step)]
  assert metrics_rows(workdir)[-1]["step"] == step

  results = TwoProcesses(workdir, data_dir, timeout=600,
                         **{**endless, "num_train_steps": step + 2}).wait()
  for i, (code, out, err, _) in enumerate(results):
    assert code == 0, f"process {i} exited with {code}:\n{out[-2000:]}\n{err[-4000:]}"
  assert [r["step"] for r in metrics_rows(workdir)][-2:] == [step, step + 2]
  assert sorted(os.listdir(workdir / "checkpoints"), key=int)[-1] == str(step + 2)
