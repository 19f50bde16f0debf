"""jaxgan: the classic image GANs (and a diffusion baseline) in JAX/Flax."""

import os as _os

from jaxgan import xla_flags as _xla_flags

# Before any submodule imports JAX: XLA reads its flags once, at backend start.
_xla_flags.configure()
# TensorFlow's and XLA's C++ INFO lines (TF's oneDNN notice, absl's "before InitializeLog"
# warning) off for a quiet terminal, before either loads; warnings and errors still print.
# TF_CPP_MIN_LOG_LEVEL=0 in the environment brings them back.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
