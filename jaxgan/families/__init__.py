"""Model families: what each kind of model gives the training loop.

The loop (`jaxgan.train`) owns data, sharding, logging, checkpoints and sample grids;
a family owns its train state and its step. A family is an object with:

- `init_state(rng) -> state`: a pytree of arrays (parameters, batch statistics,
  optimizer states, `step`, `rng`), plain data that Orbax checkpoints as is.
- `train_step(state, batch) -> (state, metrics)`: pure; the loop jits it with the
  batch sharded over the mesh and the state replicated. `metrics` is a dict of scalars.
- `fixed_inputs(rng, num) -> inputs`: what sample grids are drawn from (fixed noise);
  only called when `config.num_grid_images > 0`.
- `generate(state, inputs) -> images` in [-1, 1], NHWC: inference mode.
- `grid_columns`: columns of the sample grid (0: as square as possible).
- `param_counts(state) -> {network: count}`.
- `loss_metrics`: the names of the metrics that are losses (plotted in `losses.png`).

`config.family` picks the family from `FAMILIES`.
"""

from typing import Any, Callable, Protocol

import jax

from jaxgan.config import ConfigError


class Family(Protocol):
  loss_metrics: tuple[str, ...]
  grid_columns: int

  def init_state(self, rng: jax.Array) -> Any: ...
  def train_step(self, state: Any, batch: dict[str, jax.Array]) -> tuple[Any, dict[str, jax.Array]]: ...
  def fixed_inputs(self, rng: jax.Array, num: int) -> Any: ...
  def generate(self, state: Any, inputs: Any) -> jax.Array: ...
  def param_counts(self, state: Any) -> dict[str, int]: ...


def _gan(config):
  from jaxgan.families.gan import GAN  # pylint: disable=import-outside-toplevel
  return GAN(config)


def _classifier(config):
  from jaxgan.families.classifier import Classifier  # pylint: disable=import-outside-toplevel
  return Classifier(config)


FAMILIES: dict[str, Callable[[Any], Family]] = {
    "gan": _gan,
    "classifier": _classifier,
}


def create(config) -> Family:
  if config.family not in FAMILIES:
    raise ConfigError(f"unknown config.family {config.family!r}; "
                     f"known: {', '.join(sorted(FAMILIES))}")
  return FAMILIES[config.family](config)
