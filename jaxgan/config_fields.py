"""What the common config code (`jaxgan.config`) and each family's (`validate` and `upgrade`
in jaxgan/families/<family>.py) share: checks that give one ConfigError line for a value no
run can use, and filling in the fields an old run's saved config lacks. Imports only
`jaxgan.errors`, so that a family's module need not import `jaxgan.config` (which finds
the families).
"""

import math
from typing import Any

from jaxgan.errors import ConfigError


def get(config, name: str):
  """config.a.b for name 'a.b'; None where a part is absent."""
  value = config
  for part in name.split("."):
    value = value.get(part) if value is not None else None
  return value


def positive(config, *names: str) -> None:
  for name in names:
    value = get(config, name)
    if value is not None and not 0 < value < math.inf:  # NaN fails too
      raise ConfigError(f"config.{name} must be positive, got {value}")


def nonnegative(config, *names: str) -> None:
  for name in names:
    value = get(config, name)
    if value is not None and not 0 <= value < math.inf:
      raise ConfigError(f"config.{name} must be >= 0, got {value}")


def fraction(config, *names: str) -> None:
  """Each value in [0, 1) (a dropout rate, Adam's betas)."""
  for name in names:
    value = get(config, name)
    if value is not None and not 0 <= value < 1:
      raise ConfigError(f"config.{name} must be in [0, 1), got {value}")


def one_of(config, name: str, choices) -> None:
  value = get(config, name)
  if value is not None and value not in choices:
    raise ConfigError(f"config.{name} must be one of {', '.join(choices)}, got {value!r}")


def fill(config: dict, values: dict[str, Any]) -> None:
  """Sets each 'a.b' of `values` that the saved config (JSON data) `config` lacks."""
  for name, value in values.items():
    *parents, leaf = name.split(".")
    node = config
    for part in parents:
      node = node.setdefault(part, {})
    node.setdefault(leaf, value)
