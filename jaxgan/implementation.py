"""Which implementation of the layers a program runs: XLA's own ops, or forms tuned for XLA:CPU.

jaxgan's layers (`jaxgan.layers`) have two implementations of the same functions:

- "portable": XLA's own ops, `lax.conv_general_dilated` for every convolution, plain
  reductions for normalisation statistics (two-pass variance, float32) and bias gradients,
  `jnp.isfinite` for the divergence guard, each product at an explicit precision. This is
  what a GPU or a TPU runs: XLA's native convolutions, its autotuning and its layouts.
- "cpu": the forms in `jaxgan.layers_cpu` (sub-pixel and space-to-depth convolutions,
  matrix-product sums, custom gradients), chosen by thresholds measured on XLA:CPU.

"auto", the default, decides by the platform the program is compiled for, not by the
host's default backend: each layer is a `lax.platform_dependent` with the CPU form for
`cpu` and the portable one for every other platform, so a step lowered for `tpu` or `cuda`
on a CPU-only machine (`jax.jit(...).trace(...).lower(lowering_platforms=...)`,
`jax.export`) holds only the portable ops. `config.implementation` forces one or the other
(`use`), so that both can be run and compared on a CPU. A caller that knows the platform
its program is compiled for (the training loop compiles for its mesh's devices) names it
in `use`: "auto" then takes that platform's branch while tracing, the same program without
tracing the other one.

`config.precision` sets the precision of the portable convolutions and matrix products:
"highest" (the default) keeps float32 computations float32 on every backend (a TPU's
default rounds float32 operands to bfloat16, a GPU's may use TF32), so a run on an
accelerator computes what it computes on a CPU; "default" gives the backend its fastest
float32 products. With `config.dtype="bfloat16"` the operands are bfloat16 anyway.
Products that carry statistics are always at HIGHEST.

This module imports nothing of the package.
"""

import contextlib
import contextvars
import functools
from typing import Callable, Iterator, Optional, TypeVar

from jax import lax

IMPLEMENTATIONS = ("auto", "portable", "cpu")
PRECISIONS = {"default": lax.Precision.DEFAULT, "high": lax.Precision.HIGH,
              "highest": lax.Precision.HIGHEST}

_T = TypeVar("_T")
_IMPLEMENTATION = contextvars.ContextVar("jaxgan_implementation", default="auto")
_PRECISION = contextvars.ContextVar("jaxgan_precision", default="highest")
_PLATFORM = contextvars.ContextVar("jaxgan_platform", default=None)


@contextlib.contextmanager
def use(implementation: str = "auto", precision: str = "highest",
        platform: Optional[str] = None) -> Iterator[None]:
  """Within this context (which must hold while a function is traced), layers take
  `implementation` and products `precision`. `platform` ("cpu", "gpu", "tpu"): the one the
  program will be compiled for, where the caller knows it; None, it may be lowered for any."""
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"implementation must be one of {', '.join(IMPLEMENTATIONS)}, "
                     f"got {implementation!r}")
  if precision not in PRECISIONS:
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
  tokens = (_IMPLEMENTATION.set(implementation), _PRECISION.set(precision),
            _PLATFORM.set(platform))
  try:
    yield
  finally:
    _IMPLEMENTATION.reset(tokens[0])
    _PRECISION.reset(tokens[1])
    _PLATFORM.reset(tokens[2])


def current() -> str:
  """The implementation in force: "auto", "portable" or "cpu"."""
  return _IMPLEMENTATION.get()


def precision() -> lax.Precision:
  """The precision of the portable convolutions and matrix products."""
  return PRECISIONS[_PRECISION.get()]


def on_platform(*args, cpu: Callable[..., _T], default: Callable[..., _T]) -> _T:
  """`cpu(*args)` in a program compiled for a CPU, `default(*args)` in any other: the
  branch of the platform named in `use`, else `lax.platform_dependent` (both traced, one
  chosen at lowering)."""
  platform = _PLATFORM.get()
  if platform is None:
    return lax.platform_dependent(*args, cpu=cpu, default=default)
  return cpu(*args) if platform == "cpu" else default(*args)


def choose(cpu: Callable[..., _T], portable: Callable[..., _T], *args) -> _T:
  """`cpu(*args)` or `portable(*args)`: forced by `use`, else by the compilation platform."""
  name = _IMPLEMENTATION.get()
  if name == "portable":
    return portable(*args)
  if name == "cpu":
    return cpu(*args)
  return on_platform(*args, cpu=cpu, default=portable)


def run_as(fn: Callable[..., _T], implementation: str = "auto", precision: str = "highest",
           platform: Optional[str] = None) -> Callable[..., _T]:
  """`fn` run (and so traced) under `use(implementation, precision, platform)`."""
  @functools.wraps(fn)
  def call(*args, **kwargs):
    with use(implementation, precision, platform):
      return fn(*args, **kwargs)
  return call
