"""What the benchmark scripts share: the benchmarked settings, configs with overrides, the
jaxgan train step exactly as the loop builds it, the real input pipeline, machine facts.

No PyTorch here (benchmarks/steps/train_step.py holds the PyTorch side), so that
`step_time.py`, `profile_step.py` and `step_memory.py` run without torch installed.
"""

import ast
import datetime
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any, NamedTuple


def keep_freed_memory() -> bool:
  """With BENCH_KEEP_FREED_MEMORY=1, glibc keeps freed memory in the process instead of
  handing it back to the kernel (one arena, no mmap'd chunks, no trimming below 2 GiB),
  so that a step may reuse the pages of the step before instead of faulting in fresh ones
  (XLA:CPU maps each step's temporary buffer afresh; what it does: docs/performance.md).

  Process-wide, so in `train_step.py` it holds for both sides alike. Set before JAX or
  torch start their threads (which take their own arenas), i.e. here, at the harness's
  import. Returns whether it was set.
  """
  if os.environ.get("BENCH_KEEP_FREED_MEMORY", "") in ("", "0"):
    return False
  import ctypes  # pylint: disable=import-outside-toplevel
  libc = ctypes.CDLL("libc.so.6")
  m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # glibc's malloc.h
  if not (libc.mallopt(m_arena_max, 1) and libc.mallopt(m_mmap_max, 0)
          and libc.mallopt(m_trim_threshold, 2**31 - 1)):
    raise SystemExit("BENCH_KEEP_FREED_MEMORY: glibc's mallopt refused a setting")
  return True


KEEP_FREED_MEMORY = keep_freed_memory()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import jaxgan  # noqa: E402,F401  (CPU XLA flags before JAX starts)
import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import config as config_lib, families, train  # noqa: E402
from jaxgan.datasets import preparation, streams  # noqa: E402

# Local copies of the cases' data: $JAXGAN_DATA_DIR (as for the configs), else the folder
# beside the checkout where this project's machines keep them.
DATA = (os.environ.get(config_lib.DATA_DIR_VARIABLE)
        or os.path.join(os.path.dirname(REPO), "shared", "data"))


class Case(NamedTuple):
  """One benchmarked setting: a config, overrides, and the overrides that point its input
  pipeline at a local copy of real data (None: no local copy)."""
  config: str
  overrides: tuple[str, ...]
  data: tuple[str, ...] | None
  note: str


CASES = {
    "dcgan_mnist": Case("configs/dcgan_mnist.py", (), (f"data.manual_dir={DATA}/mnist",),
                        "DCGAN MNIST 28x28 (jaxgan/models/dcgan.py)"),
    "dcgan64": Case("configs/dcgan64.py", (),
                    ("data.name=folder", f"data.path={DATA}/celeba_subset/img_align_celeba"),
                    "DCGAN 64x64, the PyTorch tutorial's nets (data: the 6,000-face CelebA "
                    "subset as a folder)"),
    "pix2pix256": Case("configs/pix2pix_facades.py", (), (f"data.manual_dir={DATA}/facades",),
                       "pix2pix 256x256, unet_256 + 70x70 PatchGAN, batch 1 (the paper's)"),
    "pix2pix128": Case("configs/pix2pix_facades_cpu.py", (), (f"data.manual_dir={DATA}/facades",),
                       "pix2pix 128x128, unet_128 + 70x70 PatchGAN, batch 1"),
    "cyclegan64": Case("configs/cyclegan_apple2orange64.py", (),
                       (f"data.manual_dir={DATA}/apple2orange64",),
                       "CycleGAN 64x64, the course's cycle_generator_64 + PatchGAN n_layers 2, "
                       "batch 1"),
    "cyclegan256": Case("configs/cyclegan_apple2orange.py", (), None,
                        "CycleGAN 256x256, resnet_9blocks + 70x70 PatchGAN, batch 1 (the "
                        "paper's; no local 256x256 copy of the data)"),
}


def override(config, assignment: str) -> None:
  """config[key] = value for 'key.sub=value', the value parsed as the current one's type
  (a tuple or list from a Python literal: `model.ch_mult=(1,2)` or `1,2`)."""
  key, value = assignment.split("=", 1)
  node = config
  *parents, leaf = key.split(".")
  for p in parents:
    node = node[p]
  current = node.get(leaf)
  if isinstance(current, bool):
    node[leaf] = value.lower() in ("1", "true")
  elif current is None:
    node[leaf] = value
  elif isinstance(current, (tuple, list)):
    try:
      parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      raise SystemExit(f"error: {key}={value}: give a Python tuple such as {tuple(current)}")
    node[leaf] = type(current)(parsed if isinstance(parsed, (tuple, list)) else (parsed,))
  else:
    node[leaf] = type(current)(value)


def load_config(path: str, overrides=()):
  config = config_lib.load(os.path.join(REPO, path))
  for assignment in overrides:
    override(config, assignment)
  return config


def synthetic_batch(config, seed: int = 0) -> dict[str, np.ndarray]:
  """One batch shaped as the loop's batches of the config's data (the input pipeline's
  keys), images uniform in [-1, 1]."""
  size, channels, b = config.data.image_size, config.data.channels, config.batch_size
  rng = np.random.default_rng(seed)
  batch = {key: rng.uniform(-1, 1, (b, size, size, channels)).astype(np.float32)
           for key in preparation.image_features(config.data)}
  if preparation.stream_kind(config.data) is not preparation.StreamKind.UNPAIRED:
    batch["label"] = np.zeros(b, np.int32)
  return batch


class JaxStep:
  """The family's state and jitted step as `jaxgan.train` builds them (state replicated and
  donated, batch sharded over the mesh), compiled ahead of time for `batch`."""

  def __init__(self, config, batch: dict[str, np.ndarray], donate: bool = True):
    self.mesh = train.make_mesh()
    self.family = families.create(config, train.mesh_platform(self.mesh))
    start = time.perf_counter()
    self.state = jax.block_until_ready(train.create_train_state(self.family, config, self.mesh))
    self.init_s = time.perf_counter() - start
    self.batch = self.shard(batch)
    step = train.compile_train_step(self.family, self.mesh, donate)
    start = time.perf_counter()
    self.compiled = step.lower(self.state, self.batch).compile()
    self.compile_s = time.perf_counter() - start
    self.metrics = None

  def shard(self, batch):
    return train.shard_batch(batch, self.mesh)

  def param_counts(self) -> dict[str, int]:
    return {k: int(v) for k, v in self.family.param_counts(self.state).items()}

  def __call__(self, batch=None):
    self.state, self.metrics, _ = self.compiled(self.state, self.batch if batch is None else batch)
    jax.block_until_ready((self.state, self.metrics))

  def flops(self) -> float | None:
    """XLA's count of floating-point operations in one step (None where it has none)."""
    cost = self.compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None

  def memory(self) -> dict[str, int] | None:
    """XLA's buffer sizes of the compiled step, bytes (`Compiled.memory_analysis()`)."""
    m = self.compiled.memory_analysis()
    if m is None:
      return None
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
              "temp_size_in_bytes", "generated_code_size_in_bytes")
    out = {f: int(getattr(m, f)) for f in fields if hasattr(m, f)}
    # Donated arguments alias outputs: they are counted once.
    out["total_bytes"] = (out["argument_size_in_bytes"] + out["output_size_in_bytes"]
                          - out.get("alias_size_in_bytes", 0) + out["temp_size_in_bytes"])
    return out


def train_iterator(config, case: Case):
  """The loop's input pipeline on the case's local data: an iterator of host batches."""
  config = load_config(case.config, case.overrides + case.data)
  return streams.create_train_iterator(config.data, config.batch_size, config.seed,
                                       augment_config=config.get("augment"))


def timed(fn, steps: int) -> list[float]:
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times


def timed_with_usage(fn, steps: int) -> tuple[list[float], dict[str, float]]:
  """`timed`, and the process's CPU seconds (user, system) and minor page faults per step
  over those steps (`getrusage`): kernel time here is mostly pages faulted in afresh."""
  before = resource.getrusage(resource.RUSAGE_SELF)
  times = timed(fn, steps)
  after = resource.getrusage(resource.RUSAGE_SELF)
  return times, {"user_s_per_step": (after.ru_utime - before.ru_utime) / steps,
                 "system_s_per_step": (after.ru_stime - before.ru_stime) / steps,
                 "minor_page_faults_per_step": (after.ru_minflt - before.ru_minflt) / steps}


def median(xs):
  return statistics.median(xs)


def median_ms(fn, *args, repeats: int) -> float:
  """The median of `repeats` timed calls of `fn(*args)` in milliseconds, after one call
  that compiles it and warms it up."""
  jax.block_until_ready(fn(*args))
  return 1e3 * median(timed(lambda: jax.block_until_ready(fn(*args)), repeats))


def machine_info(**extra) -> dict[str, Any]:
  cpu_model = ""
  try:
    with open("/proc/cpuinfo") as f:
      cpu_model = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), "")
  except OSError:
    pass
  import jaxlib  # pylint: disable=import-outside-toplevel
  devices = jax.devices()
  return {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "cpu_model": cpu_model,
      "cpu_count": os.cpu_count(),
      "uname": " ".join(platform.uname()),
      "load_average_start": os.getloadavg(),
      "python": platform.python_version(),
      "jax": jax.__version__,
      "jaxlib": jaxlib.__version__,
      "jax_backend": jax.default_backend(),
      "jax_device": devices[0].device_kind,
      "jax_device_count": len(devices),
      "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
      "keep_freed_memory": KEEP_FREED_MEMORY,
      **extra,
  }
