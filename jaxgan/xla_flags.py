"""XLA flags that make the CPU backend fast, set before JAX initialises.

Measured on a 2-core x86 CPU with jaxlib 0.10.2 (docs/performance.md,
benchmarks/steps/train_step.py): this jaxlib routes convolutions through its YNNPACK path,
which is slower here than Eigen's; `--xla_cpu_experimental_ynn_fusion_type=dot`
keeps YNNPACK for matrix products only. XLA reads XLA_FLAGS once, when the backend
starts, so `configure()` must run before anything touches `jax.devices()`.

The flag is added only when the CPU is the backend JAX will use (no GPU/TPU plugin
installed, or JAX_PLATFORMS=cpu), and never when the user already set it.
"""

import importlib.util
import os

CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=dot",)

_ACCELERATOR_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin",
                        "jax_rocm7_plugin", "libtpu")


def _cpu_is_the_backend() -> bool:
  platforms = os.environ.get("JAX_PLATFORMS", "").lower()
  if platforms:
    return platforms.split(",")[0].strip() == "cpu"
  return not any(importlib.util.find_spec(m) is not None for m in _ACCELERATOR_PLUGINS)


def configure() -> None:
  """Appends the CPU flags to XLA_FLAGS unless the user set the same flag."""
  if not _cpu_is_the_backend():
    return
  current = os.environ.get("XLA_FLAGS", "")
  extra = [f for f in CPU_FLAGS if f.split("=")[0] not in current]
  if extra:
    os.environ["XLA_FLAGS"] = " ".join([current, *extra]).strip()
