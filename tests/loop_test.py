"""The loop's input and calls: device prefetch, several steps per call (`lax.scan`) with
per-step logging and exact resume, and the start-up timings every run writes."""

import json
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from conftest import REPO
from jaxgan import config as config_lib, divergence, train
from jaxgan.errors import ConfigError
from train_test import assert_trees_equal, mock_data, params_of, tiny  # noqa: F401  (a fixture)

DCGAN = str(REPO / "configs" / "dcgan_mnist.py")


@pytest.mark.parametrize("start,end,k,sizes", [
    (0, 7, 1, [1] * 7),
    (0, 7, 3, [3, 3, 1]),
    (0, 6, 3, [3, 3]),
    (4, 10, 3, [1, 1, 3, 1]),   # resumed at 4: single steps to 6, then calls from multiples of 3
    (9, 9, 2, []),
])
def test_call_sizes(start, end, k, sizes):
  got = list(train.call_sizes(start, end, k))
  assert got == sizes and start + sum(got) == end
  # Every multiple of k on the way ends a call.
  ends = np.cumsum([start] + got)
  assert all(m in ends for m in range(start, end + 1) if m % k == 0 and m > start)


def recording(read: list, n: int = 100, fail_at: int | None = None):
  """Batches 0, 1, ... of two rows each, whose numbers are added to `read` as they are
  read; batch `fail_at` raises ValueError."""
  for i in range(n):
    if i == fail_at:
      raise ValueError(f"batch {i} is unreadable")
    read.append(i)
    yield {"image": np.full((2, 1), i, np.float32)}


def wait_for(condition, seconds: float = 10.0) -> bool:
  """Whether `condition()` holds within `seconds` (the input's thread runs on its own)."""
  deadline = time.monotonic() + seconds
  while not condition():
    if time.monotonic() > deadline:
      return False
    time.sleep(0.01)
  return True


def test_device_calls_in_order_and_no_further():
  """The calls come in order, stacked where a call has several steps, each with its last
  host batch; nothing past the run's last step is read."""
  mesh = train.make_mesh()
  read = []
  stats = {}
  calls = list(train.device_calls(recording(read), mesh, [2, 2, 1], stats=stats))
  assert stats["thread_seconds"] > 0  # the input thread's CPU
  assert [c.steps for c in calls] == [2, 2, 1] and read == [0, 1, 2, 3, 4]
  assert calls[0].batch["image"].shape == (2, 2, 1)
  np.testing.assert_array_equal(np.asarray(calls[0].batch["image"])[:, 0, 0], [0, 1])
  np.testing.assert_array_equal(calls[0].host["image"][0], [1])  # the call's last host batch
  np.testing.assert_array_equal(np.asarray(calls[1].batch["image"])[:, 0, 0], [2, 3])
  assert calls[2].batch["image"].shape == (2, 1)  # a single step: unstacked
  np.testing.assert_array_equal(np.asarray(calls[2].batch["image"])[:, 0], [4, 4])


def test_device_calls_read_ahead_on_their_own_thread_and_stop_when_closed():
  """While the loop holds its first call, the input's thread prepares PREFETCH more and
  the one after (blocked until there is room), then waits; closing the calls stops it."""
  mesh = train.make_mesh()
  read = []
  before = set(threading.enumerate())
  calls = train.device_calls(recording(read), mesh, [1] * 50)
  assert next(calls).steps == 1
  (thread,) = [t for t in threading.enumerate() if t not in before]
  assert thread.name == "jaxgan-input"
  ahead = 1 + train.PREFETCH + 1  # the loop's call, those waiting, the one in the making
  assert wait_for(lambda: len(read) == ahead), read
  time.sleep(0.3)
  assert read == list(range(ahead))  # and no further while the loop takes nothing
  next(calls)
  assert wait_for(lambda: len(read) == ahead + 1), read
  calls.close()
  assert not thread.is_alive()  # close waits for it


def test_device_calls_raise_the_inputs_error_where_its_call_is_taken():
  """An error while reading (a bad file, say) reaches the loop as itself, after the calls
  read before it."""
  mesh = train.make_mesh()
  calls = train.device_calls(recording([], fail_at=3), mesh, [1] * 10)
  assert [next(calls).steps for _ in range(3)] == [1, 1, 1]
  with pytest.raises(ValueError, match="batch 3 is unreadable"):
    next(calls)


EXIT_MID_READ = """
import sys
import numpy as np
import tensorflow as tf
from jaxgan import train
# Batches that keep TensorFlow's C++ busy: the input's thread is inside it at any moment.
big = tf.data.Dataset.range(10**9).map(lambda i: {"image": tf.fill([64, 512, 512], tf.cast(i, tf.float32))})
calls = train.device_calls(big.as_numpy_iterator(), train.make_mesh(), [1] * 1000)
next(calls)
sys.exit("error: a one-line error, the input's generator left open")
"""


def test_a_process_leaving_on_an_error_mid_read_ends_with_its_error():
  """The input's thread stops when the main thread ends, so a run that fails while its
  input is being read exits with its error: Python waits for the thread at exit (it is no
  daemon), and a thread that went on would hold the process. (A daemon thread once made
  such an exit abort inside TensorFlow's or XLA's C++ in CI, a race this test does not
  reproduce reliably.)"""
  out = subprocess.run([sys.executable, "-c", EXIT_MID_READ], cwd=REPO, capture_output=True,
                       text=True, timeout=120, check=False)  # a thread left running: a hang
  assert out.returncode == 1, out.stderr[-2000:]
  assert out.stderr.strip().splitlines()[-1] == "error: a one-line error, the input's generator left open"


def test_grouped_input_reads_the_same_batches():
  """Groups of k batches (`create_train_iterator(group=k)`) read as the single batches would
  be, from any skip and for calls of any size; a call of a whole group is the group itself."""
  singles = [{"image": np.full((2, 1), i, np.float32)} for i in range(20)]
  groups = [{"image": np.stack([b["image"] for b in singles[i:i + 3]])} for i in range(0, 18, 3)]
  sizes = [1, 1, 3, 3, 1, 2, 3]  # from step 4: a multiple of 3 at 6, 9
  one_by_one = train.batch_reader(iter(singles[4:]))
  grouped = train.batch_reader(iter(groups[1:]), group=3, skip=1)  # groups from step 3
  for n in sizes:
    want, got = one_by_one(n), grouped(n)
    np.testing.assert_array_equal(got["image"], want["image"])
  whole = groups[2]["image"]  # steps 6..8, the first call of 3
  reread = train.batch_reader(iter(groups[1:]), group=3, skip=1)
  reread(1), reread(1)
  assert np.shares_memory(reread(3)["image"], whole)


def test_steps_per_call_trains_the_same_steps(tmp_path, mock_data):
  """k steps under lax.scan are the same k steps: the same parameters (to float rounding:
  XLA compiles the loop's body apart), and metrics.jsonl logs every step's mean as before."""
  single = train.train_and_evaluate(tiny(DCGAN, steps=4), str(tmp_path / "single"))
  scanned = train.train_and_evaluate(tiny(DCGAN, steps=4, steps_per_call=2, log_every_steps=2,
                                          checkpoint_every_steps=2, sample_every_steps=2),
                                     str(tmp_path / "scanned"))
  for a, b in zip(jax.tree.leaves(params_of(single)), jax.tree.leaves(params_of(scanned))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  rows = [json.loads(l) for l in (tmp_path / "scanned" / "metrics.jsonl").read_text().splitlines()]
  singles = {r["step"]: r for r in map(json.loads, (tmp_path / "single" / "metrics.jsonl")
                                       .read_text().splitlines())}
  assert [r["step"] for r in rows] == [2, 4]
  for row in rows:  # the mean of the two steps' losses, as single steps logged them
    for name in ("d_loss", "g_loss"):
      expected = (singles[row["step"] - 1][name] + singles[row["step"]][name]) / 2
      np.testing.assert_allclose(row[name], expected, rtol=1e-4)
  timings = json.loads((tmp_path / "scanned" / "timings.json").read_text())
  assert timings["loop"]["steps"] == 4 and timings["loop"]["steps_per_call"] == 2


def test_steps_per_call_resumes_exactly(tmp_path, mock_data):
  over = dict(steps_per_call=2, log_every_steps=2, checkpoint_every_steps=2, sample_every_steps=2)
  straight = train.train_and_evaluate(tiny(DCGAN, steps=6, **over), str(tmp_path / "straight"))
  train.train_and_evaluate(tiny(DCGAN, steps=2, **over), str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(tiny(DCGAN, steps=6, **over), str(tmp_path / "resumed"))
  assert_trees_equal(params_of(resumed), params_of(straight))
  assert_trees_equal(jax.device_get(resumed.generator.opt_state),
                     jax.device_get(straight.generator.opt_state))
  # Resumed between multiples of k (at its last step, 3): step 4 alone, then calls of 2 from
  # groups that start at 2 with one batch skipped. The same batches: the same parameters,
  # to the rounding of a step compiled alone rather than under the scan.
  train.train_and_evaluate(tiny(DCGAN, steps=3, **over), str(tmp_path / "odd"))
  odd = train.train_and_evaluate(tiny(DCGAN, steps=6, **over), str(tmp_path / "odd"))
  for a, b in zip(jax.tree.leaves(params_of(odd)), jax.tree.leaves(params_of(straight))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_nonfinite_step_inside_a_call_is_named(tmp_path, mock_data, monkeypatch):
  """The finiteness flags come back per step: the divergence guard names the step inside a
  call of several, not the call's last."""
  real = divergence.finite_flags

  def bad_from_step_3(state, metrics):
    flags = real(state, metrics)
    return {**flags, "d_loss": flags["d_loss"] & (state.step < 3)}

  monkeypatch.setattr(divergence, "finite_flags", bad_from_step_3)
  config = tiny(DCGAN, steps=4, steps_per_call=4, log_every_steps=4, checkpoint_every_steps=4,
                sample_every_steps=4)
  with pytest.raises(divergence.DivergenceError, match="diverged at step 3: d_loss"):
    train.train_and_evaluate(config, str(tmp_path))


def test_timings_name_every_part_of_startup(tmp_path, mock_data):
  train.train_and_evaluate(tiny(DCGAN, steps=2), str(tmp_path))
  timings = json.loads((tmp_path / train.TIMINGS_FILE).read_text())
  startup = timings["startup"]
  assert set(train.STARTUP_PARTS) <= set(startup)
  assert all(v >= 0 for v in startup.values())
  assert startup["compilation"] > 0 and startup["state"] > 0
  assert startup["total"] == pytest.approx(sum(startup[p] for p in train.STARTUP_PARTS), abs=1e-3)
  loop = timings["loop"]
  assert loop["steps"] == 2 and loop["seconds"] > 0
  # The CPU of both host threads: the loop's and the input's (which read and converted the
  # two batches).
  assert loop["thread_seconds"] > 0 and loop["input_thread_seconds"] > 0


def test_cadences_must_be_multiples_of_steps_per_call():
  config = config_lib.load(DCGAN)
  config.steps_per_call = 4
  config.log_every_steps, config.sample_every_steps, config.checkpoint_every_steps = 8, 250, 8
  with pytest.raises(ConfigError, match="sample_every_steps=250 is not a multiple of "
                                        "config.steps_per_call=4"):
    config_lib.validate(config)
  config.sample_every_steps = 8
  config_lib.validate(config)
  config.steps_per_call = 0
  with pytest.raises(ConfigError, match="steps_per_call must be positive"):
    config_lib.validate(config)


def _cache_run(tmp_path, value):
  """A tiny compilation in a fresh process with JAXGAN_COMPILATION_CACHE=value; returns
  the folder the cache says it uses and the entries in tmp_path/cache."""
  import os
  import subprocess
  import sys
  code = ("from jaxgan import compilation_cache\nimport jax, jax.numpy as jnp\n"
          "print(compilation_cache.enable())\njax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3))\n")
  env = {**os.environ, "JAXGAN_COMPILATION_CACHE": value,
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                       text=True, check=True).stdout.strip().splitlines()[-1]
  cache = tmp_path / "cache"
  return out, sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_compilation_cache_writes_where_asked_and_can_be_turned_off(tmp_path):
  where, entries = _cache_run(tmp_path, str(tmp_path / "cache"))
  assert where == str(tmp_path / "cache") and any(e.startswith("jit_") for e in entries)
  where, _ = _cache_run(tmp_path, "")
  assert where == "None"
  from jaxgan import compilation_cache
  assert compilation_cache.default_dir().endswith(("jaxgan/compilation"))
