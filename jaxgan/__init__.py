"""jaxgan: the classic image GANs (and a diffusion baseline) in JAX/Flax."""

from jaxgan import xla_flags as _xla_flags

# Before any submodule imports JAX: XLA reads its flags once, at backend start.
_xla_flags.configure()
