"""The training loop every family shares (Flax examples' `train_and_evaluate`).

The loop owns what is the same for all models: the device mesh and sharding, the input
pipeline, the jitted step, logging (TensorBoard through clu, `metrics.jsonl`, a
progress line with steps/s and ETA), fixed-noise sample grids, checkpoints and exact
resumption, clean stops on SIGINT/SIGTERM, one run per workdir (`jaxgan.workdir`) and the
divergence guard (`jaxgan.divergence`). The model family (`jaxgan.families`) supplies the
state and the step; nothing here knows which family runs.

Data parallelism: one `Mesh` over every device of every process, axis 'data'. The
batch is sharded along it and the state replicated, so `jit` partitions the step and
inserts the gradient all-reduce; reductions over the batch (losses, BatchNorm
statistics) are over the global batch. The same code runs on one CPU, eight GPUs, or a
TPU pod after `jax.distributed.initialize()`, each process feeding its own rows.
"""

import contextlib
import dataclasses
import itertools
import json
import os
import queue
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxgan import (checkpoint, config as config_lib, divergence, families, visualize,
                    workdir as workdir_lib)
from jaxgan.datasets import preparation, streams
from jaxgan.errors import DataError

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over `devices` (default: every device of every process)."""
  return Mesh(np.array(jax.devices() if devices is None else devices), (DATA_AXIS,))


def mesh_platform(mesh: Mesh) -> str:
  """The platform of the mesh's devices, which the programs jitted over it compile for."""
  return mesh.devices.flat[0].platform


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's rows -> global arrays sharded over the mesh's data axis."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def stacked_sharding(mesh: Mesh) -> NamedSharding:
  """Of k batches stacked on a leading axis (`compile_train_steps`' input): each sharded
  along the data axis."""
  return NamedSharding(mesh, P(None, DATA_AXIS))


def shard_batches(batches: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's rows of k consecutive batches, stacked [k, B/P, ...] -> global arrays
  [k, B, ...], each batch sharded over the mesh's data axis."""
  sharding = stacked_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batches.items()}


def call_sizes(start_step: int, num_steps: int, steps_per_call: int) -> Iterator[int]:
  """The steps each call of the loop takes from `start_step` to `num_steps`:
  `steps_per_call` from every multiple of it that has that many steps left, else 1 (after
  a resume at another step, and at the end). So the calls of a run and of the same run
  stopped and resumed at a checkpoint end at the same steps, and every multiple of
  `steps_per_call` ends a call."""
  step = start_step
  while step < num_steps:
    n = steps_per_call if step % steps_per_call == 0 and step + steps_per_call <= num_steps else 1
    yield n
    step += n


# Calls whose input waits on the device before the loop asks for it: a thread of their own
# reads and transfers them while the loop's thread dispatches the steps (the Flax examples'
# `prefetch_to_device` size 2, on big_vision's input thread).
PREFETCH = 2


@dataclasses.dataclass(frozen=True)
class Call:
  """One call's input: its `steps`, the sharded `batch` (batches stacked when steps > 1)
  and the last host batch (the real images of the final figures)."""
  steps: int
  batch: dict[str, jax.Array]
  host: dict[str, np.ndarray]


def batch_reader(data: Iterator[dict[str, np.ndarray]], group: int = 1,
                 skip: int = 0) -> Callable[[int], dict[str, np.ndarray]]:
  """`read(n)`: the next n batches of `data`, one batch [B, ...] for n = 1, else stacked
  [n, B, ...].

  `data` yields single batches (`group` 1) or groups of `group` consecutive batches stacked
  (`streams.create_train_iterator(..., group=)`), of which the first `skip` batches are
  dropped. A read of a whole group is the group itself: one element of the stream per call
  and no copy, where single batches cost a conversion each and a stack per call. The loop
  starts its groups at a multiple of `steps_per_call` (`skip` the steps before its start),
  so that every call of that many steps is a whole group."""
  if group == 1:
    def read_single(n):
      batches = [next(data) for _ in range(n)]
      return batches[0] if n == 1 else {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    return read_single

  chunk, used, skip_next = None, group, skip  # `used` rows of `chunk` read

  def read(n):
    nonlocal chunk, used, skip_next
    parts, left = [], n
    while left:
      if used == group:
        chunk, used, skip_next = next(data), skip_next, 0
      m = min(left, group - used)
      parts.append({k: v[used:used + m] for k, v in chunk.items()})
      used, left = used + m, left - m
    rows = parts[0] if len(parts) == 1 else {
        k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return {k: v[0] for k, v in rows.items()} if n == 1 else rows

  return read


def device_calls(data: Iterator[dict[str, np.ndarray]], mesh: Mesh, sizes: Iterable[int],
                 ahead: int = PREFETCH, group: int = 1, skip: int = 0,
                 stats: Optional[dict[str, float]] = None) -> Iterator[Call]:
  """The calls of `sizes`, their batches read from `data` (`batch_reader(data, group,
  skip)`) and put on the mesh by a thread of their own (`in_background`), up to `ahead`
  calls before the loop takes them: the loop's thread only dispatches, so the host's
  reading, converting and transferring overlap the steps even where each call of the
  loop is short. Reads only what the calls use (with groups: up to the end of the group
  that holds the run's last step), so where `data` stands after a stop does not matter (a
  resumed run makes a new stream at its checkpoint's step). `stats`: `in_background`'s."""
  read = batch_reader(data, group, skip)

  def call(n):
    rows = read(n)
    if n == 1:
      return Call(1, shard_batch(rows, mesh), rows)
    return Call(n, shard_batches(rows, mesh), {k: v[-1] for k, v in rows.items()})

  return in_background(map(call, sizes), ahead, stats)


def in_background(items: Iterator[Any], ahead: int,
                  stats: Optional[dict[str, float]] = None) -> Iterator[Any]:
  """`items`, produced by a thread of their own up to `ahead` items before they are taken
  (one more may be in the making). An exception of the producer is raised where the item
  it was making would have been taken. Closing the generator stops the producer at its
  next item and waits for it; so does the main thread's end (a process leaving on an
  error, the generator not closed), since a process that exits while the thread is
  inside TensorFlow's or XLA's C++ aborts ("FATAL: exception not rethrown") instead of
  ending with its one-line error. The thread starts at the first item taken. `stats`, if
  given, holds the producer's CPU seconds so far (`thread_seconds`, after each item)."""
  queue_ = queue.Queue(maxsize=ahead)
  stop = threading.Event()
  main = threading.main_thread()

  def offer(entry) -> bool:
    while not stop.is_set() and main.is_alive():  # Python joins this thread at exit
      try:
        queue_.put(entry, timeout=0.1)
        return True
      except queue.Full:
        pass
    return False

  def produce():
    try:
      for item in items:
        if stats is not None:
          stats["thread_seconds"] = time.thread_time()  # this thread's, from its start
        if not offer((True, item)):
          return
      offer((False, None))
    except BaseException as error:  # pylint: disable=broad-except  (raised in the taker)
      offer((False, error))

  thread = threading.Thread(target=produce, name="jaxgan-input")
  thread.start()
  try:
    while True:
      more, value = queue_.get()
      if not more:
        if value is not None:
          raise value
        return
      yield value
  finally:
    stop.set()
    thread.join()


def _step_with_flags(family: families.Family):
  """One step of the family and the finiteness flags of its new state and metrics:
  (state, batch) -> (state, metrics, finite)."""
  def step(state, batch):
    state, metrics = family.train_step(state, batch)
    return state, metrics, divergence.finite_flags(state, metrics)

  return step


def _jit_step(family: families.Family, fn, mesh: Mesh, input_sharding: NamedSharding,
              donate: bool):
  """`fn` jitted as the loop runs it: state replicated and donated, the input sharded by
  `input_sharding`, everything returned replicated."""
  return jax.jit(families.traced_as_family(family, fn),
                 in_shardings=(replicated(mesh), input_sharding),
                 out_shardings=(replicated(mesh),) * 3, donate_argnums=0 if donate else ())


def compile_train_step(family: families.Family, mesh: Mesh, donate: bool = True):
  """The family's step, jitted: batch sharded, state replicated and donated (its buffers
  reused for the new state; `donate=False` only to measure what that saves).

  Returns (state, metrics, finite): `finite` is `divergence.finite_flags` of the new state
  and the metrics, computed on the device with the step.
  """
  return _jit_step(family, _step_with_flags(family), mesh, batch_sharding(mesh), donate)


def compile_train_steps(family: families.Family, mesh: Mesh, donate: bool = True):
  """Several steps in one call: `compile_train_step`'s step under `lax.scan` over k batches
  stacked on a leading axis (`shard_batches`), for devices whose steps are shorter than the
  host's work per call (`config.steps_per_call`). Returns the state after the k steps, and
  each step's metrics and finiteness flags stacked [k, ...]: the loop logs and checks them
  per step, as it does those of single steps. k is the leading size of the batch."""
  step = _step_with_flags(family)

  def steps(state, batches):
    def one(state, batch):
      state, metrics, finite = step(state, batch)
      return state, (metrics, finite)

    state, (metrics, finite) = jax.lax.scan(one, state, batches)
    return state, metrics, finite

  return _jit_step(family, steps, mesh, stacked_sharding(mesh), donate)


def per_step(fetched: list[tuple[int, Any]]) -> list[Any]:
  """[(steps, tree), ...] fetched from calls -> one tree per step (a call of k > 1 steps
  gave trees of leaves [k, ...])."""
  out = []
  for n, tree in fetched:
    if n == 1:
      out.append(tree)
    else:
      out.extend(jax.tree.map(lambda x, i=i: x[i], tree) for i in range(n))
  return out


def create_train_state(family: families.Family, config, mesh: Mesh):
  init = jax.jit(family.init_state, out_shardings=replicated(mesh))
  # A host array: every process passes the same value, which jit takes as replicated.
  return init(np.asarray(jax.random.PRNGKey(config.seed)))


def check_batch_size(config, mesh: Mesh) -> None:
  if config.batch_size % mesh.size:
    raise config_lib.ConfigError(f"config.batch_size={config.batch_size} must be divisible by the "
                     f"number of devices ({mesh.size})")


class StopRequest:
  """Turns the first SIGINT/SIGTERM into a request to checkpoint and stop.

  A second signal of the same kind falls back to Python's default (KeyboardInterrupt
  or termination), so a stuck run can still be killed. In a multi-process job a signal
  reaches one process (a preempted host), and every process must save the same step:
  `agreed` is the job's decision, taken by all processes together.
  """

  def __init__(self):
    self.signal_name = None
    self.signum = 0
    self._previous = {}
    self._gather = None

  def __enter__(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: signals stay as they are
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal_name, self.signum = signal.Signals(signum).name, signum
    signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def __bool__(self):
    return self.signal_name is not None

  def agreed(self, mesh: Mesh) -> Optional[str]:
    """Whether any process of the job was asked to stop: None, else what to print (the
    signal, and the process it reached when that is another one).

    A collective over `mesh` (each device contributes its process's signal number): every
    process must call it at the same step, and all get the same answer.
    """
    if jax.process_count() == 1:
      return self.signal_name
    if self._gather is None:
      self._gather = jax.jit(lambda x: x, out_shardings=replicated(mesh))
    mine = self.signum  # what is sent is what counts: a signal may arrive meanwhile
    local = np.full((len(mesh.local_devices),), mine, np.int32)
    signums = np.asarray(jax.device_get(self._gather(
        jax.make_array_from_process_local_data(batch_sharding(mesh), local))))
    if mine:
      return signal.Signals(mine).name
    asked = [(int(n), d.process_index) for n, d in zip(signums, mesh.devices.flat) if n]
    if not asked:
      return None
    signum, process = asked[0]
    return f"{signal.Signals(signum).name} to process {process}"


class Progress:
  """A line per log interval (steps/s, ETA) and, on a terminal, a progress bar."""

  def __init__(self, start_step: int, num_steps: int, enabled: bool):
    self.num_steps, self.enabled = num_steps, enabled
    self.last_step, self.last_time = start_step, time.time()
    self.bar = None
    if enabled and sys.stderr.isatty():
      import tqdm  # pylint: disable=import-outside-toplevel
      self.bar = tqdm.tqdm(total=num_steps, initial=start_step, unit="step", dynamic_ncols=True)

  def update(self, step: int) -> None:
    if self.bar is not None:
      self.bar.update(step - self.bar.n)

  def report(self, step: int, scalars: dict[str, float]) -> float:
    now = time.time()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_step, self.last_time = step, now
    if self.enabled:
      eta = (self.num_steps - step) / max(rate, 1e-9)
      values = " ".join(f"{k} {v:.4g}" for k, v in sorted(scalars.items()))
      line = (f"step {step}/{self.num_steps} | {values} | {rate:.2f} steps/s | "
              f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}")
      if self.bar is not None:
        self.bar.write(line)
      else:
        print(line, flush=True)
    return rate

  def close(self):
    if self.bar is not None:
      self.bar.close()


# The overfitting probe's scalars (`config.data.holdout`): D's mean score of held-out real
# images, of as many training images, and train minus held-out.
OVERFIT_METRICS = ("d_real_train", "d_real_heldout", "d_real_gap")
# Images per call of the probe's scoring (bounds its memory on a large holdout).
PROBE_BATCH = 256


def overfit_images(config, family, mesh: Mesh):
  """[{'heldout': batch, 'train': batch}, ...], chunks of the images the probe scores, or
  None without a holdout.

  The held-out images are the first `config.data.holdout` of the split's stored order (no
  process trains on them); the training images are as many from the head of what is
  trained on, both preprocessed as in evaluation (no augmentation). Every process holds all
  of both, as replicated global arrays, so the scores are those of the replicated state.
  """
  if not preparation.holdout_count(config.data):
    return None
  if not families.supports(family, families.DiscriminatorProbe):
    raise config_lib.ConfigError(f"config.data.holdout scores real images with a GAN's D: "
                                 f"the {config.family} family has none; set it to 0")
  heldout = preparation.load_split(config.data, preparation.heldout_split(config.data))
  n = len(heldout["image"])
  sets = {"heldout": heldout,
          "train": preparation.load_split(config.data, preparation.training_split(
              config.data), num=n)}
  n = min(n, len(sets["train"]["image"]))
  if not n:
    raise DataError(f"config.data.holdout: {config.data.name} "
                                   f"{config.data.split} has no images to hold out or train on")

  def chunk(batch, i):  # every process passes all of it: a replicated global array
    return {k: jax.make_array_from_process_local_data(replicated(mesh), v[i:i + PROBE_BATCH])
            for k, v in batch.items()}

  return [{name: chunk(batch, i) for name, batch in sets.items()}
          for i in range(0, n, PROBE_BATCH)]


def overfit_scalars(scores, state, chunks) -> dict[str, float]:
  """OVERFIT_METRICS of `state` on `overfit_images`' chunks; `scores` the jitted
  `family.discriminator_scores`."""
  means = {}
  for name in ("train", "heldout"):
    values = np.concatenate([jax.device_get(scores(state, chunk[name])) for chunk in chunks])
    means[name] = float(np.mean(values))
  return dict(zip(OVERFIT_METRICS, (means["train"], means["heldout"],
                                    means["train"] - means["heldout"])))


@dataclasses.dataclass(frozen=True)
class Periodic:
  """Something the loop does every `every` steps and at the last step (the end, or a stop).

  `run(step, scalars)` gets the scalars the earlier actions of this step gave and returns
  its own (or None); the loop runs the due actions in their order. `syncs`: the action
  waits for the device anyway (it reads the metrics, the state or a picture), so the
  divergence check of the steps since the last check runs first, and nothing NaN or
  infinite is logged, drawn or saved.
  """
  name: str
  every: int
  run: Callable[[int, dict[str, float]], Optional[dict[str, float]]]
  syncs: bool = True

  def due(self, step: int, last: bool) -> bool:
    return step % self.every == 0 or last


def _truncate_metrics(path: str, step: int) -> None:
  """Drops rows logged after `step`: a run killed after its last checkpoint logged them,
  and the resumed run will log those steps again."""
  if os.path.exists(path):
    rows = [r for r in visualize.read_metrics(path) if r["step"] <= step]
    workdir_lib.write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       start_over: bool = False,
                       on_claimed: Optional[Callable[[str], None]] = None) -> Any:
  """Trains `config` in `workdir`, resuming from its latest checkpoint. Returns the state.

  The workdir is this run's alone while it trains; `start_over` moves a run already in it
  aside first (`jaxgan.workdir`); then `on_claimed(workdir)` runs (the command line sends
  its log file there). When a step makes a loss or the state NaN or infinite,
  the run stops, or rolls back to its last checkpoint at a lower learning rate
  (`jaxgan.divergence`).
  """
  config_lib.validate(config)
  is_lead = jax.process_index() == 0
  mesh = make_mesh()
  check_batch_size(config, mesh)
  # A config mistake stops here, before the workdir is touched and before any data is
  # prepared: the family's own checks, its networks' checks of the image shape (an abstract
  # init: traced, nothing computed), and grids asked of a family that draws none.
  family = families.create(config, mesh_platform(mesh))
  jax.eval_shape(family.init_state, jax.random.PRNGKey(0))
  if config.num_grid_images > 0 and not families.supports(family, families.Sampling):
    raise config_lib.ConfigError(f"the {config.family} family draws no sample grids: "
                                 "set config.num_grid_images=0")
  # Missing data stops the run now, not after the state and the step have compiled. In a
  # multi-host job process 0 prepares first: on a shared file system the others then find
  # the dataset prepared instead of writing the same files at the same time.
  clock = Clock()
  if is_lead:
    preparation.prepare_dataset(config.data)
  workdir_lib.sync_processes("jaxgan_prepare_dataset")
  if not is_lead:
    preparation.prepare_dataset(config.data)
  clock.lap("data_preparation")
  with workdir_lib.claim(workdir, config.to_dict(), start_over, lead=is_lead,
                         upgrade=config_lib.upgrade):
    if on_claimed is not None:
      on_claimed(workdir)
    ckpts = checkpoint.Checkpoints(os.path.join(workdir, "checkpoints"), config.keep_checkpoints,
                                   remove_partial_saves=True)
    # Disk full and the like, outside a checkpoint's save (which names its step itself).
    with workdir_lib.write_errors(lambda: f"into {workdir}", ckpts.intact,
                                  workdir_lib.STORAGE_ERRNOS):
      while True:
        try:
          return _train(divergence.with_rollbacks(config, workdir), workdir, mesh, ckpts, clock)
        except divergence.Diverged as diverged:
          clock = Clock()  # the next attempt's timings are its own
          divergence.roll_back_or_stop(diverged, config, workdir, ckpts.latest_step(), is_lead)


class Clock:
  """Wall seconds of the run's parts (`timings.json`): start-up, split into what it does,
  then the loop and the end; and the CPU seconds of this thread in each (`thread_seconds`):
  the host's own work, without the input's threads (`device_calls`' and tf.data's) or the
  time spent waiting (on XLA:CPU it also holds the part of each program that runs on the
  calling thread)."""

  def __init__(self):
    self.seconds: dict[str, float] = {}
    self.thread_seconds: dict[str, float] = {}
    self._last = (time.perf_counter(), time.thread_time())

  def lap(self, part: str) -> None:
    """Charges the time since the last lap to `part`."""
    now = (time.perf_counter(), time.thread_time())
    self._add(part, now[0] - self._last[0], now[1] - self._last[1])
    self._last = now

  @contextlib.contextmanager
  def apart(self, part: str):
    """Charges the time spent inside to `part` instead of to the next lap."""
    start = (time.perf_counter(), time.thread_time())
    yield
    wall, thread = time.perf_counter() - start[0], time.thread_time() - start[1]
    self._add(part, wall, thread)
    self._last = (self._last[0] + wall, self._last[1] + thread)

  def _add(self, part: str, wall: float, thread: float) -> None:
    self.seconds[part] = self.seconds.get(part, 0.0) + wall
    self.thread_seconds[part] = self.thread_seconds.get(part, 0.0) + thread


# Start-up's parts, in the order the loop does them (timings.json's "startup").
STARTUP_PARTS = ("data_preparation", "state", "restore", "input_pipeline", "compilation",
                 "first_grid")


def _train(config: ml_collections.ConfigDict, workdir: str, mesh: Mesh,
           ckpts: checkpoint.Checkpoints, clock: Optional[Clock] = None) -> Any:
  """From the latest checkpoint (or the start) to `config.num_train_steps`, a signal, or
  `divergence.Diverged` at the first step found NaN or infinite (nothing of it saved).

  `clock` has timed the data's preparation; the rest of start-up, the loop and the end
  are timed here and written to `timings.json` (this session's: a resumed run rewrites
  it)."""
  clock = clock or Clock()
  is_lead = jax.process_index() == 0
  platform = mesh_platform(mesh)
  family = families.create(config, platform)
  grids = config.num_grid_images > 0  # a family that draws none was refused before
  state = create_train_state(family, config, mesh)
  jax.block_until_ready(state)
  clock.lap("state")
  state = ckpts.restore(state) or state  # CheckpointError stops here, before any write
  start_step = int(jax.device_get(state.step))
  clock.lap("restore")
  if is_lead:
    config_lib.save_json(config, os.path.join(workdir, workdir_lib.CONFIG_FILE))
    workdir_lib.write_json(os.path.join(workdir, "params.json"), family.param_counts(state))
  logging.info("process %d/%d, %d devices (%s); %s at step %d", jax.process_index(),
               jax.process_count(), mesh.size, platform,
               "resuming" if start_step else "starting", start_step)

  k = config.get("steps_per_call", 1)
  skip = start_step % k  # the input's groups of k batches start at multiples of k
  data = streams.create_train_iterator(config.data, config.batch_size, config.seed,
                                       start_step - skip, augment_config=config.get("augment"),
                                       group=k)
  input_stats = {}  # the input thread's CPU seconds (timings.json)
  calls = device_calls(data, mesh, call_sizes(start_step, config.num_train_steps, k), group=k,
                       skip=skip, stats=input_stats)
  first = next(calls, None)  # the input's start-up: the pipeline built, the first batches read
  clock.lap("input_pipeline")
  # Compiled ahead of time, once per call size, so that compilation is timed apart.
  jitted = {1: compile_train_step(family, mesh)}
  if k > 1:
    jitted[k] = compile_train_steps(family, mesh)
  compiled = {}

  def step_function(call):
    if call.steps not in compiled:
      with clock.apart("compilation"):
        compiled[call.steps] = jitted[call.steps].lower(state, call.batch).compile()
    return compiled[call.steps]

  if first is not None:
    step_function(first)
  fixed = None
  if grids:
    generate = jax.jit(family.generate, out_shardings=replicated(mesh))
    fixed = jax.device_get(family.fixed_inputs(jax.random.PRNGKey(config.seed + 1),
                                               config.num_grid_images))
  probe = overfit_images(config, family, mesh)
  if probe:
    scores = jax.jit(family.discriminator_scores, out_shardings=replicated(mesh))

  writer = metric_writers.AsyncMultiWriter(
      [metric_writers.SummaryWriter(os.path.join(workdir, "tensorboard"))] if is_lead else [])
  metrics_file = None
  if is_lead:
    _truncate_metrics(os.path.join(workdir, "metrics.jsonl"), start_step)
    metrics_file = open(os.path.join(workdir, "metrics.jsonl"), "a")
  progress = Progress(start_step, config.num_train_steps, is_lead)
  # The metrics and the finiteness flags of the calls since they were last read, as
  # (steps, tree), and the last grid's images.
  pending, unchecked, fake = [], [], None

  def training_metrics(step, scalars):
    """The mean of each metric over the steps since the last log."""
    del step, scalars
    nonlocal pending
    means = {k: float(np.mean(v)) for k, v in
             jax.tree.map(lambda *xs: np.stack(xs), *per_step(jax.device_get(pending))).items()}
    pending = []
    return means

  def speed(step, scalars):
    """The progress line (with this step's scalars so far) and steps/s."""
    return {"steps_per_sec": progress.report(step, scalars)}

  def write_grid(step):
    """Saves the fixed-noise grid; returns the images (None when grids are off)."""
    if not grids:
      return None
    images = jax.device_get(generate(state, fixed))
    grid = family.grid(fixed, images)
    if is_lead:
      visualize.save_png(grid, os.path.join(workdir, "samples", f"step_{step:06d}.png"))
      writer.write_images(step, {"samples": grid[None]})
    return images

  def sample(step, scalars):
    """A grid, whose images `real_vs_fake.png` shows at the end."""
    del scalars
    nonlocal fake
    fake = write_grid(step)

  def save(step, scalars):
    del scalars
    ckpts.save(step, state, force=True)

  # Actions that give scalars, in the order they are logged; at a step where any of them is
  # due, the scalars go to TensorBoard and metrics.jsonl, then the outputs run. (Sample grids
  # run at their cadence even when grids are off: the divergence check keeps its steps.)
  measures = [Periodic("training metrics", config.log_every_steps, training_metrics)]
  if probe:
    measures.append(Periodic(
        "overfitting probe", config.get("overfit_every_steps") or config.log_every_steps,
        lambda step, scalars: overfit_scalars(scores, state, probe), syncs=False))
  measures.append(Periodic("progress", config.log_every_steps, speed))
  outputs = [Periodic("sample grid", config.sample_every_steps, sample),
             Periodic("checkpoint", config.checkpoint_every_steps, save)]

  step, batch, single_process = start_step, None, jax.process_count() == 1
  try:
    with StopRequest() as stop:
      if start_step == 0:
        write_grid(0)
      clock.lap("first_grid")
      for call in itertools.chain([first] if first is not None else [], calls):
        state, metrics, finite = step_function(call)(state, call.batch)
        step += call.steps
        batch = call.host
        pending.append((call.steps, metrics))
        unchecked.append((call.steps, finite))
        progress.update(step)
        # The request is read once per call: a signal that arrives later in this step (while
        # it logs) is acted on at the next one, so that a stop always follows a save. With
        # several processes the job decides together, at the steps where an action that
        # waits for the device is due anyway: no step waits for the host only for this.
        # (A call of several steps ends at every step where an action is due:
        # config.validate makes the cadences multiples of steps_per_call.)
        stopping = None
        if single_process:
          stopping = stop.signal_name
        elif any(a.syncs and step % a.every == 0 for a in measures + outputs):
          stopping = stop.agreed(mesh)
        last = step == config.num_train_steps or stopping is not None
        due_measures = [a for a in measures if a.due(step, last)]
        due_outputs = [a for a in outputs if a.due(step, last)]
        if any(a.syncs for a in due_measures + due_outputs):  # the loop waits here anyway
          flags = per_step(jax.device_get(unchecked))
          diverged = divergence.first_nonfinite(flags, step - len(flags) + 1)
          if diverged:
            raise diverged
          unchecked = []
        scalars = {}
        for action in due_measures:
          scalars.update(action.run(step, scalars) or {})
        if scalars and is_lead:
          writer.write_scalars(step, scalars)
          metrics_file.write(json.dumps({"step": step, **scalars}) + "\n")
          metrics_file.flush()
        for action in due_outputs:
          action.run(step, scalars)
        if stopping is not None:
          logging.warning("%s received: saved checkpoint %d, stopping", stopping, step)
          print(f"{stopping}: checkpoint saved at step {step}; run the same command "
                "to resume", flush=True)
          break
  finally:  # also when diverged: the last good checkpoint may still be being written
    calls.close()  # the input's thread stops
    ckpts.wait()
    progress.close()
    writer.flush()
    if is_lead:
      metrics_file.close()
  clock.lap("loop")
  if is_lead and step == config.num_train_steps:
    _final_figures(family, fixed, fake, batch, workdir)
  if step == config.num_train_steps and families.supports(family, families.DenoisingView):
    # Every process computes it (the state spans them all); the lead writes it.
    picture = trajectory(family, state, config.seed)
    if is_lead:
      visualize.save_png(picture, os.path.join(workdir, "trajectory.png"))
  clock.lap("final_figures")
  if is_lead:
    _write_timings(workdir, clock, start_step, step - start_step, k,
                   input_stats.get("thread_seconds", 0.0))
  return state


def _write_timings(workdir: str, clock: Clock, start_step: int, loop_steps: int,
                   steps_per_call: int, input_thread_seconds: float) -> None:
  """timings.json: this session's start-up by part, its loop (every step from the first
  call's dispatch to the last checkpoint written, with the logging, grids and checkpoints
  between) and its end (final figures). The loop's `input_thread_seconds` are the CPU
  seconds of the input's thread (`device_calls`) over the session, its first calls read
  during start-up included."""
  seconds = clock.seconds
  startup = {part: round(seconds.get(part, 0.0), 4) for part in STARTUP_PARTS}
  loop = seconds.get("loop", 0.0)
  timings = {"startup": {**startup, "total": round(sum(startup.values()), 4)},
             "loop": {"first_step": start_step + 1, "steps": loop_steps,
                      "steps_per_call": steps_per_call, "seconds": round(loop, 4),
                      "steps_per_sec": round(loop_steps / loop, 4) if loop > 0 else None,
                      "thread_seconds": round(clock.thread_seconds.get("loop", 0.0), 4),
                      "input_thread_seconds": round(input_thread_seconds, 4)},
             "final_figures": round(seconds.get("final_figures", 0.0), 4)}
  workdir_lib.write_json(os.path.join(workdir, TIMINGS_FILE), timings)
  logging.info("start-up %.1f s (%s); %d steps in %.1f s", timings["startup"]["total"],
               ", ".join(f"{k} {v:.1f} s" for k, v in startup.items()), loop_steps, loop)


TIMINGS_FILE = "timings.json"


def trajectory(family, state, seed: int, num: Optional[int] = None, label=None) -> np.ndarray:
  """The picture of the reverse process of `num` fixed seeds (`DenoisingView.trajectory`):
  by default one row per class for a conditional model (labels 0, 1, ... in turn, or
  `label` in every row), else 8 rows."""
  num = num or getattr(family, "num_classes", 0) or 8
  inputs = jax.device_get(family.latent_inputs(jax.random.PRNGKey(seed), num, label))
  return family.trajectory(state, inputs)[0]


def _final_figures(family, fixed, fake, batch, workdir) -> None:
  """losses.png, overfitting.png (runs with `config.data.holdout`), and real_vs_fake.png
  from the last grid's images (`fake`) next to the real images they should resemble: the
  fixed inputs' targets where they have them (pix2pix), else the last batch's images."""
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(metrics_path):
    visualize.plot_losses(metrics_path, family.loss_metrics, os.path.join(workdir, "losses.png"))
    visualize.plot_overfitting(metrics_path, OVERFIT_METRICS,
                               os.path.join(workdir, "overfitting.png"))
  real = fixed.get("target") if isinstance(fixed, dict) else None
  if real is None and batch is not None:
    real = batch.get("image")
  if fake is not None and real is not None:
    visualize.real_vs_fake(real[:len(fake)], fake, os.path.join(workdir, "real_vs_fake.png"))
