"""The fields every experiment config has, each family's own sections, and reading a
config back.

Experiment files in `configs/` start from `default_config(family)` and override what their
paper sets (big_vision's habit: a docstring with the command, the machine, the wall time
and the figure it reaches). Top-level names follow the Flax examples: `num_train_steps`,
`batch_size` (global, over all devices and processes), `seed`, `log_every_steps`,
`checkpoint_every_steps`. `base_config()` holds what every run has (the loop's cadences,
the compute dtype and implementation, the data basics, the optimizer's Adam settings,
`divergence`); each family adds and checks its own sections (`config_sections` and
`validate` in jaxgan/families/<family>.py: `model`, `loss`, `augment`, `schedule`,
`diffusion`, ...).

A config file is Python that the user runs (as in the Flax examples); a run's
`config.json` is plain JSON, read back with `json` (`load_json`), so nothing a workdir
holds is ever executed. `upgrade` fills in the fields that were added after a run was
saved, with the values those runs ran with, wherever a run's config.json is read.
"""

import importlib
import importlib.util
import os
import traceback
from types import ModuleType
from typing import Optional

import ml_collections
from ml_collections import config_dict

from jaxgan import config_fields as fields
from jaxgan import families
from jaxgan import implementation
from jaxgan import workdir as workdir_lib
from jaxgan.errors import ConfigError

# Where configs look for local copies of data sets that are folders of images (the
# course's cats, CelebA's crops) when no --config.data.path is given.
DATA_DIR_VARIABLE = "JAXGAN_DATA_DIR"
DEFAULT_DATA_DIR = "~/jaxgan_data"


def base_config() -> ml_collections.ConfigDict:
  """What every run has, whatever its family."""
  c = ml_collections.ConfigDict()
  c.family = "gan"              # jaxgan.families: the state and the step
  c.seed = 0
  c.num_train_steps = 1000
  c.batch_size = 128            # global
  c.log_every_steps = 50        # scalars to TensorBoard, metrics.jsonl, the progress line
  c.checkpoint_every_steps = 500
  c.sample_every_steps = 500    # fixed-noise grid to samples/ and TensorBoard
  c.num_grid_images = 64
  c.keep_checkpoints = 3
  # Training steps per call of the jitted step (jaxgan.train.compile_train_steps: a
  # lax.scan over that many batches). 1 (the default) suits a CPU; a GPU or TPU whose
  # step takes about a millisecond wastes less on the host's work per call with more
  # (docs/performance.md, "the whole run"). The logging, grid and checkpoint cadences
  # must be multiples of it. Not an architecture field: the steps are the same.
  c.steps_per_call = 1
  # The networks' compute dtype, one of DTYPES: "bfloat16" is mixed precision (the
  # networks compute in bfloat16; parameters, optimizer states, normalisation statistics
  # and losses stay float32). Not an architecture field: a run may switch it on resume.
  c.dtype = "float32"
  # The layers' implementation (jaxgan.implementation): "auto" takes the forms tuned for
  # XLA:CPU where XLA:CPU compiles the program and XLA's own ops everywhere else;
  # "portable" or "cpu" forces one. `precision` is that of the portable convolutions and
  # products: "highest" (float32 stays float32 on GPUs and TPUs), "high" or "default".
  # Neither is an architecture field: both compute the same function.
  c.implementation = "auto"
  c.precision = "highest"

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist"         # a TFDS name
  c.data.split = "train"
  c.data.data_dir = config_dict.placeholder(str)    # TFDS data dir (default ~/tensorflow_datasets)
  c.data.manual_dir = config_dict.placeholder(str)  # pre-downloaded files, for offline machines
  c.data.path = config_dict.placeholder(str)        # the folder of images of data.name=folder
  c.data.image_size = 28
  c.data.channels = 1
  c.data.shuffle_buffer = 0     # 0: the whole split when it is small, else 10_000

  # Every family trains with Adam; a family may add to this section (DDPM's warmup and
  # clipping) and its configs change the values.
  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.learning_rate = 2e-4
  c.optimizer.b1 = 0.5
  c.optimizer.b2 = 0.999

  # What the loop does when a loss or a part of the state becomes NaN or infinite
  # (jaxgan.divergence): "stop" (exit with the step and the quantities named), or
  # "rollback" to the last checkpoint and continue at learning_rate * lr_factor, at most
  # max_rollbacks times per workdir.
  c.divergence = ml_collections.ConfigDict()
  c.divergence.on_nonfinite = "stop"
  c.divergence.lr_factor = 0.5
  c.divergence.max_rollbacks = 3
  return c


def family_module(name: str) -> ModuleType:
  """jaxgan/families/<name>.py, the module of a family of `families.FAMILIES`: its config
  sections (`config_sections`), its checks (`validate`) and its upgrades of old runs
  (`upgrade`). Imported when first asked for, as `families.create` imports the family."""
  if name not in families.FAMILIES:
    raise ConfigError(f"unknown config.family {name!r}; "
                      f"known: {', '.join(sorted(families.FAMILIES))}")
  return importlib.import_module(f"{families.__name__}.{name}")


def default_config(family: str) -> ml_collections.ConfigDict:
  """`base_config()` with `family`'s own sections and their defaults."""
  config = base_config()
  config.family = family
  family_module(family).config_sections(config)
  return config


def data_path(*parts: str) -> str:
  """A folder under $JAXGAN_DATA_DIR (default ~/jaxgan_data): the default `data.path` of
  configs that read a folder of images; --config.data.path=DIR names any other."""
  return os.path.join(os.environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR, *parts)


DTYPES = ("float32", "bfloat16")

# Integers beyond int32 are no sizes, steps (the state counts steps in int32) or seeds
# (TF and JAX take them in 32 or 64 bits, some with a hard abort).
INT_LIMIT = 2**31


def _leaves(config, prefix=""):
  for key, value in config.items():
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      yield from _leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def validate(config: ml_collections.ConfigDict) -> None:
  """One clear ConfigError for values no run can use (types are checked by ml_collections):
  the fields of `base_config()` here, then the family's own (its module's `validate`)."""
  # First what num_train_steps may be computed from (epochs of examples / batch).
  fields.positive(config, "batch_size", "data.num_train_examples")
  for name, value in _leaves(config):
    if isinstance(value, int) and not -INT_LIMIT <= value < INT_LIMIT:
      raise ConfigError(f"config.{name}={value} is out of range (|value| < 2**31)")
  fields.positive(config, "num_train_steps", "log_every_steps", "checkpoint_every_steps",
                  "sample_every_steps", "keep_checkpoints", "data.image_size", "data.channels",
                  "optimizer.learning_rate", "divergence.lr_factor")
  fields.nonnegative(config, "num_grid_images", "divergence.max_rollbacks", "data.shuffle_buffer")
  _check_steps_per_call(config)
  fields.fraction(config, "optimizer.b1", "optimizer.b2")
  fields.one_of(config, "dtype", DTYPES)
  fields.one_of(config, "implementation", implementation.IMPLEMENTATIONS)
  fields.one_of(config, "precision", tuple(implementation.PRECISIONS))
  path, name = fields.get(config, "data.path"), fields.get(config, "data.name")
  if path and name != "folder":  # a path that would be silently ignored
    raise ConfigError(f"config.data.path={path} is read by config.data.name=folder only (this "
                      f"config reads {name!r}): pass --config.data.path=DIR, or clear the "
                      "path with --config.data.path=")
  on_nonfinite = fields.get(config, "divergence.on_nonfinite")
  if on_nonfinite is not None and on_nonfinite not in ("stop", "rollback"):
    raise ConfigError(f"config.divergence.on_nonfinite must be 'stop' or 'rollback', got "
                      f"{on_nonfinite!r}")
  if (fields.get(config, "divergence.lr_factor") or 0) >= 1:
    raise ConfigError("config.divergence.lr_factor must be below 1 (it lowers the learning "
                      f"rate), got {config.divergence.lr_factor}")
  _check_foreign_sections(config)
  family_module(config.family).validate(config)


CADENCES = ("log_every_steps", "sample_every_steps", "checkpoint_every_steps",
            "overfit_every_steps")


def _check_steps_per_call(config) -> None:
  """steps_per_call >= 1, and every cadence a multiple of it: a call of several steps
  ends at each step where the loop logs, draws or saves."""
  fields.positive(config, "steps_per_call")
  k = config.get("steps_per_call") or 1
  for name in CADENCES:
    every = config.get(name)
    if every and every % k:
      raise ConfigError(f"config.{name}={every} is not a multiple of config.steps_per_call={k}: "
                        "the loop logs, draws and saves between calls; make it one (or set "
                        "steps_per_call to a divisor of it)")


def _check_foreign_sections(config) -> None:
  """A ConfigError for a section that another family reads and this one would silently
  ignore; only `augment` is switched on by a value (its kind)."""
  kind = fields.get(config, "augment.kind")
  if kind in (None, "none"):
    return
  if "augment" not in default_config(config.family):
    readers = [name for name in sorted(families.FAMILIES)
               if "augment" in default_config(name)]
    raise ConfigError(f"config.augment.kind={kind} is for the {' and '.join(readers)} family "
                      f"(this config trains {config.family!r}); set it to none")


def upgrade(config: dict) -> dict:
  """A run's saved config (JSON data) with the fields added since it was saved, set to what
  such runs ran with: the common ones here, the family's in its module's `upgrade`."""
  fields.fill(config, {"dtype": "float32", "implementation": "auto", "precision": "highest",
                       "steps_per_call": 1})
  if config.get("family") in families.FAMILIES:  # else families.create names the mistake
    family_module(config["family"]).upgrade(config)
  return config


def load(path: str) -> ml_collections.ConfigDict:
  """`get_config()` of a config file, as `--config=path` would give it."""
  spec = importlib.util.spec_from_file_location("jaxgan_config_file", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def file_problem(path: str) -> Optional[str]:
  """What is wrong with the config file `path`, in one line (None: it loads and has a
  `get_config()` that returns a config)."""
  if not os.path.isfile(path):
    return (f"config file {path} not found (the experiments are in configs/)"
            if not os.path.isdir(path) else f"config file {path} is a folder, not a .py file")
  try:
    load(path)
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


def load_sibling(config_file: str, name: str) -> ml_collections.ConfigDict:
  """`get_config()` of the config file `name` next to `config_file`: how a variant
  starts from its base experiment (`load_sibling(__file__, "gan_mnist.py")`) wherever
  it is run from."""
  return load(os.path.join(os.path.dirname(os.path.abspath(config_file)), name))


def save_json(config: ml_collections.ConfigDict, path: str) -> None:
  workdir_lib.write_json(path, config.to_dict())


def load_json(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run wrote into its workdir: JSON, read as data, `upgrade`d."""
  path = os.path.join(workdir, workdir_lib.CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir} the --workdir of a jaxgan run?")
  return ml_collections.ConfigDict(upgrade(workdir_lib.read_json(path)))
