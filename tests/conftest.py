"""Shared test setup: tests run on the CPU and never reach the network."""

import atexit
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite's time is XLA:CPU's compile time: tiny shapes, one or two steps, hundreds of
# programs (each parameter initialiser of an eager `init` is one). Tests compile without
# LLVM's optimisations, which changes how fast the code runs, not what it computes;
# subprocesses inherit the setting. Speed is measured in benchmarks/, never here.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_backend_optimization_level=0").strip()
# Tests rebuild the same programs many times (each run, resume and subprocess compiles its
# step again): JAX's persistent compilation cache, fresh for each session and shared with
# the subprocesses through the environment, compiles each of them once.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="jaxgan_test_compilation_cache_")
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
  os.environ.update(JAX_COMPILATION_CACHE_DIR=_CACHE, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
# TFDS's default data dir (~/tensorflow_datasets, or $TFDS_DATA_DIR) holds the user's
# prepared datasets: tests that take the default path (the mocked download of
# `mock_data`, runs without `data.data_dir`) write into a fresh folder of their own.
# Before TFDS is imported: it reads the variable once.
_TFDS_DIR = tempfile.mkdtemp(prefix="jaxgan_test_tfds_")
atexit.register(shutil.rmtree, _TFDS_DIR, ignore_errors=True)
os.environ["TFDS_DATA_DIR"] = _TFDS_DIR

import jaxgan  # noqa: E402,F401  (XLA flags before JAX starts)

# Hypothesis: the "ci" profile (the default) draws the same examples on every run
# (derandomize), so a red CI run is a real regression, not a new draw; `pytest
# --hypothesis-profile=random` draws afresh each run (and keeps failing examples in
# .hypothesis/) to look for new failures. Test modules keep their own example counts.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
_hypothesis_settings.register_profile("random", derandomize=False, print_blob=True)
_hypothesis_settings.load_profile(os.environ.get("JAXGAN_HYPOTHESIS_PROFILE", "ci"))

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_FACADES = SHARED_DATA / "facades"


def write_pairs(folder, count, side=16, seed=0, identical=True):
  """`count` side-by-side JPEGs (2*side x side) in `folder`, as pix2pix's datasets hold them.

  The right half repeats the left one exactly, also after JPEG decoding (no chroma
  subsampling, halves a whole number of 8x8 blocks wide), so that any step that treats
  the halves alike keeps them equal; with `identical=False` it is its negative
  (255 - left). Returns the file names.
  """
  import numpy as np  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  names = []
  for i in range(count):
    half = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    names.append(f"{i + 1}.jpg")
    right = half if identical else 255 - half
    Image.fromarray(np.concatenate([half, right], axis=1)).save(folder / names[-1], quality=95,
                                                                 subsampling=0)
  return names


def write_images(folder, count, side=16, seed=0, suffix=".png"):
  """`count` random RGB images side x side in `folder` (0.png, 1.png, ...), as the unpaired
  sets' trainA/ and trainB/ hold them. Returns the file names."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  names = [f"{i}{suffix}" for i in range(count)]
  for name in names:
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / name)
  return names


# The slowest test files, slowest first (`pytest --durations`, docs/testing.md). The two
# workers take files in collection order (`--dist loadfile`, with xdist's reordering by
# test count turned off below), so these start first and the quick files fill in at the
# end, instead of one slow file running alone while the other worker has nothing left. A
# file missing here runs after them, in name order.
SLOWEST_FILES = ("train_test.py", "implementation_test.py", "notebooks_test.py",
                 "cyclegan_test.py", "bad_input_test.py", "faults_test.py", "layers_test.py",
                 "ddpm_test.py", "pix2pix_test.py", "multihost_test.py",
                 "mixed_precision_test.py", "remat_test.py", "augment_test.py",
                 "divergence_test.py", "multidevice_test.py", "evaluate_metrics_test.py",
                 "workdir_test.py", "reliability_test.py", "evaluate_test.py",
                 "input_pipeline_test.py")


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file keeps its order


def pytest_configure(config):
  if hasattr(config.option, "loadscopereorder"):  # pytest-xdist's: most tests first
    config.option.loadscopereorder = False
