"""A trained run, back from its workdir, and what its generator draws.

Shared by `jaxgan.sample` and `jaxgan.evaluate` (both command lines): the model is
rebuilt from `W/config.json` and the newest checkpoint restored into it.
"""

import time

import jax
import numpy as np

from jaxgan import checkpoint, config as config_lib, families, train, visualize
from jaxgan.errors import CheckpointError, ConfigError


def override_sampling(config, **sampling) -> None:
  """Sets the diffusion run's `config.sampling` fields given (not None): the sampler,
  steps, eta and guidance of `jaxgan.sample` and `jaxgan.evaluate`'s flags."""
  given = {k: v for k, v in sampling.items() if v is not None}
  if not given:
    return
  if "sampling" not in config:
    flags = ", ".join(f"--{k}" for k in given)
    raise ConfigError(f"{flags}: only diffusion runs have a sampler; this run is "
                                 f"a {config.family!r} run")
  with config.unlocked():
    config.sampling.update(given)


def load_run(workdir: str, raw_weights: bool = False, **sampling):
  """(config, family, state) of the latest checkpoint of `workdir`; `sampling`: diffusion
  runs' `config.sampling` fields to override (`override_sampling`); `raw_weights`: sample
  from the trained weights instead of their moving average (runs that keep one:
  `jaxgan.ema`)."""
  config = config_lib.load_json(workdir)
  override_sampling(config, **sampling)
  mesh = train.make_mesh()
  family = families.create(config, train.mesh_platform(mesh))
  if raw_weights:
    if not getattr(family, "use_ema", False):
      raise ConfigError("--raw_weights: this run keeps no moving average of its weights "
                        "(config.ema_decay): it samples from its trained weights already")
    family.use_ema = False
  target = jax.eval_shape(family.init_state, jax.random.PRNGKey(0))
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=train.replicated(mesh)), target)
  state = checkpoint.Checkpoints(f"{workdir}/checkpoints").restore(target)
  if state is None:
    raise CheckpointError(f"no checkpoint in {workdir}/checkpoints: train it first")
  return config, family, state


def generate(family, state, num: int, seed: int, batch_size: int = 500, labels=None,
             timing: dict | None = None):
  """(uint8 images [num, H, W, C], int32 labels [num] or None) from `family`'s generator.

  `labels`: None (unconditional; or 0..K-1 in turn for a conditional model), one class,
  or one class per image. Batch i draws its noise from fold_in(PRNGKey(seed), i). A dict
  `timing` receives `compile_seconds` (the generator compiled ahead of time for each batch
  size) and `seconds` (the batches run, their images on the host), so that a generator's
  speed is read apart from its compilation.
  """
  if not families.supports(family, families.NoiseSampling):
    raise ConfigError("this model translates images rather than drawing them from "
                                 "noise: use --input_dir and --output_dir")
  if labels is None and getattr(family, "num_classes", 0):
    labels = np.arange(num) % family.num_classes
  if labels is not None:
    labels = np.broadcast_to(np.asarray(labels, np.int32), (num,))
    if getattr(family, "num_classes", 0) and not ((labels >= 0) & (labels < family.num_classes)).all():
      raise ValueError(f"labels must be in 0..{family.num_classes - 1}")
  gen = jax.jit(family.generate)
  compiled, images, compile_seconds, seconds = {}, [], 0.0, 0.0
  for i, start in enumerate(range(0, num, batch_size)):
    stop = min(start + batch_size, num)
    inputs = family.latent_inputs(jax.random.fold_in(jax.random.PRNGKey(seed), i), stop - start,
                                  None if labels is None else labels[start:stop])
    if stop - start not in compiled:
      begin = time.perf_counter()
      compiled[stop - start] = gen.lower(state, inputs).compile()
      compile_seconds += time.perf_counter() - begin
    begin = time.perf_counter()
    images.append(visualize.to_uint8(jax.device_get(compiled[stop - start](state, inputs))))
    seconds += time.perf_counter() - begin
  if timing is not None:
    timing.update(compile_seconds=compile_seconds, seconds=seconds)
  return np.concatenate(images), labels
