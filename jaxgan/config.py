"""The fields every experiment config has, and loading a config file outside absl.

Experiment files in `configs/` start from `base_config()` and override what their paper
sets (big_vision's habit: a docstring with the command, the machine, the wall time and
the figure it reaches). Top-level names follow the Flax examples: `num_train_steps`,
`batch_size` (global, over all devices and processes), `seed`, `log_every_steps`,
`checkpoint_every_steps`. Nested sections group what belongs together: `data`, `model`,
`loss`, `optimizer`.
"""

import importlib.util
import json
import os

import ml_collections
from ml_collections import config_dict


class ConfigError(ValueError):
  """A config value that no run can use; main prints it as one line."""


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

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist"         # a TFDS name
  c.data.split = "train"
  c.data.data_dir = config_dict.placeholder(str)    # TFDS data dir (default ~/tensorflow_datasets)
  c.data.manual_dir = config_dict.placeholder(str)  # pre-downloaded files, for offline machines
  c.data.image_size = 28
  c.data.channels = 1
  c.data.shuffle_buffer = 0     # 0: the whole split when it is small, else 10_000

  c.model = ml_collections.ConfigDict()
  c.model.generator = "dcgan_generator"
  c.model.discriminator = "dcgan_discriminator"
  c.model.latent_dim = 100
  c.model.ngf = 64
  c.model.ndf = 64
  c.model.num_classes = 0       # > 0: class-conditional (G and D receive the label)

  c.loss = ml_collections.ConfigDict()
  c.loss.name = "non_saturating"  # jaxgan.losses.NAMES

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.learning_rate = 2e-4
  c.optimizer.b1 = 0.5
  c.optimizer.b2 = 0.999
  return c


def validate(config: ml_collections.ConfigDict) -> None:
  """One clear ValueError for values no run can use (types are checked by ml_collections)."""
  positive = ["num_train_steps", "batch_size", "log_every_steps", "checkpoint_every_steps",
              "sample_every_steps", "keep_checkpoints", "data.image_size", "data.channels",
              "model.latent_dim", "data.load_size", "data.num_train_examples"]
  for name in positive:
    value = config
    for part in name.split("."):
      value = value.get(part) if value is not None else None
    if value is not None and value <= 0:
      raise ConfigError(f"config.{name} must be positive, got {value}")
  if config.get("num_grid_images", 1) < 0:
    raise ConfigError("config.num_grid_images must be >= 0")


def load(path: str) -> ml_collections.ConfigDict:
  """`get_config()` of a config file, as `--config=path` would give it."""
  spec = importlib.util.spec_from_file_location("jaxgan_config_file", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def load_sibling(config_file: str, name: str) -> ml_collections.ConfigDict:
  """`get_config()` of the config file `name` next to `config_file`: how a variant
  starts from its base experiment (`load_sibling(__file__, "gan_mnist.py")`) wherever
  it is run from."""
  return load(os.path.join(os.path.dirname(os.path.abspath(config_file)), name))


def save_json(config: ml_collections.ConfigDict, path: str) -> None:
  with open(path, "w") as f:
    json.dump(config.to_dict(), f, indent=2, sort_keys=True)


def load_json(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run wrote into its workdir."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir} the --workdir of a jaxgan run?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))
