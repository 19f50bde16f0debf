"""JAX's persistent compilation cache, on by default for jaxgan's commands.

A run that resumes, a second run of the same config, `jaxgan.sample` and `jaxgan.evaluate`
then load the step and the generator that an earlier process compiled instead of
compiling them again (on the 2-core CPU the DCGAN MNIST step takes seconds to compile, a
CycleGAN's or a U-Net's tens of seconds). JAX keys each entry by the program, the
compiler's version and flags and the devices, so a changed program is compiled afresh.

Where: $JAXGAN_COMPILATION_CACHE (a folder; "off" turns the cache off), else JAX's own
setting where the user made one (JAX_COMPILATION_CACHE_DIR), else
$XDG_CACHE_HOME/jaxgan/compilation (default ~/.cache/jaxgan/compilation). JAX caches
programs that took at least a second to compile (its
`jax_persistent_cache_min_compile_time_secs`). The cache is trusted code: keep it in a
folder only you can write to (JAX's documentation says why).
"""

import os
from typing import Optional

VARIABLE = "JAXGAN_COMPILATION_CACHE"


def default_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "jaxgan", "compilation")


def enable() -> Optional[str]:
  """Turns the cache on (before the first compilation); returns its folder, or None when
  it is off."""
  import jax  # pylint: disable=import-outside-toplevel
  chosen = os.environ.get(VARIABLE)
  if chosen is not None and chosen.strip().lower() in ("off", "0", "none", ""):
    return None
  if chosen is None and jax.config.jax_compilation_cache_dir:  # the user's own setting
    return jax.config.jax_compilation_cache_dir
  path = os.path.expanduser(chosen) if chosen else default_dir()
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:  # an unwritable home: compile every time, say so once
    print(f"warning: compilation cache off: cannot create {path} ({e.strerror}); set "
          f"{VARIABLE} to a writable folder", flush=True)
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  return path
