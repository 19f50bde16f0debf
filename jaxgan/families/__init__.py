"""Model families: what each kind of model gives the training loop.

The loop (`jaxgan.train`) owns data, sharding, logging, checkpoints and sample grids;
a family owns its train state and its step. Every family has the core (`Family`):

- `init_state(rng) -> state`: a pytree of arrays (parameters, batch statistics,
  optimizer states, `step`, `rng`), plain data that Orbax checkpoints as is.
- `train_step(state, batch) -> (state, metrics)`: pure; the loop jits it with the
  batch sharded over the mesh and the state replicated. `metrics` is a dict of scalars.
- `param_counts(state) -> {network: count}`.
- `loss_metrics`: the names of the metrics that are losses (plotted in `losses.png`).

and any of the optional capabilities, each a `Protocol` below. A family has a capability
when it has all of its members; the loop and the tools ask `supports(family, capability)`
(or `capabilities(family)`), and a family leaves out what it cannot do instead of raising.

- `Sampling` (sample grids; every family but the classifier):
  `fixed_inputs(rng, num) -> inputs`, what sample grids are drawn from (fixed noise; for
  pix2pix, fixed (input, target) pairs from the data; for CycleGAN, fixed images of both
  domains). When `inputs` is a dict with a `target` entry, those are the real images
  `real_vs_fake.png` shows next to what was generated from them; otherwise the last
  training batch's `image`s are. `generate(state, inputs) -> images` in [-1, 1], NHWC, in
  inference mode (for pix2pix the reference's test-time mode: Dropout and batch statistics
  on). `grid(inputs, images) -> uint8 image`, the picture of a sample grid (GANs: the
  images tiled, a row per class when conditional; pix2pix: input | output | target
  triplets; CycleGAN: X | G(X) | F(G(X)) triplets).
- `NoiseSampling` (GANs, DDPM): `latent_inputs(rng, num, labels) -> inputs` for `generate`,
  so that `jaxgan.sample` draws any number of new images.
- `Translation` (pix2pix, CycleGAN): `translate(state, images, rngs) -> images` and
  `image_size`; `python -m jaxgan.sample --input_dir` (`jaxgan.translate`) runs it on a
  folder. A family that translates both ways (CycleGAN) also has `directions` and takes
  `direction=`.
- `DiscriminatorProbe` (gan): `discriminator_scores(state, batch) -> [N]`, D's score of
  each real image of `batch` in inference mode; what the loop's overfitting probe logs on
  held-out and training images (`config.data.holdout`).
- `Prediction` (classifier): `predict(state, images) -> (probabilities, features)`, what
  `jaxgan.evaluate`'s digit metrics read.
- `DenoisingView` (ddpm): `denoising_view(state, images, ts, seed, labels) -> uint8 image`,
  test images noised to each t and denoised back (`jaxgan.sample --denoise`), and
  `trajectory(state, inputs, columns) -> (uint8 image, timesteps)`, x_t from noise to
  sample (`jaxgan.sample --trajectory`, `trajectory.png` at the end of a run).

`config.family` picks the family from `FAMILIES`. `create` hands it back with every method
traced under the config's layer implementation and precision (`jaxgan.implementation`).
"""

import inspect
from typing import Any, Callable, Optional, Protocol, runtime_checkable

import jax

from jaxgan import implementation
from jaxgan.errors import ConfigError


@runtime_checkable
class Family(Protocol):
  """The core every family has."""
  loss_metrics: tuple[str, ...]

  def init_state(self, rng: jax.Array) -> Any: ...
  def train_step(self, state: Any, batch: dict[str, jax.Array]) -> tuple[Any, dict[str, jax.Array]]: ...
  def param_counts(self, state: Any) -> dict[str, int]: ...


@runtime_checkable
class Sampling(Protocol):
  """Sample grids drawn from fixed inputs during training."""

  def fixed_inputs(self, rng: jax.Array, num: int) -> Any: ...
  def generate(self, state: Any, inputs: Any) -> jax.Array: ...
  def grid(self, inputs: Any, images: Any) -> Any: ...


@runtime_checkable
class NoiseSampling(Protocol):
  """New images drawn from noise (with `Sampling.generate`)."""

  def latent_inputs(self, rng: jax.Array, num: int, labels: Any = None) -> Any: ...


@runtime_checkable
class Translation(Protocol):
  """Image-to-image translation of any images of `image_size`."""
  image_size: int

  def translate(self, state: Any, images: jax.Array, rngs: Any) -> jax.Array: ...


@runtime_checkable
class DiscriminatorProbe(Protocol):
  """D's scores of real images, for the overfitting probe."""

  def discriminator_scores(self, state: Any, batch: dict[str, jax.Array]) -> jax.Array: ...


@runtime_checkable
class Prediction(Protocol):
  """Class probabilities and features of images (a classifier)."""

  def predict(self, state: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]: ...


@runtime_checkable
class DenoisingView(Protocol):
  """The pictures of a diffusion model: test images noised and denoised back, and the
  reverse process from noise to samples."""

  def denoising_view(self, state: Any, images: Any, ts: Any, seed: int = 0,
                     labels: Any = None) -> Any: ...
  def trajectory(self, state: Any, inputs: Any, columns: int = 8) -> tuple[Any, Any]: ...


CAPABILITIES: dict[str, type] = {"sampling": Sampling, "noise_sampling": NoiseSampling,
                                 "translation": Translation,
                                 "discriminator_probe": DiscriminatorProbe,
                                 "prediction": Prediction, "denoising_view": DenoisingView}


def supports(family: Any, capability: type) -> bool:
  """Whether `family` has every member of `capability` (one of the Protocols above); a
  family from `create` is judged by the family it wraps."""
  return isinstance(family._family if isinstance(family, _Implemented) else family, capability)  # pylint: disable=protected-access


def capabilities(family: Any) -> frozenset[str]:
  """The names (`CAPABILITIES`' keys) of the optional capabilities `family` has."""
  return frozenset(name for name, capability in CAPABILITIES.items()
                   if supports(family, capability))


def _gan(config):
  from jaxgan.families.gan import GAN  # pylint: disable=import-outside-toplevel
  return GAN(config)


def _classifier(config):
  from jaxgan.families.classifier import Classifier  # pylint: disable=import-outside-toplevel
  return Classifier(config)


def _pix2pix(config):
  from jaxgan.families.pix2pix import Pix2Pix  # pylint: disable=import-outside-toplevel
  return Pix2Pix(config)


def _cyclegan(config):
  from jaxgan.families.cyclegan import CycleGAN  # pylint: disable=import-outside-toplevel
  return CycleGAN(config)


def _ddpm(config):
  from jaxgan.families.ddpm import DDPM  # pylint: disable=import-outside-toplevel
  return DDPM(config)


FAMILIES: dict[str, Callable[[Any], Family]] = {
    "gan": _gan,
    "classifier": _classifier,
    "pix2pix": _pix2pix,
    "cyclegan": _cyclegan,
    "ddpm": _ddpm,
}


class _Implemented:
  """A family whose methods run under `implementation.use(...)` (`implementation.run_as`):
  the layers inside a jitted step, sampler or translation take `config.implementation`,
  `config.precision` and the platform (where known), whoever jits them. Attributes that are
  not the family's methods (its networks, optimizer, sizes) pass through."""

  def __init__(self, family: Family, implementation_name: str, precision: str,
               platform: Optional[str]):
    self._family, self._use = family, (implementation_name, precision, platform)
    self._methods: dict[str, Callable] = {}  # one wrapper per method: jit caches by identity

  @property
  def __class__(self):  # isinstance and error messages see the family itself
    return type(self._family)

  def __setattr__(self, name: str, value):  # tests swap a family's network
    if name.startswith("_"):
      object.__setattr__(self, name, value)
    else:
      setattr(self._family, name, value)

  def __getattr__(self, name: str):
    value = getattr(self._family, name)
    if name.startswith("_") or not inspect.ismethod(value):  # networks, optimizers, sizes
      return value
    if name not in self._methods:
      self._methods[name] = implementation.run_as(value, *self._use)
    return self._methods[name]


def traced_as_family(family: Family, fn: Callable) -> Callable:
  """`fn` traced under the implementation, precision and platform that `family`'s methods
  take: for code that shares a program with them (the loop's finiteness flags)."""
  if type(family) is _Implemented:  # pylint: disable=unidiomatic-typecheck  (see __class__)
    return implementation.run_as(fn, *family._use)  # pylint: disable=protected-access
  return fn


def create(config, platform: Optional[str] = None) -> Family:
  """The family of `config`, its methods traced under `config.implementation`.

  `platform`: the platform its programs are compiled for, where the caller knows it (the
  devices of its mesh). "auto" then takes that platform's forms while tracing
  (`implementation.use`); without it every layer keeps both until lowering, as a program
  lowered for another platform needs.
  """
  if config.family not in FAMILIES:
    raise ConfigError(f"unknown config.family {config.family!r}; "
                     f"known: {', '.join(sorted(FAMILIES))}")
  return _Implemented(FAMILIES[config.family](config), config.implementation, config.precision,
                      platform)
