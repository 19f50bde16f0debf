"""The fields every experiment config has, and loading a config file outside absl.

Experiment files in `configs/` start from `base_config()` and override what their paper
sets (big_vision's habit: a docstring with the command, the machine, the wall time and
the figure it reaches). Top-level names follow the Flax examples: `num_train_steps`,
`batch_size` (global, over all devices and processes), `seed`, `log_every_steps`,
`checkpoint_every_steps`. Nested sections group what belongs together: `data`, `model`,
`loss`, `optimizer`, `augment`, `divergence`.

A config file is Python that the user runs (as in the Flax examples); a run's
`config.json` is plain JSON, read back with `json` (`load_json`), so nothing a workdir
holds is ever executed.
"""

import importlib.util
import math
import os
import traceback
from typing import Optional

import ml_collections
from ml_collections import config_dict

from jaxgan import implementation
from jaxgan import workdir as workdir_lib
from jaxgan.errors import ConfigError


def base_config() -> ml_collections.ConfigDict:
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
  c.overfit_every_steps = 0     # D on held-out vs training images (data.holdout); 0: at logs
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
  # The first `holdout` images of the split (stored order) are never trained on: the loop
  # scores them with D next to as many training images (d_real_heldout, d_real_train,
  # d_real_gap in metrics.jsonl; overfitting.png) every `overfit_every_steps` steps (0: at
  # every log). Families with `discriminator_scores` (gan); 0: off.
  c.data.holdout = 0

  c.model = ml_collections.ConfigDict()
  c.model.generator = "dcgan_generator"
  c.model.discriminator = "dcgan_discriminator"
  c.model.latent_dim = 100
  c.model.ngf = 64
  c.model.ndf = 64
  c.model.num_classes = 0       # > 0: class-conditional (G and D receive the label)
  # Rematerialise the generator: recompute its activations in the backward pass instead of
  # keeping them (less memory, more compute; README "Memory of a train step").
  c.model.remat = False

  c.loss = ml_collections.ConfigDict()
  c.loss.name = "non_saturating"  # jaxgan.losses.NAMES

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.learning_rate = 2e-4
  c.optimizer.b1 = 0.5
  c.optimizer.b2 = 0.999

  # Augmentation for small data (GANs of the `gan` family on single-image datasets):
  # "none"; "deluxe": the course's random 1.1x resize-and-crop and flip of real images in
  # the input pipeline (plus a colour jitter with color_jitter=True); "diffaugment": T(x)
  # of DiffAugment (Zhao et al. 2020) on real and fake images wherever D sees them, with
  # `policy` any comma-separated list of color, translation, cutout (jaxgan/augment.py).
  c.augment = ml_collections.ConfigDict()
  c.augment.kind = "none"
  c.augment.policy = "color,translation,cutout"
  c.augment.color_jitter = False

  # What the loop does when a loss or a part of the state becomes NaN or infinite
  # (jaxgan.divergence): "stop" (exit with the step and the quantities named), or
  # "rollback" to the last checkpoint and continue at learning_rate * lr_factor, at most
  # max_rollbacks times per workdir.
  c.divergence = ml_collections.ConfigDict()
  c.divergence.on_nonfinite = "stop"
  c.divergence.lr_factor = 0.5
  c.divergence.max_rollbacks = 3
  return c


def _get(config, name: str):
  """config.a.b for name 'a.b'; None where a part is absent."""
  value = config
  for part in name.split("."):
    value = value.get(part) if value is not None else None
  return value


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


def _check_positive(config, name: str) -> None:
  value = _get(config, name)
  if value is not None and not 0 < value < math.inf:  # NaN fails too
    raise ConfigError(f"config.{name} must be positive, got {value}")


def validate(config: ml_collections.ConfigDict) -> None:
  """One clear ConfigError for values no run can use (types are checked by ml_collections)."""
  # First what num_train_steps may be computed from (pix2pix: epochs of examples / batch).
  for name in ["batch_size", "data.num_train_examples"]:
    _check_positive(config, name)
  for name, value in _leaves(config):
    if isinstance(value, int) and not -INT_LIMIT <= value < INT_LIMIT:
      raise ConfigError(f"config.{name}={value} is out of range (|value| < 2**31)")
  for name in ["num_train_steps", "log_every_steps", "checkpoint_every_steps",
               "sample_every_steps", "keep_checkpoints", "data.image_size", "data.channels",
               "data.load_size", "model.latent_dim", "model.ngf", "model.ndf",
               "optimizer.learning_rate", "divergence.lr_factor"]:
    _check_positive(config, name)
  for name in ["num_grid_images", "model.num_classes", "divergence.max_rollbacks",
               "data.shuffle_buffer", "data.holdout", "overfit_every_steps", "schedule.n_epochs",
               "schedule.n_epochs_decay", "loss.lambda_l1"]:
    value = _get(config, name)
    if value is not None and not 0 <= value < math.inf:
      raise ConfigError(f"config.{name} must be >= 0, got {value}")
  for name in ["optimizer.b1", "optimizer.b2", "model.dropout"]:
    value = _get(config, name)
    if value is not None and not 0 <= value < 1:
      raise ConfigError(f"config.{name} must be in [0, 1), got {value}")
  dtype = _get(config, "dtype")
  if dtype is not None and dtype not in DTYPES:
    raise ConfigError(f"config.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
  for name, choices in (("implementation", implementation.IMPLEMENTATIONS),
                        ("precision", tuple(implementation.PRECISIONS))):
    value = _get(config, name)
    if value is not None and value not in choices:
      raise ConfigError(f"config.{name} must be one of {', '.join(choices)}, got {value!r}")
  path, name = _get(config, "data.path"), _get(config, "data.name")
  if path and name != "folder":  # a path that would be silently ignored
    raise ConfigError(f"config.data.path={path} is read by config.data.name=folder only (this "
                      f"config reads {name!r}): pass --config.data.name=folder, or clear the "
                      "path with --config.data.path=")
  _check_augment(config)
  on_nonfinite = _get(config, "divergence.on_nonfinite")
  if on_nonfinite is not None and on_nonfinite not in ("stop", "rollback"):
    raise ConfigError(f"config.divergence.on_nonfinite must be 'stop' or 'rollback', got "
                      f"{on_nonfinite!r}")
  if (_get(config, "divergence.lr_factor") or 0) >= 1:
    raise ConfigError("config.divergence.lr_factor must be below 1 (it lowers the learning "
                      f"rate), got {config.divergence.lr_factor}")


AUGMENT_KINDS = ("none", "deluxe", "diffaugment")


def _check_augment(config) -> None:
  kind = _get(config, "augment.kind")
  if kind is None or kind == "none":
    return
  if kind not in AUGMENT_KINDS:
    raise ConfigError(f"config.augment.kind must be one of {', '.join(AUGMENT_KINDS)}, got "
                      f"{kind!r}")
  if _get(config, "family") != "gan":
    raise ConfigError(f"config.augment.kind={kind} is for the gan family (this config trains "
                      f"{_get(config, 'family')!r}); set it to none")
  if kind == "diffaugment":
    parse_policy(_get(config, "augment.policy") or "")


# DiffAugment's policy words (jaxgan.augment.AUGMENT_FNS implements them).
DIFFAUGMENT_WORDS = ("color", "translation", "cutout")


def parse_policy(policy: str) -> list[str]:
  """'color,translation' -> ['color', 'translation']; ConfigError for an unknown word."""
  words = [w.strip() for w in policy.split(",") if w.strip()]
  unknown = [w for w in words if w not in DIFFAUGMENT_WORDS]
  if unknown or not words:
    raise ConfigError(f"config.augment.policy={policy!r}: DiffAugment policies are "
                      f"comma-separated words of {', '.join(DIFFAUGMENT_WORDS)}")
  return words


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
  """The resolved config a run wrote into its workdir: JSON, read as data."""
  path = os.path.join(workdir, workdir_lib.CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir} the --workdir of a jaxgan run?")
  return ml_collections.ConfigDict(workdir_lib.read_json(path))
